//! Test support: run the real `su` binary, speak raw HTTP/1.1, and make signed ao items.
#![allow(dead_code)]

use ao_su::ans104::b64;
use ao_su::wallet::{SigningSalt, Wallet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `su serve` on 127.0.0.1 with its own data dir.
pub struct TestSu {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl TestSu {
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_su"));
        command
            .args(["serve", "--bind", "127.0.0.1", "--port", "0"])
            .env("SU_DATA_DIR", data_dir)
            .env("SU_LOG", "info")
            .env_remove("SU_WALLET_PATH")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn su");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            assert!(Instant::now() < deadline, "su did not start in time");
            let line = lines
                .next()
                .expect("su exited before serving")
                .expect("read stderr");
            if let Some(rest) = line.split("serving address=127.0.0.1:").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            port,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body, _) = request(self.port, "GET", path, &[], &[]);
        (status, String::from_utf8(body).unwrap())
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        let (status, body, _) = request(self.port, "POST", path, body, &[]);
        (status, String::from_utf8(body).unwrap())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "su did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestSu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status, body and raw headers.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec(), head)
}

/// A client that signs ao items, like aoconnect in Node (salt 478).
pub struct Client {
    pub wallet: Wallet,
}

pub const MODULE: &str = "Isk_GYo30Tyf5nLbVI6zEJIfFpiXQJd58IKcIkTu4no";

impl Client {
    pub fn new() -> Self {
        let jwk = Wallet::generate().unwrap();
        Self {
            wallet: Wallet::from_jwk(&jwk, SigningSalt::Max).unwrap(),
        }
    }

    pub fn item(
        &self,
        target: Option<[u8; 32]>,
        tags: &[(&str, &str)],
        data: &[u8],
    ) -> (Vec<u8>, String) {
        let tags = tags
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut draft = self.wallet.draft(tags, data.to_vec());
        draft.target = target;
        let (bytes, id) = self.wallet.sign(&draft).unwrap();
        (bytes, b64::encode(&id))
    }

    pub fn process(&self) -> (Vec<u8>, String) {
        self.item(
            None,
            &[
                ("Data-Protocol", "ao"),
                ("Variant", "ao.TN.1"),
                ("Type", "Process"),
                ("Module", MODULE),
                ("Scheduler", "x"),
            ],
            b"-- process",
        )
    }

    pub fn message(&self, process: &str, data: &str) -> (Vec<u8>, String) {
        let target = b64::decode_id(process).unwrap();
        self.item(
            Some(target),
            &[
                ("Data-Protocol", "ao"),
                ("Variant", "ao.TN.1"),
                ("Type", "Message"),
                ("Action", "Eval"),
            ],
            data.as_bytes(),
        )
    }
}

/// Extracts a top-level string or number field from a small JSON object.
pub fn json_field(body: &str, name: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    value[name].clone()
}

/// Runs `su verify` on a data dir; returns (success, output).
pub fn su_verify(data_dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_su"))
        .arg("verify")
        .env("SU_DATA_DIR", data_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Every edge of a process's schedule, in one nonce-mode page.
pub fn edges(su: &TestSu, pid: &str) -> Vec<serde_json::Value> {
    let (status, body) = su.get(&format!("/{pid}?process-id={pid}&from-nonce=-1&limit=5000"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["edges"]
        .as_array()
        .unwrap()
        .clone()
}

/// The assignment's tags of a node, as (name, value) pairs.
pub fn tags(node: &serde_json::Value) -> Vec<(String, String)> {
    node["assignment"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
            (text(&t["name"]), text(&t["value"]))
        })
        .collect()
}

/// One assignment tag of a node.
pub fn tag(node: &serde_json::Value, name: &str) -> String {
    tags(node)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} tag"))
        .1
}

pub mod fakes;
