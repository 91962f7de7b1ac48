//! The real `su` binary against fake upstreams: block height from the gateway, AOP-1 and
//! AOP-2 assignments, the On-Boot check, and the durable upload outbox (faults, restarts).

mod support;

use ao_su::ans104::b64;
use ao_su::store::{OpenMode, Store};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::fakes::{FakeBundler, FakeGateway, GqlTx, Mode};
use support::{Client, MODULE, SuCommand, TestSu, edges, json_field, tag, tags};

const FAST: [(&str, &str); 2] = [
    ("UPLOAD_BACKOFF_MAX_SECS", "1"),
    ("BLOCK_HEIGHT_REFRESH_SECS", "1"),
];

fn start(dir: &Path, urls: &[(&str, String)]) -> TestSu {
    let mut env: Vec<(&str, &str)> = FAST.to_vec();
    env.extend(urls.iter().map(|(name, value)| (*name, value.as_str())));
    TestSu::start(dir, &env)
}

fn process_with(client: &Client, extra: &[(&str, &str)]) -> (Vec<u8>, String) {
    let mut all = vec![
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Process"),
        ("Module", MODULE),
        ("Scheduler", "x"),
    ];
    all.extend_from_slice(extra);
    client.item(None, &all, b"-- process")
}

fn spawn(su: &TestSu, item: &[u8]) {
    let (status, body) = su.post("/", item);
    assert_eq!(status, 200, "{body}");
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

/// Every item id and assignment id scheduled on `pids`.
fn scheduled_ids(su: &TestSu, pids: &[String]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for pid in pids {
        for edge in edges(su, pid) {
            let node = &edge["node"];
            ids.insert(node["assignment"]["id"].as_str().unwrap().to_string());
            if let Some(id) = node["message"]["id"].as_str() {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

fn wait_delivered(bundler: &FakeBundler, ids: &HashSet<String>, deadline: Duration) {
    poll("the bundler to receive every id", deadline, || {
        let received: HashSet<String> = bundler.received_ids().into_iter().collect();
        ids.is_subset(&received)
    });
}

#[test]
fn block_height_comes_from_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(1_234_567);
    let su = start(dir.path(), &[("ARWEAVE_URL", gateway.url())]);
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);
    let all = edges(&su, &pid);
    assert_eq!(tag(&all[0]["node"], "Nonce"), "0");
    assert_eq!(
        tag(&all[0]["node"], "Block-Height"),
        format!("{:012}", 1_234_567)
    );
    let (status, body) = su.get("/timestamp");
    assert_eq!(status, 200);
    assert_eq!(json_field(&body, "block_height"), "000001234567");

    // The background refresh picks up a new height; the next message carries it.
    gateway.set_height(1_234_600);
    poll("the refreshed height", Duration::from_secs(20), || {
        json_field(&su.get("/timestamp").1, "block_height") == "000001234600"
    });
    let (message, _) = client.message(&pid, "x");
    assert_eq!(su.post("/", &message).0, 200);
    let all = edges(&su, &pid);
    assert_eq!(tag(&all[1]["node"], "Block-Height"), "000001234600");
}

#[test]
fn assign_an_existing_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(100);
    let su = start(
        dir.path(),
        &[
            ("ARWEAVE_URL", gateway.url()),
            ("GRAPHQL_URL", gateway.url()),
        ],
    );
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);

    // T is a real signed item that the gateway indexes.
    let (bytes, tx) = client.item(None, &[("App-Name", "test"), ("Kind", "x")], b"payload");
    let (metadata, data) = GqlTx::of_item(&bytes);
    gateway.add_tx(metadata, &data);

    let path = format!("/?process-id={pid}&assign={tx}&exclude=a,,b");
    let (status, body) = su.post(&path, b"");
    assert_eq!(status, 200, "{body}");
    let assignment = json_field(&body, "id").as_str().unwrap().to_string();
    assert_eq!(assignment.len(), 43);
    assert_ne!(assignment, tx);

    let all = edges(&su, &pid);
    assert_eq!(all.len(), 2);
    let node = &all[1]["node"];
    assert_eq!(node["message"], serde_json::Value::Null);
    assert_eq!(node["assignment"]["id"], assignment.as_str());
    let all_tags = tags(node);
    let exclude = [
        ("Message", tx.as_str()),
        ("Exclude", "a"),
        ("Exclude", ""),
        ("Exclude", "b"),
    ];
    let exclude = exclude.map(|(n, v)| (n.to_string(), v.to_string()));
    assert!(all_tags.ends_with(&exclude), "{all_tags:?}");
    let (status, body) = su.get(&format!("/{assignment}?process-id={pid}"));
    assert_eq!(status, 200, "{body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(read["assignment"]["id"], assignment.as_str());
    assert_eq!(read["message"], serde_json::Value::Null);

    // The same transaction again: its dedupe hash is recorded.
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={tx}"), b"");
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );
    let unknown = random_id();
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={unknown}"), b"");
    assert_eq!(status, 400);
    assert!(body.contains("Transaction not found"), "{body}");
    assert_eq!(edges(&su, &pid).len(), 2, "rejections store nothing");

    // A null anchor is an empty blob.
    let (bytes, tx) = client.item(None, &[("Kind", "y")], b"other");
    let (mut metadata, data) = GqlTx::of_item(&bytes);
    metadata.anchor = None;
    gateway.add_tx(metadata, &data);
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={tx}"), b"");
    assert_eq!(status, 200, "{body}");

    // The gateway's view of a pushed message hashes like the posted item itself.
    let target = b64::decode_id(&pid).unwrap();
    let pushed = [
        ("Data-Protocol", "ao"),
        ("Type", "Message"),
        ("From-Process", "p"),
    ];
    let (bytes, tx) = client.item(Some(target), &pushed, b"pushed");
    assert_eq!(su.post("/", &bytes).0, 200);
    let (metadata, data) = GqlTx::of_item(&bytes);
    gateway.add_tx(metadata, &data);
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={tx}"), b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Deep hash already exists"), "{body}");
    assert_eq!(edges(&su, &pid).len(), 4);
}

#[test]
fn base_layer_assignments_need_the_settlement_depth() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(100);
    let su = start(dir.path(), &[("ARWEAVE_URL", gateway.url())]);
    let client = Client::new();
    let (process, pid) = process_with(&client, &[("Settlement-Depth", "5")]);
    spawn(&su, &process);

    let tx = random_id();
    gateway.set_confirmations(&tx, 3);
    let path = format!("/?process-id={pid}&assign={tx}&base-layer");
    let (status, body) = su.post(&path, b"");
    assert_eq!(status, 400);
    assert!(
        body.contains("Not enough confirmations to assign"),
        "{body}"
    );
    assert_eq!(edges(&su, &pid).len(), 1);
    gateway.set_confirmations(&tx, 7);
    let (status, body) = su.post(&path, b"");
    assert_eq!(status, 200, "{body}");
    let all = edges(&su, &pid);
    assert_eq!(all.len(), 2);
    assert_eq!(tag(&all[1]["node"], "Message"), tx);
    assert_eq!(
        all[1]["node"]["assignment"]["id"],
        json_field(&body, "id").as_str().unwrap()
    );

    // Without the tag the depth is 20.
    let (process, pid) = client.process();
    spawn(&su, &process);
    let tx = random_id();
    gateway.set_confirmations(&tx, 19);
    let path = format!("/?process-id={pid}&assign={tx}&base-layer");
    let (status, body) = su.post(&path, b"");
    assert_eq!(status, 400);
    assert!(
        body.contains("Not enough confirmations to assign"),
        "{body}"
    );
    gateway.set_confirmations(&tx, 20);
    let (status, body) = su.post(&path, b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(edges(&su, &pid).len(), 2);
}

#[test]
fn on_boot_must_name_an_existing_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (empty, gateway) = (FakeGateway::start(100), FakeGateway::start(100));
    // HEAD goes to each of ARWEAVE_URL_LIST in order; the first 2xx wins.
    let list = format!("{},{}", empty.url(), gateway.url());
    let su = start(
        dir.path(),
        &[("ARWEAVE_URL", gateway.url()), ("ARWEAVE_URL_LIST", list)],
    );
    let client = Client::new();
    let existing = random_id();
    gateway.add_existing(&existing);

    let (process, pid) = process_with(&client, &[("On-Boot", &existing)]);
    spawn(&su, &process);
    assert_eq!(edges(&su, &pid).len(), 1);
    assert!(empty.head_count() >= 1 && gateway.head_count() >= 1);

    let (process, pid) = process_with(&client, &[("On-Boot", &random_id())]);
    let (status, body) = su.post("/", &process);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"Invalid tx id for On-Boot tag"}"#)
    );
    let (status, body) = su.get(&format!("/{pid}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Message or Process not found"), "{body}");
    let heads = (empty.head_count(), gateway.head_count());

    let (process, pid) = process_with(&client, &[("On-Boot", "Data")]);
    spawn(&su, &process);
    assert_eq!(edges(&su, &pid).len(), 1);
    let after = (empty.head_count(), gateway.head_count());
    assert_eq!(after, heads, "On-Boot=Data is not checked");
}

#[test]
fn outbox_delivers_items_and_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Ok);
    let su = start(
        dir.path(),
        &[
            ("UPLOAD_NODE_URL", bundler.url()),
            ("CACHE_URL", bundler.url()),
        ],
    );
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);
    let mut posted = vec![pid.clone()];
    for n in 0..3 {
        let (message, mid) = client.message(&pid, &format!("msg {n}"));
        assert_eq!(su.post("/", &message).0, 200);
        posted.push(mid);
    }
    let ids = scheduled_ids(&su, std::slice::from_ref(&pid));
    assert_eq!(ids.len(), 8, "4 items and 4 assignments");
    assert!(posted.iter().all(|id| ids.contains(id)));
    wait_delivered(&bundler, &ids, Duration::from_secs(20));
    poll(
        "the cache to receive every id",
        Duration::from_secs(20),
        || {
            let cached: HashSet<String> = bundler.cache_ids().into_iter().collect();
            ids.is_subset(&cached)
        },
    );
    // What the bundler got are the exact signed bytes: ids re-derive from the bodies.
    assert!(bundler.received_ids().iter().all(|id| ids.contains(id)));
}

#[test]
fn outbox_survives_bundler_faults() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Down);
    let su = start(dir.path(), &[("UPLOAD_NODE_URL", bundler.url())]);
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);

    // Writes keep succeeding whatever the bundler does.
    let phase = |mode: Mode, length: Duration| {
        bundler.set_mode(mode.clone());
        let until = Instant::now() + length;
        while Instant::now() < until {
            let (message, _) = client.message(&pid, "during a fault");
            let (status, body) = su.post("/", &message);
            assert_eq!(status, 200, "{mode:?}: {body}");
            std::thread::sleep(Duration::from_millis(400));
        }
    };
    phase(Mode::Down, Duration::from_secs(3));
    assert!(bundler.attempts() > 0, "the outbox tried while down");
    assert!(bundler.received_ids().is_empty());
    let before_fail = bundler.attempts();
    phase(Mode::Fail, Duration::from_secs(2));
    assert!(bundler.attempts() > before_fail, "the outbox tried on 500s");
    assert!(bundler.received_ids().is_empty());
    phase(Mode::Slow(300), Duration::from_secs(1));
    poll("a slow delivery", Duration::from_secs(20), || {
        !bundler.received_ids().is_empty()
    });
    bundler.set_mode(Mode::Ok);

    let ids = scheduled_ids(&su, std::slice::from_ref(&pid));
    assert!(ids.len() >= 2 * 6, "{} ids", ids.len());
    wait_delivered(&bundler, &ids, Duration::from_secs(30));
}

#[test]
fn outbox_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Down);
    let env = [("UPLOAD_NODE_URL", bundler.url())];
    let mut su = start(dir.path(), &env);
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);
    for n in 0..5 {
        let (message, _) = client.message(&pid, &format!("msg {n}"));
        assert_eq!(su.post("/", &message).0, 200);
    }
    let ids = scheduled_ids(&su, std::slice::from_ref(&pid));
    assert_eq!(ids.len(), 12);
    su.kill();
    {
        let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        assert!(store.outbox_len().unwrap() > 0);
    }
    assert!(bundler.received_ids().is_empty());

    bundler.set_mode(Mode::Ok);
    let mut su = start(dir.path(), &env);
    wait_delivered(&bundler, &ids, Duration::from_secs(20));
    assert_eq!(su.stop(), Some(0));
    let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
    assert_eq!(store.outbox_len().unwrap(), 0);
}

#[test]
fn announce_uploads_a_signed_scheduler_location_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bundler = FakeBundler::start(Mode::Ok);
    let wallet = dir.path().join("wallet.json");
    let created = SuCommand::new(&data)
        .args(["wallet", "new"])
        .arg(&wallet)
        .output();
    assert!(created.success(), "{}", created.stderr);
    let address = created.stdout.trim().to_string();
    assert_eq!(address.len(), 43);
    let announced = SuCommand::new(&data)
        .args([
            "announce",
            "--url",
            "https://su1.example.net",
            "--ttl",
            "3600000",
        ])
        .env("SU_WALLET_PATH", &wallet)
        .env("UPLOAD_NODE_URL", bundler.url())
        .output();
    assert!(announced.success(), "{}", announced.stderr);
    let id = announced.stdout.trim().to_string();
    assert_eq!(bundler.received_ids(), vec![id]);
    // Without a bundler it refuses with a clear error instead of signing into the void.
    let refused = SuCommand::new(&data)
        .args(["announce", "--url", "https://su1.example.net"])
        .env("SU_WALLET_PATH", &wallet)
        .output();
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("UPLOAD_NODE_URL"),
        "{}",
        refused.stderr
    );
}

/// A gateway whose GraphQL answer passes its bound (16 MiB) gets an error, not a read of
/// everything it sends: here a transaction with a 20 MiB tag, asked for by an assignment.
#[test]
fn a_graphql_answer_past_its_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(100);
    let su = start(
        dir.path(),
        &[
            ("ARWEAVE_URL", gateway.url()),
            ("GRAPHQL_URL", gateway.url()),
        ],
    );
    let client = Client::new();
    let (process, pid) = client.process();
    spawn(&su, &process);
    let tx = random_id();
    gateway.add_tx(
        GqlTx {
            id: tx.clone(),
            anchor: None,
            recipient: String::new(),
            tags: vec![("Big".to_string(), "x".repeat(20 << 20))],
        },
        b"",
    );
    let (status, body) = su.post(&format!("/?process-id={pid}&assign={tx}"), b"");
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"the gateway's GraphQL answer is larger than 16777216 bytes"}"#
        )
    );
    // Nothing was scheduled, and the SU goes on answering.
    assert_eq!(edges(&su, &pid).len(), 1);
}
