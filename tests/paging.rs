//! Paging property: for random schedules (many entries per millisecond, assignment-only
//! entries) and random limits, walking pages by cursor in timestamp and nonce mode yields
//! every entry exactly once, in nonce order, and terminates.

use ao_su::ans104::{ItemDraft, SignatureType};
use ao_su::domain;
use ao_su::reads::{self, PageMode, PageRequest};
use ao_su::store::records::{EntryKind, EntryRecord};
use ao_su::store::{Commit, OpenMode, StagedEntry, Store};
use proptest::prelude::*;

fn fake_item(seed: u64, tags: Vec<(String, String)>) -> (Vec<u8>, [u8; 32]) {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: vec![1; 512],
        target: None,
        anchor: None,
        tags,
        data: vec![],
    };
    draft.finish_with_placeholder(seed)
}

/// `steps[i]` = (milliseconds after the previous entry, 0 or more; assignment-only?).
fn build(steps: &[(u64, bool)]) -> (tempfile::TempDir, Store, [u8; 32]) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
    let (process_bytes, process) = fake_item(u64::MAX, vec![("Type".into(), "Process".into())]);
    let mut entries = Vec::new();
    let mut previous: Option<u64> = None;
    let mut clock = 1_700_000_000_000u64;
    for (nonce, (gap, assignment_only)) in std::iter::once((0, false))
        .chain(steps.iter().copied())
        .enumerate()
    {
        clock += gap;
        let timestamp = domain::next_timestamp(clock, previous);
        previous = Some(timestamp);
        let nonce = nonce as u64;
        let (assignment, assignment_id) =
            fake_item(nonce, vec![("Nonce".into(), nonce.to_string())]);
        let (kind, message_id, body) = if nonce == 0 {
            (EntryKind::Process, process, Some(process_bytes.clone()))
        } else if assignment_only {
            (EntryKind::AssignmentOnly, [7; 32], None)
        } else {
            let (bytes, id) = fake_item(1 << 40 | nonce, vec![("Type".into(), "Message".into())]);
            (EntryKind::Message, id, Some(bytes))
        };
        let record = EntryRecord {
            kind,
            timestamp,
            sequence: nonce + 1,
            assignment_id,
            message_id,
            hash_chain: [0; 32],
            style: Default::default(),
            origin: Default::default(),
        };
        entries.push(StagedEntry {
            process,
            nonce,
            record,
            assignment,
            body,
            dedupe_hashes: Vec::new(),
            dup: 0,
            upload: false,
        });
    }
    store
        .write(&Commit {
            entries,
            sync: false,
            ..Default::default()
        })
        .unwrap();
    (dir, store, process)
}

fn walk(store: &Store, process: &[u8; 32], limit: usize, nonce_mode: bool) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    for _ in 0..10_000 {
        let mode = if nonce_mode {
            PageMode::Nonce {
                from: cursor,
                to: None,
            }
        } else {
            PageMode::Timestamp {
                from: cursor,
                to: None,
            }
        };
        let request = PageRequest {
            mode,
            limit,
            show_anchor: false,
            max_read_bytes: usize::MAX,
        };
        let page: serde_json::Value =
            serde_json::from_slice(&reads::page(store, process, &request).unwrap()).unwrap();
        let edges = page["edges"].as_array().unwrap();
        let has_next = page["page_info"]["has_next_page"].as_bool().unwrap();
        assert!(
            !(has_next && edges.is_empty()),
            "has_next_page with no edges"
        );
        assert!(edges.len() <= limit);
        for edge in edges {
            let tags = edge["node"]["assignment"]["tags"].as_array().unwrap();
            seen.push(tags[0]["value"].as_str().unwrap().parse().unwrap());
            cursor = Some(edge["cursor"].as_str().unwrap().parse().unwrap());
        }
        if !has_next {
            return seen;
        }
    }
    panic!("paging did not terminate");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_entry_once_in_nonce_order(steps in prop::collection::vec((0u64..3, any::<bool>()), 0..120), limit in 1usize..40) {
        let (_dir, store, process) = build(&steps);
        let expected: Vec<u64> = (0..=steps.len() as u64).collect();
        prop_assert_eq!(walk(&store, &process, limit, false), expected.clone());
        prop_assert_eq!(walk(&store, &process, limit, true), expected);
    }
}

#[test]
fn read_budget_shortens_pages_but_never_empties_them() {
    let steps: Vec<(u64, bool)> = (0..20).map(|n| (0, n % 3 == 0)).collect();
    let (_dir, store, process) = build(&steps);
    let request = PageRequest {
        mode: PageMode::Nonce {
            from: None,
            to: None,
        },
        limit: 100,
        show_anchor: false,
        max_read_bytes: 1,
    };
    let page: serde_json::Value =
        serde_json::from_slice(&reads::page(&store, &process, &request).unwrap()).unwrap();
    assert_eq!(page["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["page_info"]["has_next_page"], true);
}
