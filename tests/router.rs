//! Router mode (issue 18), end to end with the real binary: three SUs and two routers on
//! loopback. Router A places 30 processes by the rules; router B, which placed nothing,
//! serves messages, assignments and reads to a client that follows 307s and re-POSTs bodies
//! (as the MU does), with the answers the SUs give directly. Then: SIGHUP with a new SU,
//! a router on an empty data dir, the SU-side router check, and an SU stopped.

mod support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use support::fakes::{FakeGateway, GqlTx};
use support::{Client, SuCommand, TestSu, json_field, request};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// An SU on a chosen port that checks with `router` before a spawn.
fn su_on(data: &Path, port: u16, router: u16, gateway: &FakeGateway) -> TestSu {
    SuCommand::new(data)
        .envs(&[
            ("WARMUP_DELAY", "0"),
            ("ARWEAVE_URL", &gateway.url()),
            ("GRAPHQL_URL", &gateway.url()),
            ("ENABLE_ROUTER_CHECK", "true"),
            ("ROUTER_URL", &url(router)),
            ("SU_URL", &url(port)),
        ])
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .daemon()
}

/// `su router` on a chosen port (0: any) with the scheduler list at `list`.
fn router_on(data: &Path, port: u16, list: &Path) -> TestSu {
    SuCommand::new(data)
        .envs(&[
            ("WARMUP_DELAY", "0"),
            ("SCHEDULER_LIST_PATH", list.to_str().unwrap()),
            ("ROUTER_POLL_SECS", "1"),
        ])
        .args(["router", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .daemon()
}

fn sighup(server: &TestSu) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The `Location` header of a raw response head.
fn location(head: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    })
}

/// What a client that follows redirects got: the final answer and the SU port that gave it.
struct Followed {
    status: u16,
    body: String,
    /// The port of the server that answered last (the router's own on a non-redirect).
    port: u16,
    redirected: bool,
}

/// Sends to the router and follows one 307, sending the same method and body again (the MU
/// re-POSTs data items; browsers re-send GETs).
fn follow(router: u16, method: &str, path: &str, body: &[u8]) -> Followed {
    let (status, answer, head) = request(router, method, path, body, &[]);
    if status != 307 {
        return Followed {
            status,
            body: String::from_utf8(answer).unwrap(),
            port: router,
            redirected: false,
        };
    }
    assert!(answer.is_empty(), "a 307 has an empty body");
    let location = location(&head).expect("a 307 has a Location");
    let rest = location
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("absolute Location: {location}"));
    let (port, path_and_query) = rest.split_at(rest.find('/').unwrap());
    assert_eq!(
        path_and_query, path,
        "the Location keeps the path and query"
    );
    let port: u16 = port.parse().unwrap();
    let (status, answer, _) = request(port, method, path_and_query, body, &[]);
    Followed {
        status,
        body: String::from_utf8(answer).unwrap(),
        port,
        redirected: true,
    }
}

/// The SU port a router sends `path` to, without following.
fn redirect_port(router: u16, path: &str) -> Option<u16> {
    let (status, _, head) = request(router, "GET", path, &[], &[]);
    if status != 307 {
        return None;
    }
    let location = location(&head)?;
    location
        .strip_prefix("http://127.0.0.1:")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn write_list(path: &Path, entries: &[serde_json::Value]) {
    std::fs::write(path, serde_json::to_vec(entries).unwrap()).unwrap();
}

/// Waits until `check` holds, for at most `secs`.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The body of a read with the parts that change on every call (`timestamp`) removed.
fn stable(body: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    if let Some(object) = value.as_object_mut() {
        object.remove("timestamp");
    }
    value
}

#[test]
fn two_routers_in_front_of_three_sus() {
    let dirs: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let gateway = FakeGateway::start(1_000);
    let (router_a_port, su_ports) = (free_port(), [free_port(), free_port(), free_port()]);
    let mut sus: Vec<TestSu> = su_ports
        .iter()
        .zip(&dirs)
        .map(|(port, dir)| su_on(dir.path(), *port, router_a_port, &gateway))
        .collect();
    let [su1, su2, su3] = su_ports;

    // SU2 takes the processes of one wallet first; SU3 is not listed yet.
    let dedicated = Client::new();
    let dedicated_address = dedicated.wallet.address_b64();
    let list_dir = tempfile::tempdir().unwrap();
    let list = list_dir.path().join("schedulers.json");
    write_list(
        &list,
        &[
            serde_json::json!({"url": url(su1)}),
            serde_json::json!({"url": format!("{}/", url(su2)), "wallets_to_route": format!("someone-else, {dedicated_address}")}),
        ],
    );
    let router_a = router_on(dirs[3].path(), router_a_port, &list);
    let router_b = router_on(dirs[4].path(), 0, &list);
    let (a, b) = (router_a.port, router_b.port);

    // The router's errors are the reference's JSON errors.
    let unknown = Client::new().process().1;
    let error = |router: u16, path: &str| {
        let (status, body, _) = request(router, "GET", path, &[], &[]);
        (
            status,
            json_field(&String::from_utf8(body).unwrap(), "error"),
        )
    };
    let not_found = serde_json::json!("NotFound(\"Process scheduler not found\")");
    assert_eq!(
        error(a, &format!("/processes/{unknown}")),
        (400, not_found.clone())
    );
    assert_eq!(
        error(b, &format!("/{unknown}/latest")),
        (400, not_found.clone())
    );
    assert_eq!(
        error(a, &format!("/?process-id={unknown}")),
        (400, not_found.clone())
    );
    assert_eq!(
        error(a, "/timestamp"),
        (
            400,
            serde_json::json!("No process-id query parameter provided")
        )
    );
    let orphan = Client::new().message(&unknown, "to nobody").0;
    let (status, body, _) = request(b, "POST", "/", &orphan, &[]);
    assert_eq!(
        (
            status,
            json_field(&String::from_utf8(body).unwrap(), "error")
        ),
        (
            400,
            serde_json::json!("Unable to locate scheduler for message target")
        )
    );
    assert_eq!(request(a, "GET", "/health", &[], &[]).0, 200);

    // 30 spawns through A: the dedicated wallet's 6 on SU2, the other 24 to the least loaded.
    let mut placed: HashMap<String, u16> = HashMap::new();
    let others = Client::new();
    for n in 0..30 {
        let client = if n < 6 { &dedicated } else { &others };
        let (process, pid) = client.process();
        let answer = follow(a, "POST", "/", &process);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.redirected);
        assert_eq!(json_field(&answer.body, "id"), serde_json::json!(pid));
        if n < 6 {
            assert_eq!(answer.port, su2, "the dedicated wallet goes to SU2");
        }
        placed.insert(pid, answer.port);
    }
    let on = |port: u16| placed.values().filter(|&&p| p == port).count();
    assert_eq!(on(su1) + on(su2), 30);
    assert_eq!(on(su3), 0, "an unlisted SU gets nothing");
    assert!(
        (13..=17).contains(&on(su1)),
        "spread: {} on SU1, {} on SU2",
        on(su1),
        on(su2)
    );
    // Every SU holds exactly what the router says it placed there.
    for (pid, port) in &placed {
        let (status, _, _) = request(*port, "GET", &format!("/processes/{pid}"), &[], &[]);
        assert_eq!(status, 200);
    }
    // A repeated spawn goes where the first went.
    let (again, again_pid) = dedicated.process();
    let first = follow(a, "POST", "/", &again);
    assert_eq!(follow(b, "POST", "/", &again).port, first.port);
    placed.insert(again_pid, first.port);

    // Through B, which placed nothing: messages, assignments and reads, as the SUs answer.
    let writer = Client::new();
    let pids: Vec<(String, u16)> = placed.iter().map(|(p, s)| (p.clone(), *s)).collect();
    let mut messages = Vec::new();
    for (pid, su) in &pids {
        let (message, mid) = writer.message(pid, "hello");
        let answer = follow(b, "POST", "/", &message);
        assert_eq!((answer.status, answer.port), (200, *su), "{}", answer.body);
        assert_eq!(json_field(&answer.body, "id"), serde_json::json!(mid));
        let (tx, data) = GqlTx::of_item(&message);
        gateway.add_tx(tx, &data);
        messages.push(mid);
    }
    // Assign each process's message to the next process (often on another SU).
    for (index, (pid, su)) in pids.iter().enumerate().take(6) {
        let assigned = &messages[(index + 1) % pids.len()];
        let path = format!("/?process-id={pid}&assign={assigned}");
        let answer = follow(b, "POST", &path, &[]);
        assert_eq!((answer.status, answer.port), (200, *su), "{}", answer.body);
    }
    for (pid, su) in &pids {
        for path in [
            format!("/{pid}?process-id={pid}&from-nonce=-1"),
            format!("/{pid}"),
            format!("/processes/{pid}"),
            format!("/{pid}/latest"),
            format!("/{}?process-id={pid}", messages[0]),
            format!("/timestamp?process-id={pid}"),
            format!("/?process-id={pid}"),
        ] {
            let via_router = follow(b, "GET", &path, &[]);
            let (status, direct, _) = request(*su, "GET", &path, &[], &[]);
            let direct = String::from_utf8(direct).unwrap();
            assert_eq!(via_router.port, *su, "{path}");
            assert_eq!(via_router.status, status, "{path}: {}", via_router.body);
            if status == 200 {
                assert_eq!(stable(&via_router.body), stable(&direct), "{path}");
            }
        }
    }
    // Redirects carry CORS headers.
    let (status, _, head) = request(
        b,
        "GET",
        &format!("/processes/{}", pids[0].0),
        &[],
        &[("Origin", "https://app.example")],
    );
    assert_eq!(status, 307);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );

    // The SU-side router check: a process A placed on one SU is refused by another.
    let (spawn, spawn_pid) = Client::new().process();
    let (status, _, head) = request(a, "POST", "/", &spawn, &[]);
    assert_eq!(status, 307);
    let chosen: u16 = location(&head).unwrap()["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let other = if chosen == su1 { su2 } else { su1 };
    let (status, body, _) = request(other, "POST", "/", &spawn, &[]);
    assert_eq!(
        (
            status,
            json_field(&String::from_utf8(body).unwrap(), "error")
        ),
        (400, serde_json::json!("Process does not belong on this SU"))
    );
    assert_eq!(request(chosen, "POST", "/", &spawn, &[]).0, 200);
    placed.insert(spawn_pid, chosen);

    // SIGHUP with SU3 added: new processes reach it, old ones stay where they are.
    write_list(
        &list,
        &[
            serde_json::json!({"url": url(su1)}),
            serde_json::json!({"url": url(su2), "wallets_to_route": dedicated_address}),
            serde_json::json!({"url": url(su3)}),
        ],
    );
    sighup(&router_a);
    sighup(&router_b);
    wait_for(10, "router A to read the new list", || {
        router_a
            .log()
            .iter()
            .filter(|line| line.contains("scheduler list read"))
            .count()
            >= 2
    });
    for _ in 0..5 {
        let (process, pid) = others.process();
        let answer = follow(a, "POST", "/", &process);
        assert_eq!((answer.status, answer.port), (200, su3), "{}", answer.body);
        placed.insert(pid, su3);
    }
    for (pid, su) in &placed {
        assert_eq!(redirect_port(a, &format!("/processes/{pid}")), Some(*su));
        assert_eq!(redirect_port(b, &format!("/{pid}/latest")), Some(*su));
        // The live schedule goes where the process lives, like every read (issue 21).
        assert_eq!(
            redirect_port(b, &format!("/{pid}/stream?from-nonce=0")),
            Some(*su)
        );
    }

    // A router on an empty data dir finds every process on the SUs.
    let router_c = router_on(dirs[5].path(), 0, &list);
    for (pid, su) in &placed {
        assert_eq!(
            redirect_port(router_c.port, &format!("/{pid}?process-id={pid}")),
            Some(*su),
            "{pid}"
        );
    }
    assert_eq!(
        error(router_c.port, &format!("/processes/{unknown}")),
        (400, not_found)
    );

    // SU3 stopped: no new placements on it; its processes are still sent to it.
    sus[2].stop();
    wait_for(10, "router A to see SU3 down", || {
        router_a
            .log()
            .iter()
            .any(|line| line.contains("failed its health check"))
    });
    for _ in 0..3 {
        let (process, _) = others.process();
        let answer = follow(a, "POST", "/", &process);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_ne!(answer.port, su3);
    }
    for (pid, su) in placed.iter().filter(|(_, su)| **su == su3) {
        assert_eq!(redirect_port(a, &format!("/processes/{pid}")), Some(*su));
    }

    // Metrics: redirects, placements, SU health and fall-through lookups.
    let (status, metrics, _) = request(a, "GET", "/metrics", &[], &[]);
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    for name in [
        "su_router_redirects_total",
        "su_router_placements_total",
        "su_router_su_healthy",
        "su_router_fallthrough_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains(&format!("su_router_su_healthy{{su=\"{}\"}} 0", url(su3))),
        "{metrics}"
    );
    drop(sus);
}
