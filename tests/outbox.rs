//! The upload outbox over the real binary: nothing is dropped on 402, 500 or 301, redirects
//! are logged and not followed, a slow upload holds no other row, a recovering bundler is
//! noticed within 2 s, and `su outbox` / `su reupload` work on a stopped store and through
//! the admin socket of a running server.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::fakes::{Answer, FakeBundler, FakeGateway, Mode};
use support::{Client, SuCommand, TestSu, edges, json_field};

/// Starts `su serve` through the hermetic launcher with text logs (`TestSu::log` keeps them).
fn start(dir: &Path, env: &[(&str, &str)]) -> TestSu {
    SuCommand::new(dir)
        .env("SU_LOG", "info")
        .env("SU_LOG_FORMAT", "text")
        .envs(env)
        .serve()
}

/// Runs a `su` subcommand on a data dir; returns (success, stdout, stderr).
fn su_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let output = SuCommand::new(dir)
        .env("SU_LOG", "warn")
        .envs(env)
        .args(args)
        .output();
    (output.success(), output.stdout, output.stderr)
}

fn list(dir: &Path) -> serde_json::Value {
    let (ok, out, err) = su_with(dir, &[], &["outbox", "list", "--json"]);
    assert!(ok, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

fn poll(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Posts a process and `messages` messages; returns the process id and every id scheduled.
fn schedule(su: &TestSu, client: &Client, messages: usize) -> (String, HashSet<String>) {
    let (process, pid) = client.process();
    let (status, body) = su.post("/", &process);
    assert_eq!(status, 200, "{body}");
    for n in 0..messages {
        let (message, _) = client.message(&pid, &format!("msg {n}"));
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
    }
    let mut ids = HashSet::new();
    for edge in edges(su, &pid) {
        let node = &edge["node"];
        ids.insert(node["assignment"]["id"].as_str().unwrap().to_string());
        if let Some(id) = node["message"]["id"].as_str() {
            ids.insert(id.to_string());
        }
    }
    (pid, ids)
}

fn received(bundler: &FakeBundler) -> HashSet<String> {
    bundler.received_ids().into_iter().collect()
}

fn metric(su: &TestSu, name: &str) -> Option<f64> {
    let (_, body) = su.get("/metrics");
    body.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
}

#[test]
fn nothing_is_dropped_on_402_500_or_301() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Ok);
    let elsewhere = FakeBundler::start(Mode::Ok);
    let moved = format!("{}/tx/arweave", elsewhere.url());
    // Twelve 402s, as when the upload balance runs out, then 500s, then a redirect.
    bundler.script(std::iter::repeat_n(Answer::Status(402), 12));
    bundler.set_mode(Mode::Fail);
    let url = bundler.url();
    let env = [
        ("UPLOAD_NODE_URL", url.as_str()),
        ("UPLOAD_BACKOFF_MAX_SECS", "1"),
    ];
    let su = start(dir.path(), &env);
    let client = Client::new();
    let (_, ids) = schedule(&su, &client, 7);
    assert_eq!(ids.len(), 16);
    poll("the 402s and some 500s", Duration::from_secs(20), || {
        bundler.attempts() >= 12 + 16
    });
    bundler.set_mode(Mode::Redirect(301, moved.clone()));
    let redirects = bundler.attempts();
    poll("redirected attempts", Duration::from_secs(20), || {
        bundler.attempts() >= redirects + 16
    });
    assert!(received(&bundler).is_empty());
    assert_eq!(elsewhere.attempts(), 0, "the redirect was followed");
    let logged = su.log();
    assert!(
        logged
            .iter()
            .any(|line| line.contains("upload redirected") && line.contains(&moved)),
        "no redirect log line with its Location"
    );
    assert_eq!(metric(&su, "su_outbox_queue_depth"), Some(16.0));

    bundler.set_mode(Mode::Ok);
    poll("every upload", Duration::from_secs(10), || {
        ids.is_subset(&received(&bundler))
    });
    poll("an empty queue", Duration::from_secs(5), || {
        metric(&su, "su_outbox_queue_depth") == Some(0.0)
    });
    assert_eq!(metric(&su, "su_outbox_oldest_age_seconds"), Some(0.0));
    assert_eq!(elsewhere.attempts(), 0);
}

#[test]
fn a_slow_upload_does_not_hold_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Ok);
    let url = bundler.url();
    let su = start(dir.path(), &[("UPLOAD_NODE_URL", url.as_str())]);
    let client = Client::new();
    let (process, pid) = client.process();
    bundler.set_slow(&pid, 6_000);
    assert_eq!(su.post("/", &process).0, 200);
    let started = Instant::now();
    let mut ids = HashSet::new();
    for n in 0..5 {
        let (message, mid) = client.message(&pid, &format!("msg {n}"));
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        ids.insert(mid);
    }
    poll("the other messages", Duration::from_secs(5), || {
        ids.is_subset(&received(&bundler))
    });
    assert!(
        !received(&bundler).contains(&pid),
        "the slow upload should still be in flight"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    poll("the slow upload", Duration::from_secs(15), || {
        received(&bundler).contains(&pid)
    });
}

#[test]
fn a_recovering_bundler_is_noticed_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Refuse(503));
    let url = bundler.url();
    // The default cap: rows back off to 16 s and more while the bundler is down.
    let env = [
        ("UPLOAD_NODE_URL", url.as_str()),
        ("UPLOAD_BACKOFF_MAX_SECS", "32"),
    ];
    let su = start(dir.path(), &env);
    let client = Client::new();
    let (_, ids) = schedule(&su, &client, 4);
    std::thread::sleep(Duration::from_secs(16));
    let before = bundler.attempts();
    std::thread::sleep(Duration::from_secs(3));
    // Backing-off rows are not hammering: about one probe per second.
    assert!(
        bundler.attempts() - before <= 6,
        "{} attempts in 3 s",
        bundler.attempts() - before
    );

    bundler.set_mode(Mode::Ok);
    let recovered = Instant::now();
    poll(
        "every upload after the recovery",
        Duration::from_secs(10),
        || ids.is_subset(&received(&bundler)),
    );
    let times = bundler.received_at();
    let first = times.iter().map(|(_, at)| *at).min().unwrap();
    let last = times.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        first.duration_since(recovered) <= Duration::from_secs(2),
        "first delivery {:?} after the recovery",
        first.duration_since(recovered)
    );
    assert!(
        last.duration_since(recovered) <= Duration::from_millis(2500),
        "last delivery {:?} after the recovery",
        last.duration_since(recovered)
    );
}

#[test]
fn operators_list_retry_and_drop_rows_on_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut su = start(dir.path(), &[]);
    let client = Client::new();
    let (pid, ids) = schedule(&su, &client, 2);
    assert_eq!(ids.len(), 6);
    assert_eq!(su.stop(), Some(0));
    assert!(!dir.path().join("admin.sock").exists(), "socket removed");

    let listed = list(dir.path());
    assert_eq!(listed["total"], 6);
    assert_eq!(listed["live"], false);
    let rows = listed["rows"].as_array().unwrap();
    let listed_ids: HashSet<String> = rows
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed_ids, ids);
    assert_eq!(rows[0]["id"], pid.as_str());
    assert_eq!(
        (rows[0]["sequence"].as_u64(), rows[0]["slot"].as_u64()),
        (Some(1), Some(0))
    );

    let (ok, out, err) = su_run(dir.path(), &["outbox", "drop", "--", &pid]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("dropped 1 rows"), "{out}");
    let key = rows[1]["key"].as_str().unwrap();
    let (ok, out, _) = su_run(dir.path(), &["outbox", "drop", key]);
    assert!(ok && out.contains("dropped 1 rows"), "{out}");
    assert_eq!(list(dir.path())["total"], 4);
    let (ok, out, _) = su_run(dir.path(), &["outbox", "retry"]);
    assert!(ok && out.contains("no server is running"), "{out}");
    let (ok, _, err) = su_run(dir.path(), &["outbox", "drop", "not-an-id"]);
    assert!(
        !ok && err.contains("neither an item id nor a hex row key"),
        "{err}"
    );
    let (ok, out, _) = su_run(dir.path(), &["outbox", "list"]);
    assert!(
        ok && out.starts_with("4 rows queued (stopped store)"),
        "{out}"
    );
}

fn su_run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    su_with(dir, &[], args)
}

#[test]
fn operators_list_retry_and_drop_rows_through_the_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Refuse(402));
    let url = bundler.url();
    let env = [
        ("UPLOAD_NODE_URL", url.as_str()),
        ("UPLOAD_BACKOFF_MAX_SECS", "60"),
    ];
    let mut su = start(dir.path(), &env);
    let socket = dir.path().join("admin.sock");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = Client::new();
    let (pid, ids) = schedule(&su, &client, 2);
    poll(
        "a refused attempt of every row",
        Duration::from_secs(10),
        || {
            list(dir.path())["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["last_error"].is_string())
        },
    );
    let listed = list(dir.path());
    assert_eq!(
        (listed["total"].as_u64(), listed["live"].as_bool()),
        (Some(6), Some(true))
    );
    let error = listed["rows"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("402"), "{error}");

    let (ok, out, err) = su_run(dir.path(), &["outbox", "drop", "--", &pid]);
    assert!(ok && out.contains("dropped 1 rows"), "{out}{err}");
    assert_eq!(list(dir.path())["total"], 5);
    let (ok, out, _) = su_run(dir.path(), &["outbox", "retry"]);
    assert!(ok && out.contains("backoff reset for"), "{out}");

    bundler.set_mode(Mode::Ok);
    let (ok, out, _) = su_run(dir.path(), &["outbox", "retry"]);
    assert!(ok, "{out}");
    let mut rest = ids.clone();
    rest.remove(&pid);
    poll("the other rows", Duration::from_secs(5), || {
        rest.is_subset(&received(&bundler))
    });
    assert!(
        !received(&bundler).contains(&pid),
        "a dropped row was uploaded"
    );
    poll("an empty queue", Duration::from_secs(5), || {
        list(dir.path())["total"] == 0
    });
    assert_eq!(su.stop(), Some(0));
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

#[test]
fn reupload_requeues_what_graphql_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let bundler = FakeBundler::start(Mode::Ok);
    let gateway = FakeGateway::start(100);
    let (bundler_url, gateway_url) = (bundler.url(), gateway.url());
    let env = [
        ("UPLOAD_NODE_URL", bundler_url.as_str()),
        ("GRAPHQL_URL", gateway_url.as_str()),
    ];
    let mut su = start(dir.path(), &env);
    let client = Client::new();
    let (pid, ids) = schedule(&su, &client, 3);
    poll("the first delivery", Duration::from_secs(10), || {
        ids.is_subset(&received(&bundler))
    });
    let (message, late) = client.message(&pid, "late");
    let (status, body) = su.post("/", &message);
    assert_eq!(status, 200, "{body}");
    let since = json_field(&body, "timestamp").as_u64().unwrap() - 1;
    assert_eq!(su.stop(), Some(0));

    // Stopped store: GraphQL knows the process and one message; the rest goes out again.
    gateway.add_known(&pid);
    let mut known: Vec<&String> = ids.iter().filter(|id| **id != pid).take(1).collect();
    known.push(&pid);
    for id in &known {
        gateway.add_known(id);
    }
    let again = FakeBundler::start(Mode::Ok);
    again.script([Answer::Status(402), Answer::Status(500)]);
    let again_url = again.url();
    let offline = [
        ("UPLOAD_NODE_URL", again_url.as_str()),
        ("GRAPHQL_URL", gateway_url.as_str()),
    ];
    let (ok, out, err) = su_with(dir.path(), &offline, &["reupload", "--process", &pid]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("10 items and assignments in range, 2 known to GraphQL, 8 re-queued"),
        "{out}"
    );
    assert!(out.contains("store opened directly"), "{out}");
    assert!(out.contains("reupload finished: 8 of 8 accepted"), "{out}");
    let mut expected: HashSet<String> = ids
        .iter()
        .filter(|id| !known.contains(id))
        .cloned()
        .collect();
    expected.insert(late.clone());
    let delivered = received(&again);
    assert!(expected.is_subset(&delivered), "{delivered:?}");
    assert!(known.iter().all(|id| !delivered.contains(*id)));

    // Beside a running server, through its socket, only entries after `since`.
    let su_again = start(dir.path(), &env);
    let count_late = || {
        bundler
            .received_ids()
            .iter()
            .filter(|id| **id == late)
            .count()
    };
    let late_before = count_late();
    let (ok, out, err) = su_with(
        dir.path(),
        &offline,
        &["reupload", "--process", &pid, "--since", &since.to_string()],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("2 items and assignments in range, 0 known to GraphQL, 2 re-queued"),
        "{out}"
    );
    assert!(out.contains("the running server"), "{out}");
    assert!(out.contains("reupload finished: 2 of 2 accepted"), "{out}");
    assert!(
        count_late() > late_before,
        "the late message went out again"
    );
    drop(su_again);
}
