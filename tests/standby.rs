//! `su sync` (issue 20): a hot standby follows a primary under write load and converges to a
//! byte-identical copy within interval + 1 s; it survives SIGKILL of itself and of the primary;
//! it refuses a history that contradicts its own; and promoting it (`su serve` on its data dir
//! with the primary's wallet) continues every chain.

mod support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Client, SuCommand, TestSu, edges, request, su_verify};

const INTERVAL_SECS: u64 = 1;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn primary_on(data: &Path, port: u16) -> TestSu {
    SuCommand::new(data)
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .daemon()
}

fn standby_of(data: &Path, primary_port: u16) -> TestSu {
    SuCommand::new(data)
        .args([
            "sync",
            "--from",
            &format!("http://127.0.0.1:{primary_port}"),
            "--interval",
            &INTERVAL_SECS.to_string(),
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .daemon()
}

/// The schedule page of every process: status and raw bytes.
fn pages(su: &TestSu, pids: &[String]) -> Vec<(u16, String)> {
    pids.iter()
        .map(|pid| su.get(&format!("/{pid}?process-id={pid}&from-nonce=-1&limit=5000")))
        .collect()
}

/// Waits until the standby serves the same pages as the primary; returns how long it took.
fn converge(primary: &TestSu, standby: &TestSu, pids: &[String], deadline: Duration) -> Duration {
    let started = Instant::now();
    let expected = pages(primary, pids);
    assert!(expected.iter().all(|(status, _)| *status == 200));
    loop {
        if pages(standby, pids) == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "the standby did not converge within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writers posting messages to `pids` until stopped; acknowledged ids with their ack time.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(String, String, Instant)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, client: &Arc<Client>, pids: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let threads = pids
            .iter()
            .cloned()
            .map(|pid| {
                let (stop, acknowledged, client) =
                    (stop.clone(), acknowledged.clone(), client.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let (item, id) = client.message(&pid, &format!("{pid} {n}"));
                        n += 1;
                        // The primary may be restarting: only acknowledged writes count.
                        let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        drop(stream);
                        let answered =
                            std::panic::catch_unwind(|| request(port, "POST", "/", &item, &[]).0);
                        if answered.is_ok_and(|status| status == 200) {
                            acknowledged
                                .lock()
                                .unwrap()
                                .push((pid.clone(), id, Instant::now()));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Self {
            stop,
            acknowledged,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    fn latest(&self) -> Option<(String, String, Instant)> {
        self.acknowledged.lock().unwrap().last().cloned()
    }

    fn stop(self) -> Vec<(String, String, Instant)> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        Arc::try_unwrap(self.acknowledged)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn spawn_processes(su: &TestSu, client: &Client, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let (process, pid) = client.process();
            assert_eq!(su.post("/", &process).0, 200);
            pid
        })
        .collect()
}

#[test]
fn a_standby_follows_under_load_within_the_interval_and_can_be_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let (primary_dir, standby_dir) = (dir.path().join("primary"), dir.path().join("standby"));
    let mut primary = TestSu::start(&primary_dir, &[]);
    let client = Arc::new(Client::new());
    let pids = spawn_processes(&primary, &client, 3);
    let mut standby = standby_of(&standby_dir, primary.port);
    assert_eq!(standby.get("/").1.len(), primary.get("/").1.len());

    // Under load, every sampled write reaches the standby within interval + 1 s.
    let load = Load::start(primary.port, &client, &pids);
    let mut worst = Duration::ZERO;
    let sampling = Instant::now();
    while sampling.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(300));
        let Some((pid, id, acknowledged_at)) = load.latest() else {
            continue;
        };
        loop {
            let (status, _) = standby.get(&format!("/{id}?process-id={pid}"));
            if status == 200 {
                worst = worst.max(acknowledged_at.elapsed());
                break;
            }
            assert!(
                acknowledged_at.elapsed() < Duration::from_secs(INTERVAL_SECS + 1),
                "a write was not on the standby within interval + 1 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let acknowledged = load.stop();
    eprintln!(
        "{} writes under load; worst sampled lag {worst:?}",
        acknowledged.len()
    );
    let took = converge(
        &primary,
        &standby,
        &pids,
        Duration::from_secs(INTERVAL_SECS + 1),
    );
    eprintln!("converged {took:?} after the load stopped");
    assert_eq!(
        standby.get("/").1[..55],
        primary.get("/").1[..55],
        "same address"
    );

    // The feed bounds one request: at most 1,000 changes, a bad cursor is a 400.
    assert_eq!(primary.get("/~su/log?limit=1001").0, 400);
    assert_eq!(primary.get("/~su/log?after=-1").0, 400);
    let (status, body) = primary.get("/~su/log?after=0&limit=1000");
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(page["changes"].as_array().unwrap().len() <= 1000);

    // Writes are sent to the primary.
    let (item, _) = client.message(&pids[0], "to the standby");
    let (status, _, head) = request(standby.port, "POST", "/", &item, &[]);
    assert_eq!(status, 307);
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: http://127.0.0.1:{}/", primary.port)),
        "{head}"
    );

    // Promotion: stop both, serve the standby's store with the primary's wallet.
    assert_eq!(standby.stop(), Some(0));
    assert_eq!(primary.stop(), Some(0));
    let (ok, report) = su_verify(&standby_dir);
    assert!(ok, "su verify on the standby:\n{report}");
    let wallet = primary_dir.join("wallet.json");
    let promoted = TestSu::start(
        &standby_dir,
        &[("SU_WALLET_PATH", wallet.to_str().unwrap())],
    );
    assert!(
        promoted.log().iter().any(
            |line| line.contains("this store was a standby") && line.contains("former_primary")
        ),
        "serving a standby's store names its former primary:\n{:?}",
        promoted.log()
    );
    for pid in &pids {
        let before = edges(&promoted, pid).len();
        let (item, id) = client.message(pid, "after promotion");
        assert_eq!(promoted.post("/", &item).0, 200);
        let after = edges(&promoted, pid);
        assert_eq!(after.len(), before + 1);
        assert_eq!(after.last().unwrap()["node"]["message"]["id"], id.as_str());
    }
    drop(promoted);
    let (ok, report) = su_verify(&standby_dir);
    assert!(ok, "su verify after promotion:\n{report}");
}

#[test]
fn a_standby_converges_after_it_or_its_primary_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (primary_dir, standby_dir) = (dir.path().join("primary"), dir.path().join("standby"));
    let port = free_port();
    let mut primary = primary_on(&primary_dir, port);
    let client = Arc::new(Client::new());
    let pids = spawn_processes(&primary, &client, 2);
    let mut standby = standby_of(&standby_dir, port);

    let load = Load::start(port, &client, &pids);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for round in 0..3 {
        let target = load.count() + 40;
        while load.count() < target {
            std::thread::sleep(Duration::from_millis(20));
        }
        standby.kill();
        *seen.entry("standby killed").or_default() += 1;
        standby = standby_of(&standby_dir, port);
        if round == 1 {
            primary.kill();
            *seen.entry("primary killed").or_default() += 1;
            primary = primary_on(&primary_dir, port);
        }
    }
    let acknowledged = load.stop();
    assert!(acknowledged.len() > 100, "{} writes", acknowledged.len());
    converge(&primary, &standby, &pids, Duration::from_secs(30));
    let listed: std::collections::HashSet<String> = pids
        .iter()
        .flat_map(|pid| edges(&standby, pid))
        .map(|edge| edge["node"]["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    for (_, id, _) in &acknowledged {
        assert!(listed.contains(id), "acknowledged {id} reached the standby");
    }
    assert_eq!(standby.stop(), Some(0));
    let (ok, report) = su_verify(&standby_dir);
    assert!(ok, "{report}\n{seen:?}");
}

#[test]
fn a_standby_refuses_a_history_that_contradicts_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let (process, pid) = client.process();
    let first_dir = dir.path().join("first");
    let first = TestSu::start(&first_dir, &[]);
    assert_eq!(first.post("/", &process).0, 200);
    let standby_dir = dir.path().join("standby");
    let standby = standby_of(&standby_dir, first.port);
    converge(
        &first,
        &standby,
        std::slice::from_ref(&pid),
        Duration::from_secs(10),
    );
    drop(standby);

    // Another SU with the same wallet schedules the same process differently.
    let wallet = first_dir.join("wallet.json");
    let other = TestSu::start(
        &dir.path().join("other"),
        &[("SU_WALLET_PATH", wallet.to_str().unwrap())],
    );
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(other.post("/", &process).0, 200);
    for n in 0..3 {
        let (item, _) = client.message(&pid, &format!("m{n}"));
        assert_eq!(other.post("/", &item).0, 200);
    }
    let output = SuCommand::new(&standby_dir)
        .args([
            "sync",
            "--from",
            &format!("http://127.0.0.1:{}", other.port),
            "--interval",
            "1",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .output();
    assert!(
        !output.success(),
        "the standby must stop: {}",
        output.text()
    );
    assert!(
        output.text().contains("hash chain does not follow") || output.text().contains("fork"),
        "{}",
        output.text()
    );
    let (ok, report) = su_verify(&standby_dir);
    assert!(ok, "nothing of the other history was applied:\n{report}");
}
