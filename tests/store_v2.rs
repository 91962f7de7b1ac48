//! Store layout v2: every row of an entry is rebuilt from the change feed alone, imported
//! history keeps duplicate and missing nonces in order, commits may skip the outbox, and a
//! version-1 store is upgraded in place, resuming after an interruption at any process.

use ao_su::ans104::dedupe::{TagOrder, item_dedupe_hash};
use ao_su::ans104::{DataItem, ItemDraft, SignatureType};
use ao_su::cli::verify::verify_process;
use ao_su::store::keys::Slot;
use ao_su::store::records::{
    EntryKind, EntryRecord, Origin, ProcessKind, ProcessRecord, RenderStyle,
};
use ao_su::store::{
    Change, Commit, DumpRow, LegacyProcess, OpenMode, StagedEntry, Store, StoreError, UpgradeStop,
};
use std::path::Path;

fn fake_item(seed: u64, tags: Vec<(&str, &str)>) -> (Vec<u8>, [u8; 32]) {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: vec![1; 512],
        target: None,
        anchor: None,
        tags: tags
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        data: seed.to_string().into_bytes(),
    };
    draft.finish_with_placeholder(seed)
}

/// One process's history: a process entry, messages (every third one pushed, with its
/// dedupe hash), and assignment-only entries (each with a gateway-derived hash, which sort in
/// nonce order, as the upgrade lists them).
fn history(process_seed: u64, entries: u64, first_sequence: u64, upload: bool) -> Vec<StagedEntry> {
    let (process_bytes, process) = fake_item(process_seed << 32, vec![("Type", "Process")]);
    let mut out = Vec::new();
    for nonce in 0..entries {
        let seed = process_seed << 32 | (nonce + 1);
        let (assignment, assignment_id) = fake_item(seed | 1 << 31, vec![("Type", "Assignment")]);
        let (kind, message_id, body, hashes) = if nonce == 0 {
            (
                EntryKind::Process,
                process,
                Some(process_bytes.clone()),
                vec![],
            )
        } else if nonce % 5 == 4 {
            let hashes = vec![[nonce as u8; 48]];
            (EntryKind::AssignmentOnly, [nonce as u8; 32], None, hashes)
        } else {
            let pushed = nonce % 3 == 0;
            let tags = if pushed {
                vec![("Type", "Message"), ("From-Process", "someone")]
            } else {
                vec![("Type", "Message")]
            };
            let (bytes, id) = fake_item(seed, tags);
            let hashes = if pushed {
                vec![item_dedupe_hash(
                    &DataItem::parse(&bytes).unwrap(),
                    TagOrder::Sorted,
                )]
            } else {
                vec![]
            };
            (EntryKind::Message, id, Some(bytes), hashes)
        };
        out.push(StagedEntry {
            process,
            nonce,
            dup: 0,
            record: EntryRecord {
                kind,
                timestamp: 1_700_000_000_000 + nonce,
                sequence: first_sequence + nonce,
                assignment_id,
                message_id,
                hash_chain: [nonce as u8; 32],
                style: RenderStyle::Standard,
                origin: Origin::Scheduled,
            },
            assignment,
            body,
            dedupe_hashes: hashes,
            upload,
        });
    }
    out
}

fn legacy_process(seed: u64, sequence: u64) -> LegacyProcess {
    let (item, process) = fake_item(seed, vec![("Type", "Process")]);
    let (wrapper, wrapper_id) = fake_item(
        seed + 1,
        vec![("Block-Height", "1000"), ("Timestamp", "1700000000000")],
    );
    LegacyProcess {
        process,
        sequence,
        timestamp: 1_700_000_000_000,
        item,
        wrapper_id,
        wrapper,
    }
}

/// Asserts two dumps are equal, naming the first row that differs (dumps are long).
#[track_caller]
fn assert_same_rows(found: &[DumpRow], expected: &[DumpRow], context: &str) {
    let differs = found
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .or_else(|| (found.len() != expected.len()).then(|| found.len().min(expected.len())));
    if let Some(at) = differs {
        let describe = |row: Option<&DumpRow>| {
            row.map(|(cf, key, value)| format!("{cf} key {key:02x?} value {} bytes", value.len()))
        };
        panic!(
            "{context}: rows differ at {at} ({} vs {} rows): found {:?}, expected {:?}",
            found.len(),
            expected.len(),
            describe(found.get(at)),
            describe(expected.get(at))
        );
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir, OpenMode::ReadWrite).unwrap()
}

/// Rows of every CF but the outbox and meta (which the feed deliberately does not carry).
fn schedule_rows(store: &Store) -> Vec<DumpRow> {
    let mut rows = store.dump().unwrap();
    rows.retain(|(cf, _, _)| *cf != "outbox" && *cf != "meta");
    rows
}

fn write_sample(store: &Store, upload: bool) {
    let mut sequence = 1;
    for process_seed in 1..=3u64 {
        let entries = history(process_seed, 12, sequence, upload);
        sequence += entries.len() as u64;
        store
            .write(&Commit {
                entries,
                sync: false,
                ..Default::default()
            })
            .unwrap();
    }
    store
        .write(&Commit {
            legacy_processes: vec![legacy_process(99, sequence)],
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn the_change_feed_rebuilds_every_row() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (primary, replica) = (open(a_dir.path()), open(b_dir.path()));
    write_sample(&primary, true);
    assert_eq!(primary.last_sequence().unwrap(), 37);

    let mut after = 0;
    loop {
        let page = primary.log_after(after, 5).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        for (offset, change) in page.iter().enumerate() {
            assert_eq!(
                change.sequence(),
                after + 1 + offset as u64,
                "in order, no gap"
            );
        }
        after = page.last().unwrap().sequence();
        replica.write(&Commit::from_changes(page, true)).unwrap();
    }
    assert_eq!(after, 37);
    assert_eq!(schedule_rows(&primary), schedule_rows(&replica));
    assert_eq!(
        replica.outbox_len().unwrap(),
        0,
        "replayed history is not uploaded"
    );
    assert!(primary.outbox_len().unwrap() > 0);
    assert!(primary.log_after(37, 10).unwrap().is_empty());
    assert!(primary.log_after(u64::MAX, 10).unwrap().is_empty());

    let legacy = legacy_process(99, 37);
    assert_eq!(
        primary.process(&legacy.process).unwrap(),
        Some(ProcessRecord {
            kind: ProcessKind::Legacy {
                wrapper_id: legacy.wrapper_id
            },
            timestamp: legacy.timestamp
        })
    );
    match primary.log_after(36, 1).unwrap().as_slice() {
        [Change::LegacyProcess(found)] => assert_eq!(found, &legacy),
        other => panic!("expected the legacy process, got {other:?}"),
    }
}

#[test]
fn a_commit_without_uploads_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_sample(&store, false);
    assert_eq!(store.outbox_len().unwrap(), 0);
    let with_uploads = tempfile::tempdir().unwrap();
    let other = open(with_uploads.path());
    write_sample(&other, true);
    // 3 processes × 12 entries: every Assignment, plus the 30 bodies.
    assert_eq!(other.outbox_len().unwrap(), 36 + 30);
    assert_same_rows(&schedule_rows(&store), &schedule_rows(&other), "no uploads");
}

#[test]
fn imported_duplicate_and_missing_nonces_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut entries = history(7, 5, 1, false);
    for entry in &mut entries {
        entry.record.origin = Origin::Imported;
    }
    // Nonces 0, 1, 1 (a second copy), 3 (2 is missing), 4.
    entries[2].nonce = 1;
    entries[2].dup = 1;
    entries[3].nonce = 3;
    let process = entries[0].process;
    store
        .write(&Commit {
            entries,
            ..Default::default()
        })
        .unwrap();
    let mut seen = Vec::new();
    store
        .scan_entries(&process, 0, u64::MAX, |slot, _, _| {
            seen.push(slot);
            Ok::<_, StoreError>(true)
        })
        .unwrap();
    let slot = |nonce, dup| Slot { nonce, dup };
    assert_eq!(
        seen,
        vec![slot(0, 0), slot(1, 0), slot(1, 1), slot(3, 0), slot(4, 0)]
    );
    assert_eq!(store.last_entry(&process).unwrap().unwrap().0, 4);
    let second = store.entry_at(&process, slot(1, 1)).unwrap().unwrap();
    let hits = store
        .find_id(&second.message_id, Some(&process), 10)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].slot, slot(1, 1));
    // A page in nonce mode starting after nonce 1 skips both copies of it.
    let mut after_one = Vec::new();
    store
        .scan_entries(&process, 2, u64::MAX, |slot, _, _| {
            after_one.push(slot.nonce);
            Ok::<_, StoreError>(true)
        })
        .unwrap();
    assert_eq!(after_one, vec![3, 4]);
}

fn upgrade_fixture() -> (tempfile::TempDir, Vec<DumpRow>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_sample(&store, true);
    let signer = DataItem::parse(&history(1, 1, 1, true)[0].assignment)
        .unwrap()
        .owner_address();
    store.put_signer_address(&signer).unwrap();
    let expected = store.dump().unwrap();
    store.rewrite_as_version_1().unwrap();
    assert_ne!(store.dump().unwrap(), expected, "the v1 layout differs");
    drop(store);
    (dir, expected)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let (dir, expected) = upgrade_fixture();
    // A read-only view of the v1 store reads it as it is, without upgrading.
    let read_only = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
    assert_eq!(read_only.signer_address().unwrap(), None);
    drop(read_only);
    let store = open(dir.path());
    assert_same_rows(&store.dump().unwrap(), &expected, "upgraded");
    drop(store);
    // Opening an upgraded store again changes nothing.
    assert_same_rows(&open(dir.path()).dump().unwrap(), &expected, "reopened");
}

#[test]
fn a_replica_of_an_upgraded_store_has_every_row() {
    let (dir, _) = upgrade_fixture();
    let primary = open(dir.path());
    let replica_dir = tempfile::tempdir().unwrap();
    let replica = open(replica_dir.path());
    replica
        .write(&Commit::from_changes(
            primary.log_after(0, 1000).unwrap(),
            true,
        ))
        .unwrap();
    assert_same_rows(
        &schedule_rows(&replica),
        &schedule_rows(&primary),
        "replica",
    );
}

#[test]
fn an_upgrade_interrupted_inside_a_process_resumes_to_the_same_store() {
    let (dir, expected) = upgrade_fixture();
    for stop_after in [1, 5, 12, 13, 30] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let stopped = Store::open_with(
            copy.path(),
            OpenMode::ReadWrite,
            UpgradeStop::AfterEntries(stop_after),
        );
        assert!(matches!(stopped, Err(StoreError::UpgradeStopped)));
        // Half upgraded: version-1 and version-2 values side by side; both read.
        let read_only = Store::open(copy.path(), OpenMode::ReadOnly).unwrap();
        assert_eq!(
            read_only.schema_version().unwrap(),
            2,
            "older builds refuse it"
        );
        drop(read_only);
        let store = open(copy.path());
        assert_eq!(
            store.dump().unwrap(),
            expected,
            "resumed after {stop_after} entries"
        );
    }
}

/// The store the version-1 release wrote (tests/fixtures/v1-store), unpacked.
fn real_v1_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store/data.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let data = dir.path().join("data");
    (dir, data)
}

fn verify_all(store: &Store) -> (u64, usize) {
    let (mut entries, mut anomalies) = (0, 0);
    for process in store.processes_after(None, 100).unwrap() {
        let report = verify_process(store, &process).unwrap();
        entries += report.entries;
        anomalies += report.legacy_anomalies.len();
    }
    (entries, anomalies)
}

#[test]
fn the_real_version_1_store_verifies_before_and_after_its_upgrade() {
    let (_dir, data) = real_v1_store();
    // Read-only, as su verify opens it: the version-1 store lacks the CFs added since.
    let read_only = Store::open(&data, OpenMode::ReadOnly).unwrap();
    assert_eq!(read_only.schema_version().unwrap(), 1);
    assert_eq!(verify_all(&read_only), (40, 0));
    let before = read_only.dump().unwrap();
    drop(read_only);

    let store = open(&data);
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(
        verify_all(&store),
        (40, 0),
        "every dedupe row is listed by an entry"
    );
    let signer = store
        .signer_address()
        .unwrap()
        .expect("the upgrade records the signer");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store/fixture.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ao_su::ans104::b64::encode(&signer),
        fixture["address"].as_str().unwrap()
    );
    // Only entry values (and meta) changed; 7 dedupe rows, now listed by 7 entries.
    let after = store.dump().unwrap();
    let rows = |dump: &[DumpRow], cf: &str| {
        dump.iter()
            .filter(|(name, _, _)| *name == cf)
            .map(|(_, key, value)| (key.clone(), value.clone()))
            .collect::<Vec<_>>()
    };
    for cf in [
        "items",
        "by_time",
        "by_id",
        "processes",
        "dedupe",
        "log",
        "outbox",
    ] {
        assert_eq!(rows(&before, cf), rows(&after, cf), "{cf} is untouched");
    }
    let listed: usize = rows(&after, "entries")
        .iter()
        .map(|(_, value)| {
            ao_su::store::records::StoredEntry::decode(value)
                .unwrap()
                .dedupe_hashes
                .len()
        })
        .sum();
    assert_eq!((rows(&after, "dedupe").len(), listed), (7, 7));
}

#[test]
fn an_interrupted_upgrade_resumes_to_the_same_store() {
    let (dir, expected) = upgrade_fixture();
    // Four processes (three AOP-6, one legacy): stop after each possible count, then resume.
    for stop_after in 0..4 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let stopped = Store::open_with(
            copy.path(),
            OpenMode::ReadWrite,
            UpgradeStop::AfterProcesses(stop_after),
        );
        assert!(
            matches!(stopped, Err(StoreError::UpgradeStopped)),
            "stop after {stop_after}"
        );
        let store = open(copy.path());
        assert_eq!(
            store.dump().unwrap(),
            expected,
            "resumed after {stop_after}"
        );
    }
}

/// Version 3 only adds `data_overrides`: a version-2 store (no such CF) is read as having no
/// kept values, and a read-write open creates the CF and records version 3, rows unchanged.
#[test]
fn a_version_2_store_reads_as_before_and_opens_as_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        store
            .write(&Commit {
                entries: history(7, 6, 1, false),
                ..Default::default()
            })
            .unwrap();
        store.dump().unwrap()
    };
    let process = before
        .iter()
        .find(|(cf, _, _)| *cf == ao_su::store::cf::PROCESSES)
        .map(|(_, key, _)| <[u8; 32]>::try_from(key.as_slice()).unwrap())
        .unwrap();
    // Make it the store a version-2 build left: no `data_overrides`, version 2.
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(false);
        let names = rocksdb::DB::list_cf(&options, dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&options, dir.path(), &names).unwrap();
        db.drop_cf(ao_su::store::cf::DATA_OVERRIDES).unwrap();
        let meta = db.cf_handle(ao_su::store::cf::META).unwrap();
        db.put_cf(meta, b"schema_version", 2u32.to_be_bytes())
            .unwrap();
    }
    let read_only = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
    assert_eq!(read_only.schema_version().unwrap(), 2);
    assert_eq!(read_only.data_override(&process, &process).unwrap(), None);
    drop(read_only);

    let store = open(dir.path());
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(store.data_override(&process, &process).unwrap(), None);
    assert_eq!(store.dump().unwrap(), before);
}
