//! Test support: run the real `su` binary hermetically, speak raw HTTP/1.1, and make signed
//! ao items.
#![allow(dead_code)]

use ao_su::ans104::b64;
use ao_su::wallet::{SigningSalt, Wallet};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Variables a launched `su` may see from the test process; everything else it gets is set
/// by the test. `PATH` only, so nothing an operator exported can change what a test sees.
const INHERITED: &[&str] = &["PATH"];

/// The one way tests run the real `su` binary.
///
/// The child starts from an empty environment (plus `INHERITED`), with `SU_DATA_DIR` set,
/// and runs in a fresh temporary working directory, so no stray `.env` is read.
/// `serve` starts the daemon and waits for its port; `output` runs a one-shot subcommand.
pub struct SuCommand {
    data_dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dot_env: Option<String>,
}

/// What a one-shot run printed, and how it exited.
pub struct SuOutput {
    /// The exit code; `None` if a signal ended the run.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl SuOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Stdout followed by stderr, for assertion messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl SuCommand {
    /// `su` with `SU_DATA_DIR=data_dir` and no arguments yet.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            dot_env: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// Sets a variable in the child's environment (the last setting of a name wins).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((name.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn envs(self, vars: &[(&str, &str)]) -> Self {
        vars.iter()
            .fold(self, |command, (name, value)| command.env(name, value))
    }

    /// Writes `text` as `.env` into the run's working directory.
    pub fn dot_env(mut self, text: &str) -> Self {
        self.dot_env = Some(text.to_string());
        self
    }

    /// A fresh working directory (holding the `.env`, if any) and the command to run in it.
    fn command(&self) -> (tempfile::TempDir, Command) {
        let cwd = tempfile::tempdir().expect("working directory for su");
        if let Some(text) = &self.dot_env {
            std::fs::write(cwd.path().join(".env"), text).expect("write .env");
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_su"));
        command
            .args(&self.args)
            .env_clear()
            .envs(
                INHERITED
                    .iter()
                    .filter_map(|name| Some((name, std::env::var_os(name)?))),
            )
            .env("SU_DATA_DIR", &self.data_dir)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(cwd.path())
            .stdin(Stdio::null());
        (cwd, command)
    }

    /// Runs a one-shot subcommand to completion; a run still going after a minute is killed
    /// and fails the test.
    pub fn output(self) -> SuOutput {
        let (_cwd, mut command) = self.command();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn su");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            let mut pipe = pipe.expect("piped");
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as _));
        let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as _));
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for su") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("su did not exit in time: {command:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        SuOutput {
            code: status.code(),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }

    /// Runs `su serve` on 127.0.0.1, port 0, logging at `info` unless the test sets `SU_LOG`,
    /// and returns once it logs its `serving` line.
    pub fn serve(self) -> TestSu {
        assert!(self.args.is_empty(), "serve sets its own arguments");
        self.args(["serve", "--bind", "127.0.0.1", "--port", "0"])
            .daemon()
    }

    /// Runs a long-lived subcommand given with `args` (which must bind 127.0.0.1, port 0),
    /// logging at `info` unless the test sets `SU_LOG`, and returns once it logs `serving`.
    pub fn daemon(self) -> TestSu {
        let data_dir = self.data_dir.clone();
        let (cwd, mut command) = self.command();
        if !command.get_envs().any(|(name, _)| name == "SU_LOG") {
            command.env("SU_LOG", "info");
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn su");
        // A thread keeps every stderr line (and keeps the pipe drained after start-up).
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines_rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                let seen = log.lock().unwrap().join("\n");
                panic!("su did not report `serving`; its stderr:\n{seen}");
            };
            if let Some(port) = serving_port(&line) {
                break port;
            }
        };
        TestSu {
            child,
            port,
            data_dir,
            log,
            _cwd: cwd,
        }
    }
}

/// The port of the `serving` log line, in text (`serving address=127.0.0.1:PORT`) or JSON
/// (`"message":"serving","address":"127.0.0.1:PORT"`) format.
fn serving_port(line: &str) -> Option<u16> {
    if !line.contains("serving") {
        return None;
    }
    let rest = line.split("127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A running `su serve` on 127.0.0.1 with its own data dir; killed on drop.
pub struct TestSu {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    _cwd: tempfile::TempDir,
}

impl TestSu {
    /// `SuCommand::new(data_dir).envs(env).serve()`.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        SuCommand::new(data_dir).envs(env).serve()
    }

    /// Every stderr line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body, _) = request(self.port, "GET", path, &[], &[]);
        (status, String::from_utf8(body).unwrap())
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        let (status, body, _) = request(self.port, "POST", path, body, &[]);
        (status, String::from_utf8(body).unwrap())
    }

    /// SIGKILL, and reap.
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

/// Runs `su verify` on a data dir; returns (success, stdout and stderr).
pub fn su_verify(data_dir: &Path) -> (bool, String) {
    let output = SuCommand::new(data_dir).arg("verify").output();
    (output.success(), output.text())
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
