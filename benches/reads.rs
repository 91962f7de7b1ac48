//! Schedule pages from a large process: one process whose nonce-0 Process entry is followed by
//! 100_000 Messages, each with its own Assignment (unique ids, true Nonce/Timestamp/Hash-Chain
//! tags). A page of 1000 at the start and one at the end should cost the same: reads seek,
//! they never scan from nonce 0.
//!
//! The items carry placeholder signatures: reads parse and render but never verify, and
//! 200_000 RSA-4096 signatures would take minutes. Setup is outside the timed closures.

use ao_su::ans104::{ItemDraft, SignatureType, item::sha256};
use ao_su::domain::{AssignmentFields, Id, assignment_tags, next_hash_chain, seed_hash_chain};
use ao_su::reads::{self, PageMode, PageRequest};
use ao_su::store::records::{EntryKind, EntryRecord};
use ao_su::store::{Commit, OpenMode, StagedEntry, Store};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Instant;

const MESSAGES: u64 = 100_000;
const BATCH: u64 = 1000;
const LIMIT: usize = 1000;
const BASE_TIMESTAMP: u64 = 1_755_708_950_818;

/// A well-formed type-1 item whose signature is a unique placeholder; returns (bytes, id).
fn item(
    owner: &[u8],
    serial: u64,
    target: Option<Id>,
    tags: Vec<(String, String)>,
    data: Vec<u8>,
) -> (Vec<u8>, Id) {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: owner.to_vec(),
        target,
        anchor: Some(sha256(&serial.to_be_bytes())),
        tags,
        data,
    };
    draft.finish_with_placeholder(serial)
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Writes the process and its messages in commits of `BATCH` entries; returns the process id.
fn build(store: &Store) -> Id {
    let (client, su) = ([0xc1; 512], [0x5a; 512]);
    let process_tags = tags(&[
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Process"),
        ("Module", "Isk_GYo30Tyf5nLbVI6zEJIfFpiXQJd58IKcIkTu4no"),
        ("Scheduler", "PU2Z8Jc7oA4dRjTc1pyNwWW-mqLQLRO-xDFXUd8ZQGk"),
    ]);
    let (process_bytes, pid) = item(&client, 0, None, process_tags, b"-- process".to_vec());
    let message_tags = tags(&[
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Message"),
        ("Action", "Eval"),
    ]);
    let mut hash_chain = seed_hash_chain(&pid);
    let mut previous_assignment = None;
    let mut entries = Vec::with_capacity(BATCH as usize);
    for nonce in 0..=MESSAGES {
        if let Some(previous) = previous_assignment {
            hash_chain = next_hash_chain(&previous, &hash_chain);
        }
        let timestamp = BASE_TIMESTAMP + nonce;
        let (kind, body, message_id) = if nonce == 0 {
            (EntryKind::Process, process_bytes.clone(), pid)
        } else {
            let mut data = format!("-- message {nonce}\nreturn {nonce}\n").into_bytes();
            data.resize(64, b'x');
            let (bytes, id) = item(&client, 2 * nonce, Some(pid), message_tags.clone(), data);
            (EntryKind::Message, bytes, id)
        };
        let fields = AssignmentFields {
            process: pid,
            nonce,
            hash_chain,
            block_height: 1_736_676,
            timestamp,
            message: (nonce > 0).then_some(message_id),
            exclude: vec![],
        };
        let (assignment, assignment_id) =
            item(&su, 2 * nonce + 1, None, assignment_tags(&fields), vec![]);
        previous_assignment = Some(assignment_id);
        entries.push(StagedEntry {
            process: pid,
            nonce,
            record: EntryRecord {
                kind,
                timestamp,
                sequence: nonce + 1,
                assignment_id,
                message_id,
                hash_chain,
                style: Default::default(),
                origin: Default::default(),
            },
            assignment,
            body: Some(body),
            dedupe_hashes: Vec::new(),
            dup: 0,
            upload: false,
        });
        if entries.len() as u64 == BATCH || nonce == MESSAGES {
            let commit = Commit {
                entries: std::mem::take(&mut entries),
                sync: false,
                ..Default::default()
            };
            store.write(&commit).expect("write a commit");
        }
    }
    pid
}

fn request(from: Option<u64>) -> PageRequest {
    PageRequest {
        mode: PageMode::Nonce { from, to: None },
        limit: LIMIT,
        show_anchor: false,
        max_read_bytes: usize::MAX,
    }
}

/// Checks (untimed) that a page holds `LIMIT` edges and says whether more follow.
fn check(store: &Store, pid: &Id, from: Option<u64>, has_next: bool) {
    let page = reads::page(store, pid, &request(from)).expect("read a page");
    let page: serde_json::Value = serde_json::from_slice(&page).expect("page JSON");
    assert_eq!(page["edges"].as_array().map(Vec::len), Some(LIMIT));
    assert_eq!(page["page_info"]["has_next_page"], has_next);
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let store = Store::open(dir.path(), OpenMode::ReadWrite).expect("open the store");
    let pid = build(&store);
    // Reopen: recovery flushes the memtables, so both pages read SST files, as on a store
    // that has been running for a while.
    drop(store);
    let store = Store::open(dir.path(), OpenMode::ReadWrite).expect("reopen the store");
    eprintln!(
        "store: 1 process + {MESSAGES} messages written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let last_page_from = MESSAGES - LIMIT as u64; // exclusive: nonces 99_001..=100_000
    check(&store, &pid, None, true);
    check(&store, &pid, Some(last_page_from), false);

    let mut group = c.benchmark_group("page_1000");
    group.bench_function("first_page", |b| {
        b.iter(|| reads::page(&store, &pid, &request(None)).unwrap().len())
    });
    group.bench_function("from_nonce_99000", |b| {
        b.iter(|| {
            let page = reads::page(&store, &pid, &request(Some(last_page_from)));
            page.unwrap().len()
        })
    });
    group.finish();
}

criterion_group! {
    name = reads_bench;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(reads_bench);
