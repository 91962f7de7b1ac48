//! `su import-postgres` against a real PostgreSQL (127.0.0.1:5432, user postgres, trust
//! auth). Each test creates its own database, applies the reference's migrations one at a
//! time (tests/fixtures/reference_postgres), writes the rows of each era under the schema of
//! its time (tests/reference), runs the real `su` binary, and drops the database.

mod reference;
mod support;

use ao_su::ans104::{DataItem, b64};
use ao_su::domain::Id;
use ao_su::store::{OpenMode, Store};
use ao_su::wallet::Wallet;
use reference::postgres::Database;
use reference::{
    Era, EveryEra, Reference, Signing, dump, fixture, insert_aop6_process, insert_legacy_process,
    killed_runs, now_ms, schedule, summary_number,
};
use std::path::Path;
use support::{SuCommand, TestSu, su_verify};

/// Rows of every era in a new database, and what they hold.
fn every_era_database(reference: &Reference) -> (Database, EveryEra) {
    let mut db = Database::create("eras");
    let eras = reference::every_era(reference, &mut db);
    (db, eras)
}

fn import(data_dir: &Path, url: &str, extra: &[&str]) -> support::SuOutput {
    SuCommand::new(data_dir)
        .arg("import-postgres")
        .args(["--database-url", url])
        .args(extra)
        .output()
}

fn expected(name: &str) -> String {
    let text = String::from_utf8(fixture(&format!("expected/{name}"))).unwrap();
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[test]
fn every_era_imports_verifies_serves_the_reference_bytes_and_continues() {
    let reference = Reference::new(Signing::Real);
    let (db, eras) = every_era_database(&reference);
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    reference::assert_every_era_report(&out.stdout, &eras, &reference);

    // A second run is a no-op: the cursor says the import is complete.
    let again = import(dir.path(), &db.url(), &[]);
    assert!(again.success(), "{}", again.text());
    assert!(
        again.stdout.contains("complete already"),
        "{}",
        again.stdout
    );

    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
    assert!(report.contains("3 legacy anomalies"), "{report}");

    // Dedupe rows: the pushed messages' hashes.
    {
        let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        let legacy = b64::decode_id(&eras.legacy).unwrap();
        assert_eq!(store.dedupe_hashes(&legacy).unwrap().len(), 1);
        assert_eq!(
            store.outbox_len().unwrap(),
            0,
            "imported history is not uploaded again"
        );
    }

    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_WALLET_PATH", wallet_path.to_str().unwrap())],
    );
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
        let get = |path: String| {
            let (status, body) = su.get(&path);
            assert_eq!(status, 200, "{path}: {body}");
            body
        };
        assert_eq!(
            get(format!("/{pid}?limit=1000")),
            expected(&format!("{name}.list.timestamp-mode.json"))
        );
        assert_eq!(
            get(format!("/{pid}?limit=1000&from-nonce=-1")),
            expected(&format!("{name}.list.nonce-mode.json"))
        );
        assert_eq!(
            get(format!("/{pid}?limit=1000&show-anchor=true")),
            expected(&format!("{name}.list.show-anchor.json"))
        );
        assert_eq!(
            get(format!("/processes/{pid}")),
            expected(&format!("{name}.processes.json"))
        );
    }
    let pid = "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo";
    let list: serde_json::Value =
        serde_json::from_str(&su.get(&format!("/{pid}?limit=1000")).1).unwrap();
    let edges = list["edges"].as_array().unwrap();
    for (nonce, edge) in edges.iter().enumerate().take(4).skip(1) {
        let node = &edge["node"];
        let id = match node["message"]["id"].as_str() {
            Some(id) if nonce == 2 => id.to_string(),
            _ => node["assignment"]["id"].as_str().unwrap().to_string(),
        };
        let (status, body) = su.get(&format!("/{id}?process-id={pid}"));
        assert_eq!(status, 200);
        assert_eq!(
            body,
            expected(&format!("schedule-4QTy.nonce-{nonce:02}.node.json"))
        );
    }

    // The legacy process: no process node, its entries in (nonce, timestamp) order.
    let nonces = |process: &str| -> Vec<String> {
        support::edges(&su, process)
            .iter()
            .map(|edge| support::tag(&edge["node"], "Nonce"))
            .collect()
    };
    assert_eq!(
        nonces(&eras.legacy),
        ["0", "1", "2", "3", "3", "4", "6", "7", "8"]
    );
    assert_eq!(su.get(&format!("/processes/{}", eras.legacy)).0, 200);
    assert_eq!(nonces(&eras.aop6), ["0", "1", "2", "3", "4"]);

    // New messages continue the imported nonces and chains.
    let client = support::Client::new();
    for (process, next) in [(&eras.aop6, "5"), (&eras.legacy, "9")] {
        let (message, _) = client.message(process, "continue");
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        let all = support::edges(&su, process);
        let last = &all.last().unwrap()["node"];
        assert_eq!(support::tag(last, "Nonce"), next);
    }
    drop(su);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "the continued store verifies: {report}");
}

#[test]
fn an_item_that_does_not_verify_is_reported_with_its_process_and_nonce() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("bad");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    let (mut body, id) = reference.client_item(Some(&process), "Message", &[], b"tampered");
    let last = body.len() - 1;
    body[last] ^= 1; // the data changes, the id (hash of the signature) does not
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut chain,
        1,
        now_ms() + 1,
        Some((body, id)),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(!out.success(), "{}", out.text());
    assert!(
        out.stdout
            .contains(&format!("not imported: process {process} nonce 1: item")),
        "{}",
        out.text()
    );
    // With signatures skipped, the same entry is imported (links are still checked).
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &["--skip-signatures"]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(summary_number(&out.stdout, "legacy),"), 2);
}

#[test]
fn a_store_that_su_serve_holds_is_refused_with_a_clear_message() {
    let mut db = Database::create("locked");
    db.migrate_all_from(0);
    let dir = tempfile::tempdir().unwrap();
    let mut su = TestSu::start(dir.path(), &[]);
    let out = import(dir.path(), &db.url(), &[]);
    assert!(!out.success());
    assert!(
        out.text().contains("in use by another process"),
        "{}",
        out.text()
    );
    su.stop();
}

/// A placeholder-signed database large enough for many checkpoints.
fn large_database(processes: usize, per_process: u64) -> Database {
    let mut db = Database::create("large");
    db.migrate_all_from(0);
    reference::large_history(&mut db, processes, per_process);
    db
}

#[test]
fn sigkill_at_random_points_then_rerun_gives_the_clean_import() {
    let db = large_database(4, 1500);
    let flags = ["--skip-signatures", "--checkpoint-entries", "700"];
    let clean = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = import(clean.path(), &db.url(), &flags);
    // Kills land at random points within the time a whole import takes here, so the first
    // run is cut short whatever the machine's speed.
    let whole = started.elapsed();
    assert!(out.success(), "{}", out.text());
    let expected_rows = dump(clean.path());

    let dir = tempfile::tempdir().unwrap();
    let url = db.url();
    let args = [&["import-postgres", "--database-url", &url][..], &flags].concat();
    let kills = killed_runs(dir.path(), &args, whole, 6);
    let out = import(dir.path(), &db.url(), &flags);
    assert!(out.success(), "{}", out.text());
    assert!(kills > 0, "no run was killed mid-way");
    reference::assert_same_rows(&dump(dir.path()), &expected_rows);
}

#[test]
fn a_use_disk_byte_store_is_read_before_the_bundle_column() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("disk");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    for nonce in 1..=3u64 {
        let body = reference.client_item(Some(&process), "Message", &[], b"on disk");
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            now_ms() + nonce,
            Some(body),
            None,
        );
    }
    // The byte store holds each wrapper under the reference's key (PROTOCOL 9.3); the
    // column is damaged, so only a read of the byte store can import the rows.
    let disk = tempfile::tempdir().unwrap();
    {
        // The reference's options: wrappers (over 1 KiB) go to blob files.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.set_enable_blob_files(true);
        options.set_min_blob_size(1024);
        let store = rocksdb::DB::open(&options, disk.path()).unwrap();
        for row in db
            .client
            .query(
                "SELECT process_id, timestamp, message_id, assignment_id, bundle FROM messages",
                &[],
            )
            .unwrap()
        {
            let (pid, ts, mid, aid): (String, i64, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let bundle: Vec<u8> = row.get(4);
            store
                .put(format!("message___{pid}___{ts}___{mid}___{aid}"), bundle)
                .unwrap();
        }
        store.flush().unwrap();
    }
    db.client
        .execute("UPDATE messages SET bundle = '\\x00'::bytea", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(
        !out.success(),
        "the damaged column alone does not import: {}",
        out.text()
    );
    let dir = tempfile::tempdir().unwrap();
    let disk_dir = disk.path().to_str().unwrap();
    let out = import(dir.path(), &db.url(), &["--disk-dir", disk_dir]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(summary_number(&out.stdout, "legacy),"), 4);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
}

/// Serves an imported store with the reference's wallet and `gateway`, and assigns
/// `transaction` to `process` once more, as a client would after the move.
fn assign_after_the_move(
    data_dir: &Path,
    reference: &Reference,
    gateway: &support::fakes::FakeGateway,
    process: &str,
    transaction: &Id,
) -> (u16, String) {
    let wallet = tempfile::tempdir().unwrap();
    let wallet_path = wallet.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        data_dir,
        &[
            ("SU_WALLET_PATH", wallet_path.to_str().unwrap()),
            ("ARWEAVE_URL", &gateway.url()),
            ("GRAPHQL_URL", &gateway.url()),
        ],
    );
    let id = b64::encode(transaction);
    su.post(&format!("/?process-id={process}&assign={id}"), b"")
}

/// Assignment-only entries get their dedupe hash through the gateway when one is configured:
/// a bundled transaction its ordered hash (so assigning it again is refused after the move),
/// a base-layer one none, and one the gateway cannot describe is imported, listed as not
/// covered. Without a gateway every one of them is not covered, and the repeat is accepted.
#[test]
fn assigned_transactions_get_their_dedupe_hash_through_the_gateway() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("assigned");
    db.migrate_all_from(0);
    let mut ts = now_ms() - 3_600_000;
    let mut tick = || {
        ts += 1000;
        ts
    };
    let mut chain = insert_aop6_process(&reference, &mut db, tick(), true);
    let process = chain.process.clone();
    let (bundled, bundled_id) = reference.client_item(
        None,
        "Message",
        &[("Action", "Transfer")],
        b"a bundled item",
    );
    let base_layer = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    let unknown = reference.client_item(None, "Message", &[], b"nowhere").1;
    for (nonce, assigned) in [(1, bundled_id), (2, base_layer), (3, unknown)] {
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            tick(),
            None,
            Some(assigned),
        );
    }
    let gateway = support::fakes::FakeGateway::start(1_000);
    let (tx, data) = support::fakes::GqlTx::of_item(&bundled);
    gateway.add_tx(tx, &data);
    gateway.set_confirmations(&b64::encode(&base_layer), 40);
    let env = [
        ("ARWEAVE_URL", gateway.url()),
        ("GRAPHQL_URL", gateway.url()),
    ];
    let assign_again = |data_dir: &Path| {
        assign_after_the_move(data_dir, &reference, &gateway, &process, &bundled_id)
    };

    let with_gateway = tempfile::tempdir().unwrap();
    let out = SuCommand::new(with_gateway.path())
        .envs(
            &env.iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .arg("import-postgres")
        .args(["--database-url", &db.url()])
        .output();
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "process {process} nonce 3: assigned transaction {}",
            b64::encode(&unknown)
        )),
        "{}",
        out.stdout
    );
    {
        let store = Store::open(with_gateway.path(), OpenMode::ReadOnly).unwrap();
        let pid = b64::decode_id(&process).unwrap();
        assert_eq!(
            store.dedupe_hashes(&pid).unwrap().len(),
            1,
            "the bundled transaction's hash only"
        );
    }
    let (ok, report) = su_verify(with_gateway.path());
    assert!(ok, "{report}");
    let (status, body) = assign_again(with_gateway.path());
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );

    let without_gateway = tempfile::tempdir().unwrap();
    let out = import(without_gateway.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        3,
        "{}",
        out.stdout
    );
    let (status, body) = assign_again(without_gateway.path());
    assert_eq!(status, 200, "{body}");
}

/// A `USE_DISK` byte store keeps the process's dedupe records (`deephash___`): the ones no
/// imported entry computes from its body (assignments of existing transactions) are listed on
/// the assignment-only entries, so dedupe protects them after the move without a gateway.
#[test]
fn the_byte_store_dedupe_records_are_kept_for_assignments() {
    use ao_su::ans104::dedupe::{TagOrder, item_dedupe_hash};
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("recorded");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    let (pushed, pushed_id) = reference.client_item(
        Some(&process),
        "Message",
        &[("From-Process", &process)],
        b"pushed",
    );
    let (bundled, bundled_id) = reference.client_item(
        None,
        "Message",
        &[("Action", "Transfer")],
        b"a bundled item",
    );
    let base_layer = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    let hash_of =
        |bytes: &[u8]| item_dedupe_hash(&DataItem::parse(bytes).unwrap(), TagOrder::Sorted);
    let (pushed_hash, bundled_hash) = (hash_of(&pushed), hash_of(&bundled));
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut chain,
        1,
        now_ms() + 1,
        Some((pushed, pushed_id)),
        None,
    );
    for (nonce, assigned) in [(2, bundled_id), (3, base_layer)] {
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            now_ms() + nonce,
            None,
            Some(assigned),
        );
    }
    let disk = tempfile::tempdir().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let store = rocksdb::DB::open(&options, disk.path()).unwrap();
        for hash in [pushed_hash, bundled_hash] {
            store
                .put(
                    format!("deephash___{process}___{}", b64::encode(&hash)),
                    &process,
                )
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let disk_dir = disk.path().to_str().unwrap();
    let out = import(dir.path(), &db.url(), &["--disk-dir", disk_dir]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        1,
        "only the base-layer assignment: {}",
        out.stdout
    );
    {
        let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        let pid = b64::decode_id(&process).unwrap();
        let mut hashes = store.dedupe_hashes(&pid).unwrap();
        hashes.sort_unstable();
        let mut expected = vec![pushed_hash, bundled_hash];
        expected.sort_unstable();
        assert_eq!(hashes, expected);
    }
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");

    let gateway = support::fakes::FakeGateway::start(1_000);
    let (tx, data) = support::fakes::GqlTx::of_item(&bundled);
    gateway.add_tx(tx, &data);
    let (status, body) =
        assign_after_the_move(dir.path(), &reference, &gateway, &process, &bundled_id);
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );
}

/// A legacy (era P1) process imported before it had any message takes its first one at nonce
/// 0, as the reference would have given it (PROTOCOL 6.1), with the seed link.
#[test]
fn an_imported_legacy_process_without_entries_takes_its_first_message() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("emptylegacy");
    db.migrate_all_from(0);
    let legacy = insert_legacy_process(&reference, &mut db, now_ms() - 60_000);
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_WALLET_PATH", wallet_path.to_str().unwrap())],
    );
    let client = support::Client::new();
    for expected in ["0", "1"] {
        let (message, _) = client.message(&legacy, "first");
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        let last = support::edges(&su, &legacy).last().unwrap()["node"].clone();
        assert_eq!(support::tag(&last, "Nonce"), expected);
    }
    drop(su);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
}

/// PROTOCOL 9.2 guidance 2 (DECISIONS 2): where the reference's JSON columns hold a `data`
/// value other than what the bytes render, the Postgres reference served that value on the
/// reads it rendered from those columns, and so does `su` after the import: a process's
/// `process_data` everywhere its Process item renders, an era-M1 row's `message_data` on
/// single reads (its list entry rendered from the bytes, then as now).
#[test]
fn data_values_the_reference_kept_in_its_json_columns_are_served_as_it_served_them() {
    let reference = Reference::new(Signing::Real);
    let (mut db, eras) = every_era_database(&reference);
    // An M1 row whose `data` differs from its bytes, one whose `data` is what its bytes
    // render, a later row (not M1) whose `data` key must be ignored, and an AOP-6 process.
    for (nonce, data) in [(1, "kept by the reference"), (2, "return 2"), (4, "not M1")] {
        db.client
            .execute(
                "UPDATE messages SET message_data = message_data || \
                 jsonb_build_object('data', $1::text) WHERE process_id = $2 AND nonce = $3",
                &[&data, &eras.legacy, &nonce],
            )
            .unwrap();
    }
    db.client
        .execute(
            "UPDATE processes SET process_data = jsonb_set(process_data, '{process,data}', \
             to_jsonb('kept process data'::text)) WHERE process_id = $1",
            &[&eras.aop6],
        )
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    let kept: Vec<(Vec<u8>, Vec<u8>)> = dump(dir.path())
        .into_iter()
        .filter(|(cf, _, _)| *cf == ao_su::store::cf::DATA_OVERRIDES)
        .map(|(_, key, value)| (key, value))
        .collect();

    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_WALLET_PATH", wallet_path.to_str().unwrap())],
    );
    let json = |path: String| -> serde_json::Value {
        let (status, body) = su.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let legacy_edges = support::edges(&su, &eras.legacy);
    let message_at = |nonce: &str| -> (String, serde_json::Value) {
        let edge = legacy_edges
            .iter()
            .find(|edge| support::tag(&edge["node"], "Nonce") == nonce)
            .unwrap();
        let message = edge["node"]["message"].clone();
        (message["id"].as_str().unwrap().to_string(), message)
    };

    // The legacy process was written with process assignment off: its `process_data` says
    // `"data": null` although its data is UTF-8 text.
    assert_eq!(
        json(format!("/processes/{}", eras.legacy))["data"],
        serde_json::Value::Null
    );
    // The M1 row: its list entry renders the bytes, a single read the kept value.
    let (m1, listed) = message_at("1");
    assert_eq!(listed["data"], "return 1");
    let single = json(format!("/{m1}?process-id={}", eras.legacy));
    assert_eq!(single["message"]["data"], "kept by the reference");
    // A `data` equal to the bytes' rendering keeps nothing; a later era's is not read.
    let (same, _) = message_at("2");
    assert_eq!(
        json(format!("/{same}?process-id={}", eras.legacy))["message"]["data"],
        "return 2"
    );
    let (later, listed) = message_at("4");
    let single = json(format!("/{later}?process-id={}", eras.legacy));
    assert_eq!(single["message"]["data"], listed["data"]);
    assert_ne!(single["message"]["data"], "not M1");
    // The AOP-6 process: its record and the process node of its list.
    assert_eq!(
        json(format!("/processes/{}", eras.aop6))["data"],
        "kept process data"
    );
    let first = &support::edges(&su, &eras.aop6)[0]["node"];
    assert_eq!(first["message"]["id"], eras.aop6.as_str());
    assert_eq!(first["message"]["data"], "kept process data");
    drop(su);

    // Exactly the three differing values are kept, keyed by (process, item).
    let key = |process: &str, item: &str| {
        [b64::decode(process).unwrap(), b64::decode(item).unwrap()].concat()
    };
    let text = |value: &str| [&[1u8][..], value.as_bytes()].concat();
    let mut expected = vec![
        (key(&eras.legacy, &eras.legacy), vec![0u8]),
        (key(&eras.legacy, &m1), text("kept by the reference")),
        (key(&eras.aop6, &eras.aop6), text("kept process data")),
    ];
    expected.sort();
    assert_eq!(kept, expected);
}
