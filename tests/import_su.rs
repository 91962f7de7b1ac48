//! `su import-su` (issue 19): a varied history written into a real `su serve` is imported over
//! HTTP into a second store, which then serves every page byte for byte as the first did;
//! a rerun tops it up without duplicating anything; an item whose JSON lost its bytes
//! imports only with a gateway; and an import of the import gives the same rows.

mod reference;
mod support;

use ao_su::ans104::{ItemDraft, SignatureType, b64};
use ao_su::store::{DumpRow, OpenMode, Store};
use std::path::Path;
use support::fakes::{FakeGateway, GqlTx};
use support::{Client, MODULE, SuCommand, TestSu, edges, request, tag};

/// A client item with the given anchor (none, UTF-8 text, or bytes that are not UTF-8).
fn signed(
    client: &Client,
    target: Option<&str>,
    tags: &[(&str, &str)],
    data: &[u8],
    anchor: Option<[u8; 32]>,
) -> (Vec<u8>, String) {
    let mut draft = client.wallet.draft(
        tags.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        data.to_vec(),
    );
    draft.anchor = anchor;
    draft.target = target.and_then(b64::decode_id);
    let (bytes, id) = client.wallet.sign(&draft).unwrap();
    (bytes, b64::encode(&id))
}

/// An Ethereum-signed (type 3) item.
fn ethereum(
    seed: u8,
    target: Option<&str>,
    tags: &[(&str, &str)],
    data: &[u8],
) -> (Vec<u8>, String) {
    let draft = ItemDraft {
        signature_type: SignatureType::ETHEREUM,
        owner: Vec::new(),
        target: target.and_then(b64::decode_id),
        anchor: Some(*b"eth-anchor-000000000000000000001"),
        tags: tags
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        data: data.to_vec(),
    };
    let bytes = draft.finish_ethereum(&[seed; 32]);
    let id = ao_su::ans104::DataItem::parse(&bytes).unwrap().id();
    (bytes, b64::encode(&id))
}

const MESSAGE_TAGS: &[(&str, &str)] = &[
    ("Data-Protocol", "ao"),
    ("Variant", "ao.TN.1"),
    ("Type", "Message"),
    ("Action", "Eval"),
];

const PROCESS_TAGS: &[(&str, &str)] = &[
    ("Data-Protocol", "ao"),
    ("Variant", "ao.TN.1"),
    ("Type", "Process"),
    ("Module", MODULE),
    ("Scheduler", "x"),
];

fn post(su: &TestSu, bytes: &[u8]) {
    let (status, body) = su.post("/", bytes);
    assert_eq!(status, 200, "{body}");
}

/// Makes the gateway know an item (GraphQL and `/raw`), as Arweave would once it is uploaded.
fn publish(gateway: &FakeGateway, bytes: &[u8]) {
    let (metadata, data) = GqlTx::of_item(bytes);
    gateway.add_tx(metadata, &data);
}

/// Messages of every kind on `pid`; items whose JSON loses bytes are published.
fn write_messages(su: &TestSu, gateway: &FakeGateway, client: &Client, pid: &str, round: u8) {
    let text = format!("print('round {round}')");
    post(
        su,
        &signed(client, Some(pid), MESSAGE_TAGS, text.as_bytes(), None).0,
    );
    let utf8_anchor = Some(*b"00000000000000000000000000000042");
    post(
        su,
        &signed(client, Some(pid), MESSAGE_TAGS, b"anchored", utf8_anchor).0,
    );
    post(
        su,
        &ethereum(round + 1, Some(pid), MESSAGE_TAGS, b"from an eth wallet").0,
    );
    let pushed: Vec<_> = MESSAGE_TAGS
        .iter()
        .copied()
        .chain([("From-Process", pid)])
        .collect();
    post(su, &signed(client, Some(pid), &pushed, &[round], None).0);
    let binary = signed(
        client,
        Some(pid),
        MESSAGE_TAGS,
        b"\xff\xfe binary \x80",
        None,
    );
    publish(gateway, &binary.0);
    post(su, &binary.0);
    let random_anchor = signed(
        client,
        Some(pid),
        MESSAGE_TAGS,
        b"random anchor",
        Some([0x9c; 32]),
    );
    publish(gateway, &random_anchor.0);
    post(su, &random_anchor.0);
    let assigned = format!("assigned in round {round}");
    let (transaction, tx) = signed(
        client,
        None,
        &[("App-Name", "test")],
        assigned.as_bytes(),
        None,
    );
    publish(gateway, &transaction);
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={tx}"), b"");
    assert_eq!(status, 200, "{body}");
}

/// Two processes: one RSA-signed, one Ethereum-signed with binary data.
fn write_history(su: &TestSu, gateway: &FakeGateway, client: &Client) -> Vec<String> {
    let (process, rsa_pid) = client.process();
    publish(gateway, &process);
    post(su, &process);
    let (process, eth_pid) = ethereum(40, None, PROCESS_TAGS, b"\x00\x9f\x92\x96 boot");
    publish(gateway, &process);
    post(su, &process);
    for pid in [&rsa_pid, &eth_pid] {
        write_messages(su, gateway, client, pid, 0);
    }
    vec![rsa_pid, eth_pid]
}

fn url(su: &TestSu) -> String {
    format!("http://127.0.0.1:{}", su.port)
}

fn gateway_env(gateway: &FakeGateway) -> Vec<(&'static str, String)> {
    vec![
        ("ARWEAVE_URL", gateway.url()),
        ("GRAPHQL_URL", gateway.url()),
    ]
}

/// A source SU that reads through `gateway`, holding `write_history`'s processes: its data
/// dir, the SU, the client that wrote them, and their ids.
fn source_with_history(gateway: &FakeGateway) -> (tempfile::TempDir, TestSu, Client, Vec<String>) {
    let env = gateway_env(gateway);
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let source = TestSu::start(dir.path(), &env);
    let client = Client::new();
    let pids = write_history(&source, gateway, &client);
    (dir, source, client, pids)
}

fn import_su(
    data_dir: &Path,
    from: &TestSu,
    pids: &[String],
    gateway: Option<&FakeGateway>,
) -> support::SuOutput {
    let from = url(from);
    let mut command = SuCommand::new(data_dir).args(["import-su", "--from", from.as_str()]);
    for pid in pids {
        command = command.args(["--process", pid.as_str()]);
    }
    for (name, value) in gateway.map(gateway_env).unwrap_or_default() {
        command = command.env(name, value);
    }
    command.output()
}

/// Serves an imported store with the wallet of the SU it came from.
fn serve_imported(data_dir: &Path, source: &TestSu) -> TestSu {
    let wallet = source.data_dir.join("wallet.json");
    TestSu::start(data_dir, &[("SU_WALLET_PATH", wallet.to_str().unwrap())])
}

fn get(su: &TestSu, path: &str) -> (u16, Vec<u8>) {
    let (status, body, _) = request(su.port, "GET", path, &[], &[]);
    (status, body)
}

/// Every read a client makes of the processes answers the same bytes on both SUs.
fn assert_same_reads(expected: &TestSu, found: &TestSu, pids: &[String]) {
    for pid in pids {
        let mut paths = vec![
            format!("/{pid}?process-id={pid}&from-nonce=-1&limit=1000&show-anchor=true"),
            format!("/{pid}?process-id={pid}&from-nonce=-1&limit=1000"),
            format!("/{pid}?process-id={pid}&from-nonce=3&limit=2"),
            format!("/{pid}?process-id={pid}&limit=3"),
            format!("/{pid}?process-id={pid}"),
            format!("/processes/{pid}"),
            format!("/{pid}/latest?process-id={pid}"),
        ];
        for edge in edges(expected, pid) {
            if let Some(id) = edge["node"]["message"]["id"].as_str() {
                paths.push(format!("/{id}?process-id={pid}"));
            }
            let cursor = edge["cursor"].as_str().unwrap();
            paths.push(format!("/{pid}?process-id={pid}&from={cursor}&limit=4"));
        }
        for path in paths {
            let (want_status, want) = get(expected, &path);
            let (status, body) = get(found, &path);
            assert_eq!(
                want_status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&want)
            );
            assert_eq!((status, body), (want_status, want), "{path}");
        }
    }
}

fn dump(data_dir: &Path) -> Vec<DumpRow> {
    Store::open(data_dir, OpenMode::ReadOnly)
        .unwrap()
        .dump()
        .unwrap()
}

fn rows_of<'a>(rows: &'a [DumpRow], cf: &str) -> Vec<&'a DumpRow> {
    rows.iter().filter(|(name, _, _)| *name == cf).collect()
}

/// An `entries` value without what an import sets its own way: the log sequence (bytes
/// 9..17), the origin (114) and the dedupe hashes after it.
fn entry_head(value: &[u8]) -> Vec<u8> {
    [&value[..9], &value[17..114]].concat()
}

/// The imported store holds the source's items, indexes and process records, and its
/// entries differ only in sequence, origin and dedupe hashes.
fn assert_same_schedule(source: &Path, imported: &Path) {
    let (source, imported) = (dump(source), dump(imported));
    for cf in ["items", "by_time", "by_id", "processes"] {
        assert_eq!(rows_of(&imported, cf), rows_of(&source, cf), "{cf}");
    }
    let heads = |rows: &[DumpRow]| -> Vec<(Vec<u8>, Vec<u8>)> {
        rows_of(rows, "entries")
            .into_iter()
            .map(|(_, key, value)| (key.clone(), entry_head(value)))
            .collect()
    };
    assert_eq!(heads(&imported), heads(&source));
    assert!(
        rows_of(&imported, "outbox").is_empty(),
        "imported history is not uploaded again"
    );
}

fn nonces(su: &TestSu, pid: &str) -> Vec<u64> {
    edges(su, pid)
        .iter()
        .map(|edge| tag(&edge["node"], "Nonce").parse().unwrap())
        .collect()
}

#[test]
fn an_imported_schedule_reads_byte_for_byte_and_tops_up() {
    let gateway = FakeGateway::start(1_500_000);
    let (source_dir, source, client, pids) = source_with_history(&gateway);

    let imported = tempfile::tempdir().unwrap();
    let output = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    assert!(
        output
            .stdout
            .contains("imported 2 processes (0 legacy), 16 entries"),
        "{}",
        output.text()
    );
    assert!(
        output.stdout.contains("not imported (do not verify): 0"),
        "{}",
        output.text()
    );
    assert_same_schedule(source_dir.path(), imported.path());
    let mut served = serve_imported(imported.path(), &source);
    assert_same_reads(&source, &served, &pids);
    served.stop();

    // Top-up: more history at the source; a rerun brings exactly what is new.
    write_messages(&source, &gateway, &client, &pids[0], 1);
    let output = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    assert!(
        output
            .stdout
            .contains("imported 2 processes (0 legacy), 7 entries"),
        "{}",
        output.text()
    );
    let output = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    assert!(
        output
            .stdout
            .contains("imported 2 processes (0 legacy), 0 entries"),
        "{}",
        output.text()
    );
    assert_same_schedule(source_dir.path(), imported.path());
    let mut served = serve_imported(imported.path(), &source);
    assert_same_reads(&source, &served, &pids);
    assert_eq!(
        nonces(&served, &pids[0]),
        (0..=14).collect::<Vec<_>>(),
        "no duplicate"
    );

    // New messages on the imported store continue its nonces and chains.
    post(&served, &client.message(&pids[0], "after the move").0);
    assert_eq!(nonces(&served, &pids[0]).last(), Some(&15));
    let (ok, report) = support::su_verify(served.data_dir.as_path());
    served.stop();
    assert!(ok, "{report}");
    // A store whose process has entries scheduled here is not topped up over them.
    let output = import_su(imported.path(), &source, &pids[..1], Some(&gateway));
    assert!(!output.success(), "{}", output.text());
    assert!(
        output.stdout.contains("scheduled by this store's own SU"),
        "{}",
        output.text()
    );
}

#[test]
fn an_import_of_the_import_is_the_same_store() {
    let gateway = FakeGateway::start(1_500_000);
    let (_source_dir, source, _client, pids) = source_with_history(&gateway);
    let first = tempfile::tempdir().unwrap();
    let output = import_su(first.path(), &source, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    let mut served = serve_imported(first.path(), &source);
    let second = tempfile::tempdir().unwrap();
    let output = import_su(second.path(), &served, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    served.stop();
    let rows = |dir: &Path| -> Vec<DumpRow> {
        dump(dir)
            .into_iter()
            .filter(|(cf, key, _)| {
                *cf != "checkpoints" && !(*cf == "meta" && key == b"block_height")
            })
            .collect()
    };
    assert_eq!(rows(second.path()), rows(first.path()));
}

/// A process and messages without anchors, so that only their data can be lost.
fn anchorless_process(client: &Client) -> (Vec<u8>, String) {
    signed(client, None, PROCESS_TAGS, b"-- process", None)
}

fn anchorless_message(client: &Client, pid: &str, data: &[u8]) -> (Vec<u8>, String) {
    signed(client, Some(pid), MESSAGE_TAGS, data, None)
}

#[test]
fn an_item_whose_json_lost_its_data_needs_the_gateway() {
    let gateway = FakeGateway::start(1_500_000);
    let source_dir = tempfile::tempdir().unwrap();
    let source = TestSu::start(source_dir.path(), &[]);
    let client = Client::new();
    let (process, pid) = anchorless_process(&client);
    post(&source, &process);
    post(&source, &anchorless_message(&client, &pid, b"first").0);
    let (binary, binary_id) = anchorless_message(&client, &pid, b"\xc3\x28 not utf-8");
    post(&source, &binary);
    post(&source, &anchorless_message(&client, &pid, b"after it").0);
    let pids = vec![pid.clone()];

    let imported = tempfile::tempdir().unwrap();
    let output = import_su(imported.path(), &source, &pids, None);
    assert!(!output.success(), "{}", output.text());
    assert!(
        output.stdout.contains(&format!(
            "not imported: process {pid} nonce 2: message {binary_id}"
        )),
        "{}",
        output.text()
    );
    assert!(
        output.stdout.contains("not imported (do not verify): 1"),
        "{}",
        output.text()
    );
    let store = Store::open(imported.path(), OpenMode::ReadOnly).unwrap();
    let last = store.last_entry(&b64::decode_id(&pid).unwrap()).unwrap();
    assert_eq!(
        last.map(|(nonce, _)| nonce),
        Some(1),
        "the process stops before the item"
    );
    drop(store);

    // A gateway that does not have it changes nothing; one that has it completes the import.
    let output = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(!output.success(), "{}", output.text());
    publish(&gateway, &binary);
    let output = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(output.success(), "{}", output.text());
    assert!(
        output
            .stdout
            .contains("imported 1 processes (0 legacy), 2 entries"),
        "{}",
        output.text()
    );
    assert_same_schedule(source_dir.path(), imported.path());
    let mut served = serve_imported(imported.path(), &source);
    assert_same_reads(&source, &served, &pids);
    served.stop();
}

/// Writes a legacy (era P1) process into a new store, as an import from the reference's
/// database leaves it; `su serve` cannot create one.
fn legacy_process(data_dir: &Path, client: &Client) -> String {
    let (item, pid) = anchorless_process(client);
    let id = b64::decode_id(&pid).unwrap();
    let bundle = ao_su::ans104::encode_bundle(&[(&item[..], id)]);
    let tags = [
        ("Bundle-Format", "binary"),
        ("Bundle-Version", "2.0.0"),
        ("Block-Height", "000001526366"),
        ("Timestamp", "1711500000000"),
    ];
    let (wrapper, wrapper_id) = signed(client, None, &tags, &bundle, None);
    let store = Store::open(data_dir, OpenMode::ReadWrite).unwrap();
    let legacy = ao_su::store::LegacyProcess {
        process: id,
        sequence: 1,
        timestamp: 1_711_500_000_000,
        item,
        wrapper_id: b64::decode_id(&wrapper_id).unwrap(),
        wrapper,
    };
    let commit = ao_su::store::Commit {
        legacy_processes: vec![legacy],
        ..ao_su::store::Commit::default()
    };
    store.write(&commit).unwrap();
    pid
}

#[test]
fn a_legacy_process_or_an_unknown_one_is_reported() {
    let source_dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    // A first start creates the SU's wallet and binds the store to it.
    TestSu::start(source_dir.path(), &[]).stop();
    let legacy = legacy_process(source_dir.path(), &client);
    let source = TestSu::start(source_dir.path(), &[]);
    assert!(
        edges(&source, &legacy).is_empty(),
        "a legacy process has no process node"
    );
    let unknown = Client::new().process().1;
    let imported = tempfile::tempdir().unwrap();
    let output = import_su(
        imported.path(),
        &source,
        &[legacy.clone(), unknown.clone()],
        None,
    );
    assert!(!output.success(), "{}", output.text());
    assert!(
        output
            .stdout
            .contains(&format!("not imported: process {legacy}: a legacy process")),
        "{}",
        output.text()
    );
    assert!(
        output.stdout.contains(&format!(
            "not imported: process {unknown}: the SU does not hold it"
        )),
        "{}",
        output.text()
    );
    let store = Store::open(imported.path(), OpenMode::ReadOnly).unwrap();
    assert_eq!(store.last_sequence().unwrap(), 0, "nothing was imported");
}

/// The every-era history the Postgres and RocksDB importers are tested on (tests/reference),
/// moved with `import-postgres` and served, then read over HTTP with `import-su`: every
/// process but the legacy one (no SU serves a P1 wrapper) answers every read with the same
/// bytes from both stores: the real fixtures, Ethereum-signed items, assignments, data and
/// anchors that are not UTF-8 (from the gateway), a process written with assignments off.
#[test]
fn the_every_era_history_moves_over_http_as_import_postgres_moved_it() {
    use reference::postgres::Database;
    let reference = reference::Reference::new(reference::Signing::Real);
    let mut db = Database::create("su_eras");
    let eras = reference::every_era(&reference, &mut db);
    let moved = tempfile::tempdir().unwrap();
    let out = SuCommand::new(moved.path())
        .args(["import-postgres", "--database-url", &db.url()])
        .output();
    assert!(out.success(), "{}", out.text());
    let gateway = FakeGateway::start(1_000);
    let pids: Vec<String> = {
        let store = Store::open(moved.path(), OpenMode::ReadOnly).unwrap();
        for (cf, _, item) in store.dump().unwrap() {
            if cf == "items" && ao_su::ans104::DataItem::parse(&item).is_ok() {
                publish(&gateway, &item);
            }
        }
        store
            .processes_after(None, 1000)
            .unwrap()
            .iter()
            .map(|pid| b64::encode(pid))
            .filter(|pid| *pid != eras.legacy)
            .collect()
    };
    assert_eq!(pids.len(), 4, "the AOP-6 processes: {pids:?}");
    let wallet = tempfile::tempdir().unwrap();
    let wallet_path = wallet.path().join("reference-wallet.json");
    ao_su::wallet::Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let wallet_env = [("SU_WALLET_PATH", wallet_path.to_str().unwrap())];
    let source = TestSu::start(moved.path(), &wallet_env);

    let imported = tempfile::tempdir().unwrap();
    let out = import_su(imported.path(), &source, &pids, Some(&gateway));
    assert!(out.success(), "{}", out.text());
    let served = TestSu::start(imported.path(), &wallet_env);
    assert_same_reads(&source, &served, &pids);
    drop((served, source));

    // The stores: the moved processes' rows are the same through both importers (entries up
    // to what an import numbers its own way), and every item is the same bytes.
    let ids: Vec<Vec<u8>> = pids.iter().map(|pid| b64::decode(pid).unwrap()).collect();
    let (from_postgres, from_su) = (dump(moved.path()), dump(imported.path()));
    let of_moved = |rows: &[DumpRow], cf: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        rows_of(rows, cf)
            .into_iter()
            .filter(|(_, key, _)| {
                let process = if cf == "by_id" {
                    &key[32..64]
                } else {
                    &key[..32]
                };
                ids.iter().any(|id| id[..] == *process)
            })
            .map(|(_, key, value)| {
                let value = if cf == "entries" {
                    entry_head(value)
                } else {
                    value.clone()
                };
                (key.clone(), value)
            })
            .collect()
    };
    for cf in ["entries", "by_time", "by_id", "processes", "dedupe"] {
        let expected = of_moved(&from_postgres, cf);
        assert!(!expected.is_empty() || cf == "dedupe", "{cf}");
        assert_eq!(of_moved(&from_su, cf), expected, "{cf}");
    }
    let items = rows_of(&from_postgres, "items");
    for row in rows_of(&from_su, "items") {
        assert!(
            items.contains(&row),
            "an item import-postgres does not hold"
        );
    }
}

/// A source that answers with more than its bound (here 20 MiB to `GET /`, whose answer may
/// take 1 MiB) ends the import with a clear error after reading at most the bound.
#[test]
fn a_source_that_answers_too_much_is_refused() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let size = 20usize << 20;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes());
                let chunk = vec![b' '; 64 << 10];
                for _ in 0..size / chunk.len() {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let from = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = SuCommand::new(dir.path())
        .args([
            "import-su",
            "--from",
            from.as_str(),
            "--process",
            &"a".repeat(43),
        ])
        .output();
    assert!(!out.success(), "{}", out.text());
    assert!(out.text().contains("answered too much"), "{}", out.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let read = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read < 8 << 20, "the source could send {read} bytes");
}
