//! `su import-rocksdb` on the reference's RocksDB-only store (PROTOCOL 9.4), built in two
//! temporary directories with the history `tests/import_postgres.rs` loads into PostgreSQL
//! (tests/reference). The same history through both importers gives the same store, row for
//! row; the Postgres side needs the test server at 127.0.0.1:5432 (user postgres, trust auth).

mod reference;
mod support;

use ao_su::ans104::b64;
use ao_su::import::rocksdb::RocksDbSource;
use ao_su::import::source::Source;
use ao_su::store::{OpenMode, Store};
use reference::local_store::LocalStore;
use reference::postgres::Database;
use reference::{
    Era, History, Reference, Signing, dump, history_rows, insert_aop6_process, killed_runs, now_ms,
    schedule, summary_number,
};
use std::path::Path;
use support::{SuCommand, SuOutput, TestSu, su_verify};

fn import(data_dir: &Path, local: &LocalStore, extra: &[&str]) -> SuOutput {
    SuCommand::new(data_dir)
        .arg("import-rocksdb")
        .args(local.args())
        .args(extra)
        .output()
}

/// The lines of an import's report (problems, summary), without the time it took.
fn report(out: &SuOutput) -> Vec<String> {
    out.stdout
        .lines()
        .map(|line| match line.rsplit_once(" in ") {
            Some((head, _)) if line.starts_with("imported ") => head.to_string(),
            _ => line.to_string(),
        })
        .collect()
}

#[test]
fn every_era_gives_the_store_import_postgres_gives_row_for_row() {
    let reference = Reference::new(Signing::Real);
    let mut history = History::default();
    let eras = reference::every_era(&reference, &mut history);
    let mut local = LocalStore::create();
    history.replay(&mut local);
    local.close();
    let mut db = Database::create("rocks_eras");
    history.replay(&mut db);

    let from_rocksdb = tempfile::tempdir().unwrap();
    let out = import(from_rocksdb.path(), &local, &[]);
    assert!(out.success(), "{}", out.text());
    let from_postgres = tempfile::tempdir().unwrap();
    let postgres = SuCommand::new(from_postgres.path())
        .args(["import-postgres", "--database-url", &db.url()])
        .output();
    assert!(postgres.success(), "{}", postgres.text());

    // The Postgres reference also served `data` values from its JSON columns where they differ
    // from the bytes (PROTOCOL 9.2): here the legacy process's `null` (it was written with
    // process assignment off). The RocksDB-only reference served the bytes.
    let overrides = ao_su::store::cf::DATA_OVERRIDES;
    let mut postgres_rows = history_rows(from_postgres.path());
    let kept: Vec<_> = postgres_rows
        .iter()
        .filter(|(cf, _, _)| *cf == overrides)
        .map(|(_, key, value)| (key.clone(), value.clone()))
        .collect();
    let legacy = b64::decode(&eras.legacy).unwrap();
    assert_eq!(kept, [([&legacy[..], &legacy[..]].concat(), vec![0u8])]);
    postgres_rows.retain(|(cf, _, _)| *cf != overrides);
    reference::assert_same_rows(&history_rows(from_rocksdb.path()), &postgres_rows);
    assert_eq!(report(&out), report(&postgres));
    reference::assert_every_era_report(&out.stdout, &eras, &reference);
    let (ok, report) = su_verify(from_rocksdb.path());
    assert!(ok, "{report}");

    // A second run finds the import complete.
    let again = import(from_rocksdb.path(), &local, &[]);
    assert!(again.success(), "{}", again.text());
    assert!(
        again.stdout.contains("complete already"),
        "{}",
        again.stdout
    );

    // The deep_hash records the reference kept are the hashes the importer computed from the
    // pushed messages' bodies.
    let mut source = RocksDbSource::open(&local.file_db(), &local.index_db()).unwrap();
    let store = Store::open(from_rocksdb.path(), OpenMode::ReadOnly).unwrap();
    let mut with_records = 0;
    for process in [eras.legacy.as_str(), eras.aop6.as_str()] {
        let mut recorded = source.dedupe_hashes(process).unwrap();
        recorded.sort();
        let mut computed = store
            .dedupe_hashes(&b64::decode_id(process).unwrap())
            .unwrap();
        computed.sort();
        assert_eq!(recorded, computed, "process {process}");
        with_records += usize::from(!recorded.is_empty());
    }
    assert_eq!(with_records, 2);
}

#[test]
fn a_wrapper_missing_from_the_file_db_is_reported_with_its_process_and_nonce() {
    let reference = Reference::new(Signing::Real);
    let mut local = LocalStore::create();
    let mut chain = insert_aop6_process(&reference, &mut local, now_ms(), true);
    let process = chain.process.clone();
    let mut lost = None;
    for nonce in 1..=3u64 {
        let body = reference.client_item(Some(&process), "Message", &[], b"kept");
        let at = now_ms() + nonce;
        let aid = schedule(
            &reference,
            &mut local,
            Era::M4,
            &mut chain,
            nonce,
            at,
            Some(body),
            None,
        );
        if nonce == 2 {
            lost = Some(b64::encode(&aid));
        }
    }
    let lost = lost.unwrap();
    let headless = insert_aop6_process(&reference, &mut local, now_ms(), true);
    let headless_assignment = b64::encode(&headless.previous.unwrap().0);
    local.delete_file_key(&format!("message_assignment:{lost}"));
    local.delete_file_key(&format!("process_assignment:{headless_assignment}"));
    local.close();

    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &local, &[]);
    assert!(!out.success(), "{}", out.text());
    let stdout = &out.stdout;
    assert!(
        stdout.contains(&format!(
            "not imported: process {process} nonce 2: its wrapper message_assignment:{lost} is \
             missing from the file DB"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "not imported: process {}: its process wrapper: process_assignment:{headless_assignment} \
             is missing from the file DB",
            headless.process
        )),
        "{stdout}"
    );
    // The rest of the process is imported, the gap kept as a legacy anomaly.
    assert_eq!(summary_number(stdout, "legacy),"), 3, "{stdout}");
    assert!(stdout.contains(&format!("process {process} nonce 3: missing nonces 2..2")));
}

#[test]
fn sigkill_at_random_points_then_rerun_gives_the_clean_import() {
    let mut local = LocalStore::create();
    reference::large_history(&mut local, 4, 1500);
    local.close();
    let flags = ["--skip-signatures", "--checkpoint-entries", "700"];
    let clean = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = import(clean.path(), &local, &flags);
    let whole = started.elapsed();
    assert!(out.success(), "{}", out.text());
    assert_eq!(summary_number(&out.stdout, "legacy),"), 4 * 1501);
    let expected_rows = dump(clean.path());

    let dir = tempfile::tempdir().unwrap();
    let source = local.args();
    let args: Vec<&str> = ["import-rocksdb"]
        .into_iter()
        .chain(source.iter().map(String::as_str))
        .chain(flags)
        .collect();
    let kills = killed_runs(dir.path(), &args, whole, 6);
    let out = import(dir.path(), &local, &flags);
    assert!(out.success(), "{}", out.text());
    assert!(kills > 0, "no run was killed mid-way");
    reference::assert_same_rows(&dump(dir.path()), &expected_rows);
}

#[test]
fn a_store_that_su_serve_holds_is_refused_with_a_clear_message() {
    let mut local = LocalStore::create();
    local.close();
    let dir = tempfile::tempdir().unwrap();
    let mut su = TestSu::start(dir.path(), &[]);
    let out = import(dir.path(), &local, &[]);
    assert!(!out.success());
    assert!(
        out.text().contains("in use by another process"),
        "{}",
        out.text()
    );
    su.stop();
}

#[test]
fn a_directory_that_is_not_the_reference_index_is_refused() {
    let mut local = LocalStore::create();
    local.close();
    let file_db = local.file_db();
    let dir = tempfile::tempdir().unwrap();
    let out = SuCommand::new(dir.path())
        .arg("import-rocksdb")
        .args(["--file-db", file_db.to_str().unwrap()])
        .args(["--index-db", file_db.to_str().unwrap()])
        .output();
    assert!(!out.success());
    assert!(
        out.text()
            .contains("is not a reference index DB: it has no `process` column family"),
        "{}",
        out.text()
    );
}

#[test]
fn pages_of_one_resume_between_duplicates_of_one_nonce_and_timestamp() {
    let reference = Reference::new(Signing::Placeholder);
    let mut local = LocalStore::create();
    let at = now_ms();
    let mut chain = insert_aop6_process(&reference, &mut local, at, true);
    let process = chain.process.clone();
    let before = chain.previous;
    // Three copies of nonce 1 at one timestamp (lagging replicas), then nonce 2.
    for copy in 0..3u8 {
        chain.previous = before;
        let body = reference.client_item(Some(&process), "Message", &[], &[copy]);
        schedule(
            &reference,
            &mut local,
            Era::M4,
            &mut chain,
            1,
            at + 1,
            Some(body),
            None,
        );
    }
    let body = reference.client_item(Some(&process), "Message", &[], b"two");
    schedule(
        &reference,
        &mut local,
        Era::M4,
        &mut chain,
        2,
        at + 2,
        Some(body),
        None,
    );
    local.close();

    let mut source = RocksDbSource::open(&local.file_db(), &local.index_db()).unwrap();
    let whole: Vec<_> = source.entries_after(&process, None, 1000).unwrap();
    assert_eq!(whole.len(), 4);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = source.entries_after(&process, after, 1).unwrap();
        let Some(last) = page.last() else { break };
        after = last.key;
        paged.extend(page);
    }
    let ids = |rows: &[ao_su::import::source::SourceRow]| -> Vec<(Option<i64>, Option<String>)> {
        rows.iter()
            .map(|row| (row.nonce, row.assignment_id.clone()))
            .collect()
    };
    assert_eq!(ids(&paged), ids(&whole));
    assert!(
        paged
            .iter()
            .all(|row| row.missing.is_none() && !row.wrapper.is_empty())
    );
}

/// The index's `deep_hash` records (the reference's recalculation pass) give assignment-only
/// entries their dedupe hash; a base-layer assignment has none and stays not covered.
#[test]
fn deep_hash_records_are_kept_for_assignments() {
    use ao_su::ans104::DataItem;
    use ao_su::ans104::dedupe::{TagOrder, item_dedupe_hash};
    let reference = Reference::new(Signing::Real);
    let mut local = LocalStore::create();
    let mut chain = insert_aop6_process(&reference, &mut local, now_ms(), true);
    let process = chain.process.clone();
    let tags = [("From-Process", process.as_str())];
    let pushed = reference.client_item(Some(&process), "Message", &tags, b"pushed");
    let bundled = reference.client_item(None, "Message", &[("Action", "Transfer")], b"bundled");
    let base_layer = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    let hash_of =
        |bytes: &[u8]| item_dedupe_hash(&DataItem::parse(bytes).unwrap(), TagOrder::Sorted);
    let (pushed_hash, bundled_hash) = (hash_of(&pushed.0), hash_of(&bundled.0));
    schedule(
        &reference,
        &mut local,
        Era::M4,
        &mut chain,
        1,
        now_ms() + 1,
        Some(pushed),
        None,
    );
    for (nonce, assigned) in [(2, bundled.1), (3, base_layer)] {
        let at = now_ms() + nonce;
        schedule(
            &reference,
            &mut local,
            Era::M4,
            &mut chain,
            nonce,
            at,
            None,
            Some(assigned),
        );
    }
    local.put_deep_hash(&process, &bundled_hash);
    local.close();

    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &local, &[]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "(not covered):"),
        1,
        "{}",
        out.stdout
    );
    let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
    let mut hashes = store
        .dedupe_hashes(&b64::decode_id(&process).unwrap())
        .unwrap();
    hashes.sort_unstable();
    let mut expected = vec![pushed_hash, bundled_hash];
    expected.sort_unstable();
    assert_eq!(hashes, expected);
    drop(store);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
}
