//! Operator controls over the real binary (issue 17, PROTOCOL 8): the IP allow-list, the
//! process allow-list, the whole-SU read-only mode and the write rate limits, against a
//! fake allow-list server that changes its answer and fails.

mod support;

use support::fakes::{FakeAllowList, ListAnswer};
use support::{Client, SuCommand, TestSu, edges, json_field, request};

/// Refresh allow-lists every second, so a test sees a change within about two.
const FAST_REFRESH: &[(&str, &str)] = &[
    ("IP_WHITELIST_REFRESH_SECS", "1"),
    ("PROCESS_WHITELIST_REFRESH_SECS", "1"),
];

const SU_URL: &str = "https://su201.example";

/// A response: status, body and the raw head.
struct Answer {
    status: u16,
    body: String,
    head: String,
}

impl Answer {
    /// A header's value, by case-insensitive name.
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    fn error(&self) -> String {
        json_field(&self.body, "error")
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.body))
            .to_string()
    }
}

fn send(su: &TestSu, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    let (status, body, head) = request(su.port, method, path, body, headers);
    Answer {
        status,
        body: String::from_utf8(body).unwrap(),
        head,
    }
}

fn post_from(su: &TestSu, ip: &str, body: &[u8]) -> Answer {
    send(su, "POST", "/", body, &[("X-Real-IP", ip)])
}

fn with_fast_refresh<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    FAST_REFRESH.iter().chain(vars).copied().collect()
}

#[test]
fn ip_allow_list_refuses_until_fetched_and_keeps_the_last_good_list() {
    let lists = FakeAllowList::start(ListAnswer::Fail(500));
    let dir = tempfile::tempdir().unwrap();
    let url = lists.url();
    let su = TestSu::start(
        dir.path(),
        &with_fast_refresh(&[
            ("IP_WHITELIST_URL", url.as_str()),
            ("WHITELIST_MAX_BYTES", "200"),
        ]),
    );
    let client = Client::new();
    let (process, pid) = client.process();

    // No list yet: writes wait for one (503), and the header is required all the same.
    lists.wait_for_refresh();
    let answer = post_from(&su, "203.0.113.7", &process);
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(answer.error().contains("IP allow-list"), "{}", answer.body);
    let answer = send(&su, "POST", "/", &process, &[]);
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "Access denied")
    );

    lists.set(FakeAllowList::ips(&["203.0.113.7"]));
    lists.wait_for_refresh();
    let answer = post_from(&su, "198.51.100.2", &process);
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (403, "Access denied")
    );
    assert_eq!(answer.body, r#"{"error":"Access denied"}"#);
    let answer = send(&su, "POST", "/", &process, &[]);
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "Access denied")
    );
    let answer = post_from(&su, "203.0.113.7", &process);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Reads need no header.
    assert_eq!(su.get(&format!("/processes/{pid}")).0, 200);

    // Failed refreshes (an error status, a dropped connection, a body that is not a list, one
    // over WHITELIST_MAX_BYTES) keep the last good list.
    let too_long: Vec<String> = (0..40).map(|n| format!("10.0.0.{n}")).collect();
    let too_long: Vec<&str> = too_long.iter().map(String::as_str).collect();
    for failure in [
        ListAnswer::Fail(500),
        ListAnswer::Down,
        ListAnswer::Body("{\"ips\": []}".into()),
        FakeAllowList::ips(&too_long),
    ] {
        lists.set(failure.clone());
        lists.wait_for_refresh();
        let (message, _) = client.message(&pid, &format!("after {failure:?}"));
        let answer = post_from(&su, "203.0.113.7", &message);
        assert_eq!(answer.status, 200, "{failure:?}: {}", answer.body);
        let answer = post_from(&su, "198.51.100.2", &message);
        assert_eq!(answer.status, 403, "{failure:?}: {}", answer.body);
    }

    // A new list replaces the old one.
    lists.set(FakeAllowList::ips(&["198.51.100.2"]));
    lists.wait_for_refresh();
    let (message, _) = client.message(&pid, "from the new IP");
    assert_eq!(post_from(&su, "203.0.113.7", &message).status, 403);
    assert_eq!(post_from(&su, "198.51.100.2", &message).status, 200);
    // One process and five messages: nothing refused was scheduled.
    assert_eq!(edges(&su, &pid).len(), 6);
}

/// A store holding three processes, each with one message, made without any control on.
fn store_with_processes(dir: &std::path::Path, client: &Client) -> Vec<(String, String)> {
    let su = TestSu::start(dir, &[]);
    let made = (0..3)
        .map(|n| {
            let (process, pid) = client.process();
            assert_eq!(su.post("/", &process).0, 200);
            let (message, mid) = client.message(&pid, &format!("message {n}"));
            assert_eq!(su.post("/", &message).0, 200);
            (pid, mid)
        })
        .collect();
    drop(su);
    made
}

#[test]
fn process_allow_list_decides_reads_writes_and_spawns() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let made = store_with_processes(dir.path(), &client);
    let [(a, a_message), (b, _), (c, _)] = [made[0].clone(), made[1].clone(), made[2].clone()];
    // A process signed but never spawned, listed for this SU.
    let (listed_spawn, listed_spawn_id) = client.process();
    let b_su = format!("{SU_URL}/");
    let lists = FakeAllowList::start(FakeAllowList::processes(&[
        (a.as_str(), SU_URL, None),
        (b.as_str(), b_su.as_str(), Some(true)),
        (c.as_str(), "https://su202.example", Some(false)),
        (listed_spawn_id.as_str(), SU_URL, None),
    ]));
    let url = lists.url();
    // `URL`, the reference's name for this SU's own URL, is accepted.
    let su = TestSu::start(
        dir.path(),
        &with_fast_refresh(&[
            ("PROCESS_WHITELIST_URL", url.as_str()),
            ("URL", SU_URL),
            ("SU_FEED_TOKEN", "feed-secret"),
        ]),
    );

    // Reads: 403 for a process not given to this SU.
    let not_allowed = |pid: &str| format!("Process {pid} is not allowed on this SU");
    for path in [
        format!("/processes/{a}"),
        format!("/{a}/latest"),
        format!("/{a}?process-id={a}"),
        format!("/{a}"),
        format!("/{a_message}?process-id={a}"),
        format!("/processes/{b}"),
    ] {
        assert_eq!(su.get(&path).0, 200, "{path}");
    }
    for (path, key) in [
        (format!("/processes/{c}"), &c),
        (format!("/{c}/latest"), &c),
        (format!("/{c}?process-id={c}"), &c),
        (format!("/{c}"), &c),
        // Keyed by `process-id`, else the path's id: a message is looked up with its process.
        (format!("/{a_message}"), &a_message),
        // The path names another process: its schedule is not served either.
        (format!("/{c}?process-id={a}"), &c),
    ] {
        let answer = send(&su, "GET", &path, &[], &[]);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert_eq!(answer.error(), not_allowed(key), "{path}");
    }

    // Writes: 400, with the reference's strings.
    let (message, _) = client.message(&a, "allowed");
    assert_eq!(su.post("/", &message).0, 200);
    let (message, _) = client.message(&b, "read-only");
    let answer = send(&su, "POST", "/", &message, &[]);
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.error(),
        format!("Process {b} is read_only on this SU")
    );
    let (message, _) = client.message(&c, "elsewhere");
    let answer = send(&su, "POST", "/", &message, &[]);
    assert_eq!((answer.status, answer.error()), (400, not_allowed(&c)));
    let assign = format!("/?process-id={c}&assign={a_message}");
    let answer = send(&su, "POST", &assign, &[], &[]);
    assert_eq!((answer.status, answer.error()), (400, not_allowed(&c)));
    // Spawning: an unlisted process is not allowed; a listed one is still not spawned.
    let (process, new_pid) = client.process();
    let answer = send(&su, "POST", "/", &process, &[]);
    assert_eq!(
        (answer.status, answer.error()),
        (400, not_allowed(&new_pid))
    );
    let answer = send(&su, "POST", "/", &listed_spawn, &[]);
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "Process spawning is not supported")
    );
    assert_eq!(su.get(&format!("/processes/{listed_spawn_id}")).0, 400);
    // Nothing refused was scheduled (C is counted once it is readable here).
    assert_eq!(edges(&su, &a).len(), 3);
    assert_eq!(edges(&su, &b).len(), 2);

    // A refresh moves C here and A away; a failed one keeps that.
    lists.set(FakeAllowList::processes(&[(c.as_str(), SU_URL, None)]));
    lists.wait_for_refresh();
    let (message, _) = client.message(&c, "moved here");
    assert_eq!(su.post("/", &message).0, 200);
    let (message, _) = client.message(&a, "moved away");
    assert_eq!(su.post("/", &message).0, 400);
    assert_eq!(su.get(&format!("/processes/{a}")).0, 403);
    for failure in [ListAnswer::Fail(503), ListAnswer::Body("[]".into())] {
        lists.set(failure);
        lists.wait_for_refresh();
        assert_eq!(su.get(&format!("/processes/{c}")).0, 200);
        assert_eq!(su.get(&format!("/processes/{a}")).0, 403);
    }
    assert_eq!(
        edges(&su, &c).len(),
        3,
        "C's process, message and the one moved here"
    );
}

#[test]
fn process_allow_list_is_fetched_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let lists = FakeAllowList::start(ListAnswer::Fail(500));
    let url = lists.url();
    let failed = SuCommand::new(dir.path())
        .envs(&[
            ("PROCESS_WHITELIST_URL", url.as_str()),
            ("SU_URL", SU_URL),
            ("SU_FEED_TOKEN", "feed-secret"),
        ])
        .args(["serve", "--bind", "127.0.0.1", "--port", "0"])
        .output();
    assert_eq!(failed.code, Some(1), "{}", failed.text());
    assert!(
        failed.text().contains("PROCESS_WHITELIST_URL"),
        "{}",
        failed.text()
    );
    assert!(failed.text().contains("500"), "{}", failed.text());
    assert_eq!(lists.fetches(), 1);

    let missing_url = SuCommand::new(dir.path())
        .envs(&[("PROCESS_WHITELIST_URL", url.as_str())])
        .args(["serve", "--port", "0"])
        .output();
    assert_eq!(missing_url.code, Some(2), "{}", missing_url.text());
    assert!(
        missing_url.text().contains("SU_URL must be set"),
        "{}",
        missing_url.text()
    );

    // The change feed lists every process, so a process allow-list needs a private feed.
    let open_feed = SuCommand::new(dir.path())
        .envs(&[("PROCESS_WHITELIST_URL", url.as_str()), ("SU_URL", SU_URL)])
        .args(["serve", "--port", "0"])
        .output();
    assert_eq!(open_feed.code, Some(2), "{}", open_feed.text());
    assert!(
        open_feed
            .text()
            .contains("SU_FEED_TOKEN must be set when PROCESS_WHITELIST_URL is set"),
        "{}",
        open_feed.text()
    );
}

#[test]
fn read_only_redirects_or_refuses_writes_and_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let made = store_with_processes(dir.path(), &client);
    let (pid, mid) = made[0].clone();
    let (message, _) = client.message(&pid, "after retirement");

    let su = TestSu::start(
        dir.path(),
        &[
            ("SU_READ_ONLY", "true"),
            ("SU_WRITE_URL", "https://su202.example/"),
        ],
    );
    let answer = send(&su, "POST", "/", &message, &[]);
    assert_eq!(answer.status, 307, "{}", answer.body);
    assert_eq!(
        answer.header("location").as_deref(),
        Some("https://su202.example/")
    );
    assert!(answer.body.is_empty());
    let assign = format!("/?process-id={pid}&assign={mid}&base-layer");
    let answer = send(&su, "POST", &assign, &[], &[]);
    assert_eq!(answer.status, 307);
    assert_eq!(
        answer.header("location"),
        Some(format!("https://su202.example{assign}"))
    );
    assert_eq!(su.get(&format!("/processes/{pid}")).0, 200);
    assert_eq!(edges(&su, &pid).len(), 2);
    drop(su);

    let su = TestSu::start(dir.path(), &[("SU_READ_ONLY", "true")]);
    let answer = send(&su, "POST", "/", &message, &[]);
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.error(), "this SU is read-only and accepts no writes");
    assert_eq!(su.get(&format!("/{pid}/latest")).0, 200);
    assert_eq!(edges(&su, &pid).len(), 2);
}

#[test]
fn rate_limits_per_client_ip_and_per_signer() {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(
        dir.path(),
        &[
            ("RATE_LIMIT_IP_PER_MINUTE", "1"),
            ("RATE_LIMIT_IP_BURST", "3"),
            ("RATE_LIMIT_OWNER_PER_MINUTE", "1"),
            ("RATE_LIMIT_OWNER_BURST", "2"),
        ],
    );
    let client = Client::new();
    let (process, pid) = client.process();

    // Per IP: a burst of three, then 429 with Retry-After; another IP has its own bucket.
    for _ in 0..3 {
        assert_ne!(post_from(&su, "203.0.113.7", b"not an item").status, 429);
    }
    let answer = post_from(&su, "203.0.113.7", &process);
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.error().contains("client IP"), "{}", answer.body);
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Without X-Real-IP, the connection's address is the client.
    for _ in 0..3 {
        assert_ne!(su.post("/", b"not an item").0, 429);
    }
    assert_eq!(su.post("/", b"not an item").0, 429);
    // Reads are not limited.
    assert_eq!(su.get("/timestamp").0, 200);

    // Per signer: two writes, then 429 whatever the IP; another signer has its own bucket.
    assert_eq!(post_from(&su, "198.51.100.1", &process).status, 200);
    let (message, _) = client.message(&pid, "second");
    assert_eq!(post_from(&su, "198.51.100.2", &message).status, 200);
    let (message, _) = client.message(&pid, "third");
    let answer = post_from(&su, "198.51.100.3", &message);
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.error().contains("signer"), "{}", answer.body);
    assert!(answer.header("retry-after").is_some());
    let other = Client::new();
    let (message, _) = other.message(&pid, "another signer");
    assert_eq!(post_from(&su, "198.51.100.4", &message).status, 200);
    assert_eq!(edges(&su, &pid).len(), 3);
}
