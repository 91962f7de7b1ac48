//! Generates `tests/fixtures/v1-store`: a store written by `su serve` at schema version 1,
//! and the exact bytes the v1 server answered for many reads, for `tests/upgrade_v1.rs`.
//!
//! Run it explicitly (it replaces the fixture):
//! `cargo test --test make_v1_fixture -- --ignored --nocapture`

mod support;

use ao_su::ans104::b64;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::fakes::{FakeBundler, FakeGateway, GqlTx, Mode};
use support::{Client, MODULE, TestSu, json_field, request};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1-store");

/// Records requests whose answers a v1 store must keep giving after any upgrade.
struct Recorder {
    port: u16,
    records: Vec<Value>,
}

impl Recorder {
    fn send(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let (status, bytes, _) = request(self.port, method, path, body, &[]);
        let text = String::from_utf8(bytes).expect("responses are UTF-8 JSON");
        (status, text)
    }

    /// A GET, recorded.
    fn get(&mut self, path: &str) -> (u16, String) {
        let (status, body) = self.send("GET", path, &[]);
        self.records.push(json!({
            "method": "GET", "path": path, "status": status, "body": body,
        }));
        (status, body)
    }

    /// A POST that changes nothing (a repeat or a rejection), recorded with its request body.
    fn post_again(&mut self, path: &str, item: &[u8]) -> (u16, String) {
        let (status, body) = self.send("POST", path, item);
        self.records.push(json!({
            "method": "POST", "path": path, "request": b64::encode(item),
            "status": status, "body": body,
        }));
        (status, body)
    }

    /// A POST that must succeed (not recorded: it schedules something).
    fn post_ok(&self, path: &str, item: &[u8]) -> Value {
        let (status, body) = self.send("POST", path, item);
        assert_eq!(status, 200, "POST {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64::encode(&bytes)
}

fn poll(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A signed item with full control over target and anchor; `anchor: None` means no anchor.
fn signed(
    client: &Client,
    target: Option<&str>,
    anchor: Option<[u8; 32]>,
    tags: &[(&str, &str)],
    data: &[u8],
) -> (Vec<u8>, String) {
    let tags = tags
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut draft = client.wallet.draft(tags, data.to_vec());
    draft.target = target.map(|t| b64::decode_id(t).unwrap());
    draft.anchor = anchor;
    let (bytes, id) = client.wallet.sign(&draft).unwrap();
    (bytes, b64::encode(&id))
}

fn ascii_anchor(n: u32) -> [u8; 32] {
    let text = format!("fixture-anchor-{n:017}");
    text.as_bytes().try_into().unwrap()
}

fn message_tags<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut tags = vec![
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Message"),
    ];
    tags.extend_from_slice(extra);
    tags
}

fn edges_of(recorder: &Recorder, pid: &str) -> Vec<Value> {
    let (status, body) = recorder.send("GET", &format!("/{pid}?from-nonce=-1&limit=5000"), &[]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["edges"]
        .as_array()
        .unwrap()
        .clone()
}

fn assignment_tag(node: &Value, name: &str) -> Option<String> {
    node["assignment"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| t["value"].as_str().unwrap().to_string())
}

/// Follows `has_next_page` with the last edge's cursor, recording every page.
fn walk_pages(
    recorder: &mut Recorder,
    pid: &str,
    first: &str,
    cursor_param: &str,
    rest: &str,
) -> usize {
    let mut path = format!("/{pid}?{first}&{rest}");
    let mut pages = 0;
    loop {
        let (status, body) = recorder.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        pages += 1;
        let page: Value = serde_json::from_str(&body).unwrap();
        if page["page_info"]["has_next_page"] != true {
            return pages;
        }
        let cursor = page["edges"].as_array().unwrap().last().unwrap()["cursor"]
            .as_str()
            .unwrap()
            .to_string();
        path = format!("/{pid}?{cursor_param}={cursor}&{rest}");
        assert!(pages < 100, "paging does not end");
    }
}

/// Every read of one process the fixture keeps.
fn record_process_reads(recorder: &mut Recorder, pid: &str, other_pid: &str) {
    let edges = edges_of(recorder, pid);
    let timestamps: Vec<String> = edges
        .iter()
        .map(|e| assignment_tag(&e["node"], "Timestamp").unwrap())
        .collect();
    let last = edges.len() - 1;
    let ts = |n: usize| timestamps[n.min(last)].clone();

    // Whole schedules and first pages.
    for query in [
        String::new(),
        "?show-anchor&limit=5".into(),
        "?from-nonce=-1&limit=99999&to-nonce=4".into(),
        "?limit=1".into(),
        format!("?process-id={pid}&limit=2"),
        format!("?proc-id={pid}&from-nonce=-1&limit=2&show-anchor"),
    ] {
        recorder.get(&format!("/{pid}{query}"));
    }
    // Cursor walks, timestamp mode and nonce mode.
    walk_pages(recorder, pid, "from=", "from", "limit=3");
    // (The nonce walk starts late: the first page above already reads every entry by nonce.)
    let start = format!("from-nonce={}", last - 8);
    walk_pages(recorder, pid, &start, "from-nonce", "limit=4&show-anchor");
    // Bounds in timestamp mode (from exclusive, to inclusive; the process node ignores to).
    for query in [
        format!("from={}&to={}", ts(2), ts(6)),
        format!("from={}&limit=3", ts(4)),
        format!("to={}", ts(3)),
        format!("to={}", ts(0)),
        format!("from={}&limit=2", ts(1)),
        format!("from={}", ts(last)),
        format!("from={}", ts(last - 1)),
        "from=0&limit=2".into(),
        "from=-5&limit=2".into(),
        "to=0".into(),
        format!("from={}&to={}", ts(5), ts(2)),
    ] {
        recorder.get(&format!("/{pid}?{query}"));
    }
    // Bounds in nonce mode (from-nonce exclusive, to-nonce inclusive).
    for query in [
        "from-nonce=2&to-nonce=5".to_string(),
        "to-nonce=0".into(),
        "to-nonce=2".into(),
        "from-nonce=0&to-nonce=0".into(),
        format!("from-nonce={last}"),
        format!("from-nonce={}", last - 1),
        "from-nonce=3&limit=2&show-anchor".into(),
        format!("from-nonce={}&to-nonce=100000", last - 3),
        format!("from-nonce&to-nonce={}&limit=3", last / 2),
        format!("to-nonce=3&from={}", ts(1)),
    ] {
        recorder.get(&format!("/{pid}?{query}"));
    }
    // Latest and the process record.
    recorder.get(&format!("/{pid}/latest"));
    recorder.get(&format!("/{pid}/latest?show-anchor"));
    recorder.get(&format!("/processes/{pid}"));

    // Every id of every entry; half of them scoped to the process too.
    for (nonce, edge) in edges.iter().enumerate() {
        let node = &edge["node"];
        let aid = node["assignment"]["id"].as_str().unwrap();
        recorder.get(&format!("/{aid}"));
        if nonce % 2 == 1 {
            recorder.get(&format!("/{aid}?process-id={pid}"));
        }
        if let Some(mid) = node["message"]["id"].as_str() {
            if mid != pid {
                recorder.get(&format!("/{mid}"));
                if nonce % 2 == 0 {
                    recorder.get(&format!("/{mid}?process-id={pid}"));
                }
                recorder.get(&format!("/{mid}/latest"));
                recorder.get(&format!("/processes/{mid}"));
            }
            if nonce % 5 == 1 {
                recorder.get(&format!("/{mid}?show-anchor"));
                recorder.get(&format!("/{mid}?process-id={other_pid}"));
                recorder.get(&format!("/{aid}?show-anchor&process-id={pid}"));
            }
        } else {
            // An assignment-only entry: the assigned transaction's id.
            let tx = assignment_tag(node, "Message").unwrap();
            recorder.get(&format!("/{tx}"));
            recorder.get(&format!("/{tx}?process-id={pid}"));
            recorder.get(&format!("/{tx}?show-anchor"));
            recorder.get(&format!("/{aid}?show-anchor"));
        }
    }
}

/// `tar` the data dir (without RocksDB's info logs) into `data.tar.gz`.
fn pack(parent: &Path, out: &Path) {
    let tar = out.join("data.tar");
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--exclude=LOG",
            "--exclude=LOG.old.*",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(parent)
        .arg("data")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    let _ = std::fs::remove_file(out.join("data.tar.gz"));
    let status = Command::new("gzip")
        .args(["-n", "-9"])
        .arg(&tar)
        .status()
        .unwrap();
    assert!(status.success(), "gzip failed");
}

/// Row counts per column family, entries by kind, read straight from the closed store.
fn census(data: &Path) -> Value {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), data).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), data, &names, false)
        .unwrap();
    let mut rows = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for name in &names {
        let cf = db.cf_handle(name).unwrap();
        let mut count = 0u64;
        for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (_, value) = item.unwrap();
            count += 1;
            if name == "entries" {
                let kind = match value[0] {
                    0 => "process",
                    1 => "message",
                    2 => "assignment_only",
                    _ => "unknown",
                };
                *kinds.entry(kind).or_insert(0u64) += 1;
            }
        }
        rows.insert(name.clone(), count);
    }
    json!({"rows_per_cf": rows, "entries_by_kind": kinds})
}

#[test]
#[ignore = "writes tests/fixtures/v1-store; run explicitly"]
fn make_v1_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let gateway = FakeGateway::start(1_500_000);
    let bundler = FakeBundler::start(Mode::Ok);
    let env = [
        ("ARWEAVE_URL", gateway.url()),
        ("GRAPHQL_URL", gateway.url()),
        ("UPLOAD_NODE_URL", bundler.url()),
        ("UPLOAD_BACKOFF_MAX_SECS", "1".to_string()),
        ("BLOCK_HEIGHT_REFRESH_SECS", "1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut su = TestSu::start(&data, &env);
    let mut rec = Recorder {
        port: su.port,
        records: Vec::new(),
    };
    let alice = Client::new();
    let bob = Client::new();
    // Items the fake gateway must know for the recorded POSTs to replay.
    let mut gateway_items: Vec<String> = Vec::new();
    let mut add_tx = |bytes: &[u8], null_anchor: bool| {
        let (mut tx, raw) = GqlTx::of_item(bytes);
        if null_anchor {
            tx.anchor = None;
        }
        gateway.add_tx(tx, &raw);
        gateway_items.push(b64::encode(bytes));
    };

    // P1: On-Boot names a transaction the gateway has; more tags; Settlement-Depth 3.
    let on_boot = random_id();
    gateway.add_existing(&on_boot);
    let (p1_item, p1) = signed(
        &alice,
        None,
        Some(ascii_anchor(1)),
        &[
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Process"),
            ("Module", MODULE),
            ("Scheduler", "x"),
            ("On-Boot", &on_boot),
            ("Settlement-Depth", "3"),
            ("Name", "fixture-one"),
            ("Authority", "fcoN_xJeisVsPXA-trzVAuIiqO3ydLQxM-L4XbrQKzY"),
            ("App-Name", "aos"),
        ],
        b"-- process one\nreturn 1",
    );
    let p1_receipt = rec.post_ok("/", &p1_item);
    assert_eq!(p1_receipt["id"], p1.as_str());

    // P2: a data body that is not UTF-8, no anchor.
    let (p2_item, p2) = signed(
        &alice,
        None,
        None,
        &[
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Process"),
            ("Module", MODULE),
            ("Scheduler", "x"),
            ("Cron-Interval", "10-minutes"),
        ],
        &[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, b'a', 0xf0, 0x90],
    );
    rec.post_ok("/", &p2_item);

    // P3: another owner, On-Boot=Data, data that needs JSON escapes, a random anchor.
    let (p3_item, p3) = bob.item(
        None,
        &[
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Process"),
            ("Module", MODULE),
            ("Scheduler", "x"),
            ("On-Boot", "Data"),
            ("Tag \"quoted\"", "tab\there é ☃ \u{2028}"),
        ],
        "{\"json\": \"with \\\"quotes\\\"\",\n \"ctl\": \"\u{1}\u{1f}\", \"u\": \"é☃𝄞\"}"
            .as_bytes(),
    );
    rec.post_ok("/", &p3_item);

    // Phase 1: the bundler acknowledges; these uploads leave the outbox.
    let mut p1_messages = Vec::new();
    for n in 0..4 {
        let data = format!("Send({{Target = ao.id, Data = \"{n}\"}})");
        let (item, mid) = alice.item(
            Some(b64::decode_id(&p1).unwrap()),
            &message_tags(&[("Action", "Eval")]),
            data.as_bytes(),
        );
        rec.post_ok("/", &item);
        p1_messages.push((item, mid));
    }
    let delivered = [p1.clone(), p1_messages[3].1.clone()];
    poll("phase-1 uploads", Duration::from_secs(30), || {
        let got = bundler.received_ids();
        delivered.iter().all(|id| got.contains(id))
    });
    // Phase 2: the bundler is down; later uploads stay queued in the outbox.
    bundler.set_mode(Mode::Down);
    std::thread::sleep(Duration::from_millis(300));

    // Messages of every shape.
    let p2_target = Some(p2.as_str());
    let (m, _) = signed(
        &alice,
        p2_target,
        None,
        &message_tags(&[("Action", "Raw")]),
        &[0x00, 0xff, b'h', b'i', 0xe2, 0x82],
    );
    rec.post_ok("/", &m);
    let (m, _) = signed(
        &bob,
        p2_target,
        Some(ascii_anchor(2)),
        &message_tags(&[]),
        b"",
    );
    rec.post_ok("/", &m);
    let (m, _) = alice.item(
        Some(b64::decode_id(&p3).unwrap()),
        &message_tags(&[("Action", "Eval"), ("Unicode-Ω", "naïve \"quote\" \\ back")]),
        "print(\"héllo\\n\")\r\n\t\u{7f}".as_bytes(),
    );
    rec.post_ok("/", &m);
    // A body of 6000 bytes: stored as a blob file.
    let big: Vec<u8> = (0..6000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let (m, _) = bob.item(
        Some(b64::decode_id(&p3).unwrap()),
        &message_tags(&[("Action", "Load")]),
        &big,
    );
    rec.post_ok("/", &m);
    for n in 0..6 {
        let (pid, client) = match n % 3 {
            0 => (&p1, &alice),
            1 => (&p2, &bob),
            _ => (&p3, &alice),
        };
        let (m, _) = client.message(pid, &format!("round one, message {n}"));
        rec.post_ok("/", &m);
    }

    // Pushed messages (From-Process): each records a dedupe row.
    fn pushed_tags(from: &str) -> Vec<(&str, &str)> {
        message_tags(&[
            ("From-Process", from),
            ("From-Module", MODULE),
            ("Pushed-For", "7Nn3TnKkf3Dm3gRyBpVVbUPvpn7O1Dcv7I54nmDbGjA"),
            ("Action", "Credit-Notice"),
        ])
    }
    let mut pushed_draft = alice.wallet.draft(
        pushed_tags(&p2)
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        b"{\"Quantity\":\"100\"}".to_vec(),
    );
    pushed_draft.target = b64::decode_id(&p1);
    let (pushed1, pushed1_id) = alice.wallet.sign(&pushed_draft).unwrap();
    let pushed1_receipt = rec.post_ok("/", &pushed1);
    assert_eq!(pushed1_receipt["id"], b64::encode(&pushed1_id).as_str());
    let (pushed2, pushed2_id) = signed(
        &bob,
        Some(&p1),
        Some(ascii_anchor(3)),
        &pushed_tags(&p3),
        b"second push",
    );
    rec.post_ok("/", &pushed2);
    let (pushed3, _) = signed(&alice, Some(&p3), None, &pushed_tags(&p2), b"");
    rec.post_ok("/", &pushed3);

    // A new block height: later entries carry it.
    gateway.set_height(1_500_123);
    poll("the new block height", Duration::from_secs(20), || {
        let (_, body) = rec.send("GET", "/timestamp", &[]);
        json_field(&body, "block_height") == "000001500123"
    });

    // AOP-1: an existing transaction, assigned to P1 with `exclude`, and to P2 without.
    let (t1_item, t1) = bob.item(
        None,
        &[("App-Name", "fixture"), ("Content-Type", "text/plain")],
        b"an existing transaction",
    );
    add_tx(&t1_item, false);
    let a1 = rec.post_ok(
        &format!("/?process-id={p1}&assign={t1}&exclude=Data,Memory"),
        b"",
    );
    rec.post_ok(&format!("/?process-id={p2}&assign={t1}"), b"");
    // A message of P1 assigned to P3 as well (its id then lives in two processes).
    let (m2_bytes, m2) = &p1_messages[1];
    add_tx(m2_bytes, false);
    rec.post_ok(&format!("/?process-id={p3}&assign={m2}&exclude="), b"");
    // A transaction with a null anchor, assigned to P3.
    let (t2_item, t2) = alice.item(None, &[("Kind", "null-anchor")], &[0x80, 0x81]);
    add_tx(&t2_item, true);
    rec.post_ok(&format!("/?process-id={p3}&assign={t2}"), b"");
    // Base layer (AOP-2): no dedupe row; one transaction twice into P1, one into P2.
    let base = random_id();
    gateway.set_confirmations(&base, 5);
    rec.post_ok(&format!("/?process-id={p1}&assign={base}&base-layer"), b"");
    let base2 = random_id();
    gateway.set_confirmations(&base2, 25);
    rec.post_ok(&format!("/?process-id={p2}&assign={base2}&base-layer"), b"");
    rec.post_ok(
        &format!("/?process-id={p1}&assign={base}&base-layer&exclude=x"),
        b"",
    );

    // More messages after the assignments.
    for n in 0..12 {
        let (pid, client) = match n % 3 {
            0 => (&p3, &bob),
            1 => (&p1, &alice),
            _ => (&p2, &alice),
        };
        let (m, _) = client.message(pid, &format!("round two, message {n}"));
        rec.post_ok("/", &m);
    }
    let (m, _) = signed(
        &alice,
        Some(&p1),
        Some(ascii_anchor(4)),
        &message_tags(&[("Action", "Eval"), ("Empty", "")]),
        b"last",
    );
    rec.post_ok("/", &m);

    // Writes that change nothing, replayed after the upgrade.
    for item in [
        &p1_item,
        &p2_item,
        &p3_item,
        &p1_messages[0].0,
        &pushed1,
        &pushed2,
    ] {
        let (status, body) = rec.post_again("/", item);
        assert_eq!(status, 200, "an idempotent repeat: {body}");
    }
    let (_, body) = rec.post_again("/", &p1_item);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        p1_receipt,
        "a repeat answers the original receipt"
    );
    // The pushed message's content, signed again: a new id with the same dedupe hash.
    let (pushed1_again, _) = alice.wallet.sign(&pushed_draft).unwrap();
    let (status, body) = rec.post_again("/", &pushed1_again);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Deep hash already exists"), "{body}");
    // The same transaction assigned again to P1: its gateway-derived hash is recorded.
    let (status, body) = rec.post_again(&format!("/?process-id={p1}&assign={t1}"), b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Deep hash already exists"), "{body}");
    // The gateway's view of a pushed message hashes like the message itself.
    add_tx(&pushed2, false);
    let (status, body) = rec.post_again(&format!("/?process-id={p1}&assign={pushed2_id}"), b"");
    assert_eq!(status, 400, "{body}");
    // Unknown processes.
    let ghost = random_id();
    let (orphan, _) = alice.message(&ghost, "nobody home");
    let (status, _) = rec.post_again("/", &orphan);
    assert_eq!(status, 400);
    let (status, _) = rec.post_again(&format!("/?process-id={ghost}&assign={t1}"), b"");
    assert_eq!(status, 400);

    // Reads.
    let pids = [p1.clone(), p2.clone(), p3.clone()];
    for (n, pid) in pids.iter().enumerate() {
        record_process_reads(&mut rec, pid, &pids[(n + 1) % 3]);
    }
    let a1_id = a1["id"].as_str().unwrap();
    for path in [
        format!("/{m2}?process-id={p3}"),
        format!("/{t1}?process-id={p2}"),
        format!("/{a1_id}?process-id={p2}"),
        format!("/{ghost}"),
        format!("/{ghost}?process-id={p1}"),
        format!("/{ghost}/latest"),
        format!("/processes/{ghost}"),
        format!("/{on_boot}"),
        format!("/{m2}?process-id={ghost}"),
        "/abc".to_string(),
        "/abc/latest".into(),
        "/processes/abc".into(),
        format!("/{p1}?limit=0"),
        format!("/{p1}?from=abc"),
        format!("/{p1}?to=-1"),
        format!("/{p2}?to-nonce=-2"),
        format!("/{p2}?from-nonce=x"),
        format!("/{m2}?process-id=abc"),
        format!("/{p1}/latest/x"),
    ] {
        rec.get(&path);
    }
    let address = json_field(&rec.send("GET", "/", &[]).1, "address");

    let last_nonces: Vec<Value> = pids
        .iter()
        .map(|pid| {
            let edges = edges_of(&rec, pid);
            let last = edges.last().unwrap();
            json!({
                "id": pid,
                "last_nonce": edges.len() - 1,
                "last_timestamp": assignment_tag(&last["node"], "Timestamp").unwrap(),
            })
        })
        .collect();
    assert_eq!(su.stop(), Some(0), "a clean shutdown");

    // The fixture.
    std::fs::create_dir_all(FIXTURE).unwrap();
    let out = Path::new(FIXTURE);
    pack(tmp.path(), out);
    let (ok, report) = support::su_verify(&data);
    assert!(ok, "{report}");
    let store = ao_su::store::Store::open(&data, ao_su::store::OpenMode::ReadOnly).unwrap();
    let pending: Vec<String> = store
        .outbox_rows(&[], 10_000)
        .unwrap()
        .iter()
        .map(|row| b64::encode(&row.id))
        .collect();
    drop(store);
    let census = census(&data);

    let mut lines = String::from("[\n");
    for (n, record) in rec.records.iter().enumerate() {
        let comma = if n + 1 < rec.records.len() { "," } else { "" };
        lines.push_str(&format!("{record}{comma}\n"));
    }
    lines.push_str("]\n");
    std::fs::write(out.join("responses.json"), lines).unwrap();
    let fixture = json!({
        "generated_by": "tests/make_v1_fixture.rs",
        "schema_version": 1,
        "address": address,
        "processes": last_nonces,
        "gateway_existing": [on_boot],
        "gateway_items": gateway_items,
        "pending_uploads": pending,
        "census": census,
    });
    std::fs::write(
        out.join("fixture.json"),
        serde_json::to_string_pretty(&fixture).unwrap() + "\n",
    )
    .unwrap();
    let gets = rec.records.iter().filter(|r| r["method"] == "GET").count();
    println!(
        "fixture written to {FIXTURE}: {} recorded requests ({gets} GET), {} pending uploads",
        rec.records.len(),
        pending.len()
    );
    println!("{}", serde_json::to_string_pretty(&census).unwrap());
}
