//! `su backup --to DIR` (issue 20): a consistent copy taken by a running server under write
//! load, or of a stopped store. `su verify` passes on the copy, every write acknowledged
//! before the backup began is in it, it holds no private key, and `su serve` with the same
//! wallet continues every chain from it.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{Client, SuCommand, TestSu, edges, su_verify, tag};

fn backup(data_dir: &Path, to: &Path) -> support::SuOutput {
    SuCommand::new(data_dir)
        .arg("backup")
        .arg("--to")
        .arg(to)
        .output()
}

fn scheduled_ids(su: &TestSu, pid: &str) -> Vec<String> {
    edges(su, pid)
        .iter()
        .map(|edge| edge["node"]["message"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_backup_taken_under_write_load_holds_every_earlier_write_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut su = TestSu::start(&data, &[]);
    let client = Arc::new(Client::new());
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);

    // A writer keeps posting while the backup runs.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, acknowledged, stop, pid, port) = (
            client.clone(),
            acknowledged.clone(),
            stop.clone(),
            pid.clone(),
            su.port,
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let (item, id) = client.message(&pid, &format!("m{n}"));
                let (status, _, _) = support::request(port, "POST", "/", &item, &[]);
                assert_eq!(status, 200);
                acknowledged.lock().unwrap().push(id);
                n += 1;
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let copy = dir.path().join("copy");
    let output = backup(&data, &copy);
    assert!(output.success(), "{}", output.text());
    assert!(
        output.stdout.contains("by the running server"),
        "{}",
        output.text()
    );
    while acknowledged.lock().unwrap().len() < before.len() + 50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(su.stop(), Some(0));

    let again = backup(&data, &copy);
    assert!(!again.success(), "an existing directory is refused");
    assert!(again.text().contains("already exists"), "{}", again.text());

    assert!(
        !copy.join("wallet.json").exists(),
        "the copy holds no private key"
    );
    let (ok, report) = su_verify(&copy);
    assert!(ok, "su verify on the copy:\n{report}");

    // Restore: serve the copy with the primary's wallet; every earlier write is there, and new
    // writes continue the chain.
    let wallet = data.join("wallet.json");
    let wallet = wallet.to_str().unwrap();
    let restored = TestSu::start(&copy, &[("SU_WALLET_PATH", wallet)]);
    let listed: HashSet<String> = scheduled_ids(&restored, &pid).into_iter().collect();
    for id in &before {
        assert!(
            listed.contains(id),
            "{id}, acknowledged before the backup, is in it"
        );
    }
    let (item, id) = client.message(&pid, "after restore");
    assert_eq!(restored.post("/", &item).0, 200);
    let nodes = edges(&restored, &pid);
    for (index, edge) in nodes.iter().enumerate() {
        assert_eq!(tag(&edge["node"], "Nonce"), index.to_string(), "no gap");
    }
    assert_eq!(
        nodes.last().unwrap()["node"]["message"]["id"].as_str(),
        Some(id.as_str())
    );
    drop(restored);
    let (ok, report) = su_verify(&copy);
    assert!(
        ok,
        "su verify after writing to the restored copy:\n{report}"
    );
}

#[test]
fn a_stopped_store_is_backed_up_by_the_command_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut su = TestSu::start(&data, &[]);
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    let mut ids = vec![pid.clone()];
    for n in 0..10 {
        let (item, id) = client.message(&pid, &format!("m{n}"));
        assert_eq!(su.post("/", &item).0, 200);
        ids.push(id);
    }
    assert_eq!(su.stop(), Some(0));

    let copy = dir.path().join("copy");
    let output = backup(&data, &copy);
    assert!(output.success(), "{}", output.text());
    assert!(
        output.stdout.contains("store opened directly"),
        "{}",
        output.text()
    );
    let (ok, report) = su_verify(&copy);
    assert!(ok, "{report}");
    let wallet = data.join("wallet.json");
    let restored = TestSu::start(&copy, &[("SU_WALLET_PATH", wallet.to_str().unwrap())]);
    assert_eq!(scheduled_ids(&restored, &pid), ids);
}
