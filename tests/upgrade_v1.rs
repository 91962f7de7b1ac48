//! Upgrade in place: a store written by `su serve` at schema version 1 (the fixture in
//! `tests/fixtures/v1-store`, made by `tests/make_v1_fixture.rs`) opens with this build and
//! serves the same bytes the v1 server served, keeps its dedupe hashes and idempotency,
//! delivers its queued uploads, continues every schedule at the next nonce, and verifies.
//! Only HTTP, the `su` binary and the test support are used, so the test does not depend
//! on the store's layout.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::fakes::{FakeBundler, FakeGateway, GqlTx, Mode};
use support::{Client, TestSu, json_field, request, su_verify};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1-store");

fn read_json(name: &str) -> Value {
    let path = Path::new(FIXTURE).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Unpacks the fixture's data dir into a fresh temporary directory.
fn unpack() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(Path::new(FIXTURE).join("data.tar.gz"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf failed");
    let data = tmp.path().join("data");
    assert!(
        data.join("wallet.json").exists(),
        "the fixture has its wallet"
    );
    (tmp, data)
}

/// A gateway that knows what the recorded POSTs ask it about.
fn gateway(fixture: &Value) -> FakeGateway {
    let gateway = FakeGateway::start(1_600_000);
    for id in fixture["gateway_existing"].as_array().unwrap() {
        gateway.add_existing(id.as_str().unwrap());
    }
    for item in fixture["gateway_items"].as_array().unwrap() {
        let bytes = ao_su::ans104::b64::decode(item.as_str().unwrap()).unwrap();
        let (tx, raw) = GqlTx::of_item(&bytes);
        gateway.add_tx(tx, &raw);
    }
    gateway
}

fn start(data: &Path, gateway: &FakeGateway, bundler: &FakeBundler) -> TestSu {
    let (gateway, bundler) = (gateway.url(), bundler.url());
    TestSu::start(
        data,
        &[
            ("ARWEAVE_URL", gateway.as_str()),
            ("GRAPHQL_URL", gateway.as_str()),
            ("UPLOAD_NODE_URL", bundler.as_str()),
            ("UPLOAD_BACKOFF_MAX_SECS", "1"),
        ],
    )
}

/// Sends every recorded request; every status and body must be byte-identical.
fn replay(su: &TestSu, records: &[Value], round: &str) {
    let mut mismatches = Vec::new();
    for record in records {
        let method = record["method"].as_str().unwrap();
        let path = record["path"].as_str().unwrap();
        let body = match record["request"].as_str() {
            Some(b64) => ao_su::ans104::b64::decode(b64).unwrap(),
            None => Vec::new(),
        };
        let expected_status = record["status"].as_u64().unwrap();
        let expected_body = record["body"].as_str().unwrap();
        let (status, got, _) = request(su.port, method, path, &body, &[]);
        if u64::from(status) != expected_status || got != expected_body.as_bytes() {
            let got = String::from_utf8_lossy(&got);
            let at = first_difference(expected_body, &got);
            mismatches.push(format!(
                "{method} {path}\n  expected {expected_status} (byte {at} of {}) {}\n  got      {status} (byte {at} of {}) {}",
                expected_body.len(),
                around(expected_body, at),
                got.len(),
                around(&got, at),
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{round}: {} of {} recorded requests differ; first ones:\n{}",
        mismatches.len(),
        records.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

fn first_difference(a: &str, b: &str) -> usize {
    a.bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Up to 120 bytes of `text` on each side of byte `at`.
fn around(text: &str, at: usize) -> String {
    let mut start = at.saturating_sub(120);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 120).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    format!("…{}…", &text[start..end])
}

fn latest_tag(su: &TestSu, pid: &str, name: &str) -> (Value, String) {
    let (status, body) = su.get(&format!("/{pid}/latest"));
    assert_eq!(status, 200, "{body}");
    let node: Value = serde_json::from_str(&body).unwrap();
    let value = node["assignment"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} tag"))["value"]
        .as_str()
        .unwrap()
        .to_string();
    (node, value)
}

#[test]
fn a_v1_store_upgrades_in_place_and_serves_the_same_bytes() {
    let fixture = read_json("fixture.json");
    let records = read_json("responses.json");
    let records = records.as_array().unwrap();
    assert!(records.len() > 100, "the fixture records many requests");
    let (_tmp, data) = unpack();
    let gateway = gateway(&fixture);
    let bundler = FakeBundler::start(Mode::Ok);

    // First start: the upgrade happens here, if the layout changed.
    let mut su = start(&data, &gateway, &bundler);
    let (status, body) = su.get("/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_field(&body, "address"),
        fixture["address"],
        "the wallet is kept"
    );
    replay(&su, records, "first start");
    // Uploads still queued by the v1 server are delivered.
    let pending: HashSet<String> = fixture["pending_uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert!(!pending.is_empty(), "the fixture has queued uploads");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let received: HashSet<String> = bundler.received_ids().into_iter().collect();
        if pending.is_subset(&received) {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} queued uploads were not delivered",
            pending.difference(&received).count()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(su.stop(), Some(0), "a clean shutdown");
    let (ok, report) = su_verify(&data);
    assert!(ok, "su verify after the upgrade: {report}");

    // Second start: the store is already upgraded; same bytes again.
    let mut su = start(&data, &gateway, &bundler);
    replay(&su, records, "second start");

    // Every schedule continues at the next nonce.
    let client = Client::new();
    for process in fixture["processes"].as_array().unwrap() {
        let pid = process["id"].as_str().unwrap();
        let last_nonce = process["last_nonce"].as_u64().unwrap();
        let last_timestamp: u64 = process["last_timestamp"].as_str().unwrap().parse().unwrap();
        let (_, nonce) = latest_tag(&su, pid, "Nonce");
        assert_eq!(nonce, last_nonce.to_string(), "{pid}: the stored tip");

        let (message, mid) = client.message(pid, "after the upgrade");
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        assert_eq!(json_field(&body, "id"), mid.as_str());
        let timestamp = json_field(&body, "timestamp").as_u64().unwrap();
        assert!(timestamp > last_timestamp, "{pid}: timestamps keep growing");

        let (node, nonce) = latest_tag(&su, pid, "Nonce");
        assert_eq!(nonce, (last_nonce + 1).to_string(), "{pid}: the next nonce");
        assert_eq!(node["message"]["id"], mid.as_str());
        let (_, stamped) = latest_tag(&su, pid, "Timestamp");
        assert_eq!(stamped, timestamp.to_string());
        let (status, body) = su.get(&format!("/{pid}?from-nonce={last_nonce}"));
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{body}");
        assert_eq!(edges[0]["cursor"], (last_nonce + 1).to_string());
    }
    assert_eq!(su.stop(), Some(0), "a clean shutdown");
    let (ok, report) = su_verify(&data);
    assert!(ok, "su verify after new writes: {report}");
}
