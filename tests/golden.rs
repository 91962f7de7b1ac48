//! Golden vectors from ../shared/fixtures: parsing, ids, signatures, hashes, and the
//! reference's JSON byte for byte, rendered from a real store.

use ao_su::ans104::dedupe::{DedupeInput, TagOrder, dedupe_hash};
use ao_su::ans104::{Bundle, DataItem, b64, verify};
use ao_su::domain;
use ao_su::reads::{self, PageMode, PageRequest};
use ao_su::store::{Commit, OpenMode, Store};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&read("manifest.json")).unwrap()
}

fn check_item(item: &DataItem<'_>, expected: &serde_json::Value, context: &str) {
    assert_eq!(
        b64::encode(&item.id()),
        expected["id"].as_str().unwrap(),
        "{context} id"
    );
    assert_eq!(
        b64::encode(&item.owner_address()),
        expected["owner_address"].as_str().unwrap(),
        "{context} owner"
    );
    if let Some(sig_type) = expected.get("sig_type").and_then(|v| v.as_u64()) {
        assert_eq!(item.signature_type.0 as u64, sig_type, "{context} type");
    }
    assert_eq!(
        item.target.map(b64::encode).unwrap_or_default(),
        expected["target"].as_str().unwrap(),
        "{context} target"
    );
    let tags: Vec<(String, String)> = item
        .tags
        .iter()
        .map(|t| (t.name.to_string(), t.value.to_string()))
        .collect();
    let expected_tags: Vec<(String, String)> =
        serde_json::from_value(expected["tags"].clone()).unwrap();
    assert_eq!(tags, expected_tags, "{context} tags");
    if let Some(len) = expected.get("data_len").and_then(|v| v.as_u64()) {
        assert_eq!(item.data.len() as u64, len, "{context} data");
    }
    let valid = expected
        .get("signature_valid")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    assert_eq!(verify::verify(item).is_ok(), valid, "{context} sig");
    assert_eq!(item.to_bytes(), item.raw(), "{context} re-serialization");
    if let Some(ordered) = expected
        .get("dedupe_deep_hash_ordered")
        .and_then(|v| v.as_str())
    {
        let tag_pairs: Vec<(&str, &str)> = item.tags.iter().map(|t| (t.name, t.value)).collect();
        let input = DedupeInput {
            target: item.target.unwrap_or(&[]),
            anchor: item.anchor.unwrap_or(&[]),
            tags: &tag_pairs,
            data: item.data,
        };
        assert_eq!(
            b64::encode(&dedupe_hash(&input, TagOrder::Sorted)),
            ordered,
            "{context} ordered dedupe"
        );
        let unordered = expected["dedupe_deep_hash_unordered"].as_str().unwrap();
        assert_eq!(
            b64::encode(&dedupe_hash(&input, TagOrder::AsGiven)),
            unordered,
            "{context} unordered dedupe"
        );
    }
}

#[test]
fn every_stored_wrapper_matches_the_manifest() {
    let manifest = manifest();
    let wrappers = manifest["stored_wrappers"].as_object().unwrap();
    assert!(wrappers.len() >= 64);
    for (path, expected) in wrappers {
        let bytes = read(path);
        let wrapper = DataItem::parse(&bytes).unwrap();
        assert_eq!(
            b64::encode(&wrapper.id()),
            expected["wrapper_id"].as_str().unwrap(),
            "{path}"
        );
        assert_eq!(
            verify::verify(&wrapper).is_ok(),
            expected["wrapper_signature_valid"].as_bool().unwrap()
        );
        assert_eq!(wrapper.to_bytes(), bytes);
        let bundle = Bundle::parse(wrapper.data).unwrap();
        let inner = expected["inner_items"].as_array().unwrap();
        assert_eq!(bundle.items.len(), inner.len(), "{path}");
        for (item, expected) in bundle.items.iter().zip(inner) {
            check_item(item, expected, path);
        }
        let ids: Vec<([u8; 32], &[u8])> = bundle.items.iter().map(|i| (i.id(), i.raw())).collect();
        let rebuilt = ao_su::ans104::encode_bundle(
            &ids.iter().map(|(id, raw)| (*raw, *id)).collect::<Vec<_>>(),
        );
        assert_eq!(rebuilt, wrapper.data, "{path}: bundle re-encoding");
    }
}

#[test]
fn bare_items_and_inner_bundle_match_the_manifest() {
    let manifest = manifest();
    for (path, expected) in manifest["items"].as_object().unwrap() {
        let bytes = read(path);
        check_item(&DataItem::parse(&bytes).unwrap(), expected, path);
    }
    for (path, expected) in manifest["inner_bundles"].as_object().unwrap() {
        let bytes = read(path);
        let bundle = Bundle::parse(&bytes).unwrap();
        let expected_items = expected["items"].as_array().unwrap();
        assert_eq!(bundle.items.len(), expected_items.len());
        for (item, expected) in bundle.items.iter().zip(expected_items) {
            check_item(item, expected, path);
        }
    }
}

#[test]
fn both_schedules_hash_chains_verify_link_by_link() {
    for name in ["schedule-4QTy", "schedule-Dccc"] {
        let mut previous: Option<([u8; 32], [u8; 32])> = None;
        let mut last_timestamp = 0u64;
        for nonce in 0..31 {
            let bytes = read(&format!("{name}/nonce-{nonce:02}.bin"));
            let wrapper = DataItem::parse(&bytes).unwrap();
            let bundle = Bundle::parse(wrapper.data).unwrap();
            let assignment = &bundle.items[0];
            let process = b64::decode_id(assignment.tag("Process").unwrap()).unwrap();
            let expected = match previous {
                None => domain::seed_hash_chain(&process),
                Some((id, chain)) => domain::next_hash_chain(&id, &chain),
            };
            assert_eq!(
                assignment.tag("Hash-Chain").unwrap(),
                b64::encode(&expected),
                "{name} nonce {nonce}"
            );
            assert_eq!(assignment.tag("Nonce").unwrap(), nonce.to_string());
            let timestamp: u64 = assignment.tag("Timestamp").unwrap().parse().unwrap();
            assert!(timestamp > last_timestamp);
            last_timestamp = timestamp;
            previous = Some((assignment.id(), expected));
        }
    }
}

fn load_store(paths: &[String]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
    let mut commit = Commit {
        entries: Vec::new(),
        sync: false,
        ..Default::default()
    };
    for (index, path) in paths.iter().enumerate() {
        let bytes = read(path);
        let mut entry = if path.starts_with("verbatim") {
            ao_su::import::entry_from_inner_bundle(&bytes).unwrap()
        } else {
            ao_su::import::entry_from_wrapper(&bytes).unwrap()
        };
        entry.record.sequence = index as u64 + 1;
        commit.entries.push(entry);
    }
    store.write(&commit).unwrap();
    (dir, store)
}

fn schedule_paths(name: &str) -> Vec<String> {
    (0..31)
        .map(|n| format!("{name}/nonce-{n:02}.bin"))
        .collect()
}

/// The expected body; the files end with a newline that is not part of the response.
fn expected(name: &str) -> String {
    let text = String::from_utf8(read(&format!("expected/{name}"))).unwrap();
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

fn page(store: &Store, pid: &[u8; 32], mode: PageMode, show_anchor: bool) -> String {
    let request = PageRequest {
        mode,
        limit: 1000,
        show_anchor,
        max_read_bytes: usize::MAX,
    };
    String::from_utf8(reads::page(store, pid, &request).unwrap()).unwrap()
}

#[test]
fn schedules_render_byte_for_byte() {
    for (name, pid) in [
        (
            "schedule-4QTy",
            "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo",
        ),
        (
            "schedule-Dccc",
            "DcccvmuHG83kIjXWtB2OBTDcZbFB32EXwbMWuTzmxSo",
        ),
    ] {
        let (_dir, store) = load_store(&schedule_paths(name));
        let pid = b64::decode_id(pid).unwrap();
        let timestamp_mode = PageMode::Timestamp {
            from: None,
            to: None,
        };
        assert_eq!(
            page(&store, &pid, timestamp_mode, false),
            expected(&format!("{name}.list.timestamp-mode.json"))
        );
        assert_eq!(
            page(
                &store,
                &pid,
                PageMode::Nonce {
                    from: None,
                    to: None
                },
                false
            ),
            expected(&format!("{name}.list.nonce-mode.json"))
        );
        assert_eq!(
            page(&store, &pid, timestamp_mode, true),
            expected(&format!("{name}.list.show-anchor.json"))
        );
        let record = String::from_utf8(reads::process_record(&store, &pid).unwrap()).unwrap();
        assert_eq!(record, expected(&format!("{name}.processes.json")));
    }
}

#[test]
fn single_nodes_render_byte_for_byte() {
    let (_dir, store) = load_store(&schedule_paths("schedule-4QTy"));
    let pid = b64::decode_id("4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo").unwrap();
    for nonce in 1..=3u64 {
        let record = store.entry(&pid, nonce).unwrap().unwrap();
        // Nonces 1 and 3 are assignment-only: found by their assignment id. Nonce 2 by message id.
        let id = if nonce == 2 {
            record.message_id
        } else {
            record.assignment_id
        };
        let node = reads::node_by_id(&store, &id, Some(&pid), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(node).unwrap(),
            expected(&format!("schedule-4QTy.nonce-{nonce:02}.node.json"))
        );
    }

    let (_dir, store) = load_store(&["single/assignment-only-zUXs-nonce-01.bin".to_string()]);
    let pid = b64::decode_id("zUXsM7c3dOMtkFz6Wk74G4X5wXN_ukI11q21qjd8JAc").unwrap();
    let record = store.entry(&pid, 1).unwrap().unwrap();
    let node = reads::node_by_id(&store, &record.assignment_id, Some(&pid), false)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(node).unwrap(),
        expected("single-assignment-only-zUXs.node.json")
    );

    let (_dir, store) = load_store(&["single/process-oVZz-nonce-00.bin".to_string()]);
    let pid = b64::decode_id("oVZz-HyFwhXUa61vM1UkEpi0fWx804HlxYwxV69lv5A").unwrap();
    assert_eq!(
        String::from_utf8(reads::process_record(&store, &pid).unwrap()).unwrap(),
        expected("single-process-oVZz.processes.json")
    );

    let (_dir, store) = load_store(&["verbatim/message.bin".to_string()]);
    let message = b64::decode_id("XxAng_IUpIPBuk35-jNWuN2eBPVytruzobiFwmSTt4I").unwrap();
    let process = b64::decode_id("Krim6GbXWi6x1eP1eEvEqX6z1Pnl0uGqr0ULKhErNVQ").unwrap();
    let plain = reads::node_by_id(&store, &message, Some(&process), false)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        expected("verbatim-message.bin.node.json")
    );
    let anchored = reads::node_by_id(&store, &message, None, true)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(anchored).unwrap(),
        expected("verbatim-message.bin.node.show-anchor.json")
    );
}

#[test]
fn paging_the_fixture_walks_every_entry_once() {
    let (_dir, store) = load_store(&schedule_paths("schedule-4QTy"));
    let pid = b64::decode_id("4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo").unwrap();
    for limit in [1usize, 2, 3, 7, 30, 31, 100] {
        let mut seen = Vec::new();
        let mut from = None;
        loop {
            let request = PageRequest {
                mode: PageMode::Timestamp { from, to: None },
                limit,
                show_anchor: false,
                max_read_bytes: usize::MAX,
            };
            let body: serde_json::Value =
                serde_json::from_slice(&reads::page(&store, &pid, &request).unwrap()).unwrap();
            let edges = body["edges"].as_array().unwrap();
            let has_next = body["page_info"]["has_next_page"].as_bool().unwrap();
            assert!(!(has_next && edges.is_empty()));
            for edge in edges {
                let tags = edge["node"]["assignment"]["tags"].as_array().unwrap();
                seen.push(tags[2]["value"].as_str().unwrap().parse::<u64>().unwrap());
                from = Some(edge["cursor"].as_str().unwrap().parse().unwrap());
            }
            if !has_next {
                break;
            }
        }
        assert_eq!(seen, (0..31).collect::<Vec<_>>(), "limit {limit}");
    }
}
