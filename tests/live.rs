//! The live schedule, end to end with the real `su` binary: a waiting read answered as soon
//! as a write is acknowledged, a Server-Sent Events stream that delivers every nonce exactly
//! once and in order across reconnects, idle waiters that cost no CPU, and the cap's 503.
//! The tests run one at a time: the latency bound must not measure another test's load.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{Client, TestSu, edges, request};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawns a process; returns its id.
fn spawn(su: &TestSu, client: &Client) -> String {
    let (process, pid) = client.process();
    let (status, body) = su.post("/", &process);
    assert_eq!(status, 200, "{body}");
    pid
}

fn page(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

#[test]
fn a_waiting_read_answers_at_the_write_and_an_empty_page_when_the_wait_ends() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let pid = spawn(&su, &client);

    // Without `wait`, the same bytes as before; with it, nothing new: the empty page once
    // the wait ends.
    let plain = su.get(&format!("/{pid}?from-nonce=0"));
    assert_eq!(plain.0, 200);
    assert_eq!(
        plain.1,
        r#"{"page_info":{"has_next_page":false},"edges":[]}"#
    );
    let started = Instant::now();
    let waited = su.get(&format!("/{pid}?from-nonce=0&wait=1"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(waited, plain);
    // Entries already there answer at once.
    let started = Instant::now();
    let (status, body) = su.get(&format!("/{pid}?from-nonce=-1&wait=30"));
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(page(body.as_bytes())["edges"].as_array().unwrap().len(), 1);
    // A negative wait is a bad request, like any bad parameter.
    let (status, body) = su.get(&format!("/{pid}?from-nonce=0&wait=-1"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("wait"), "{body}");

    // Each write wakes the waiting read: from its acknowledgement to the read's answer,
    // within 50 ms (issue 21). In nonce mode, then in timestamp mode (`from=`).
    let port = su.port;
    for nonce in 1..=6u64 {
        let timestamp_mode = nonce % 2 == 0;
        let path = if timestamp_mode {
            let last = edges(&su, &pid).last().unwrap()["node"]["assignment"]["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|tag| tag["name"] == "Timestamp")
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned();
            format!("/{pid}?from={last}&wait=30")
        } else {
            format!("/{pid}?from-nonce={}&wait=30", nonce - 1)
        };
        let reader = std::thread::spawn(move || {
            let (status, body, _) = request(port, "GET", &path, &[], &[]);
            (status, body, Instant::now())
        });
        // The read is waiting once it has had time to subscribe; a late one still answers
        // (the entry is there), so the pause only makes the measurement meaningful.
        std::thread::sleep(Duration::from_millis(300));
        let (message, mid) = client.message(&pid, &format!("n{nonce}"));
        let (status, body) = su.post("/", &message);
        let acknowledged = Instant::now();
        assert_eq!(status, 200, "{body}");
        let (status, body, answered) = reader.join().unwrap();
        assert_eq!(status, 200);
        let page = page(&body);
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{page}");
        assert_eq!(edges[0]["node"]["message"]["id"], mid.as_str());
        let delay = answered.saturating_duration_since(acknowledged);
        assert!(
            delay < Duration::from_millis(50),
            "write {nonce}: the waiting read answered {delay:?} after the acknowledgement"
        );
    }
}

/// A Server-Sent Events client over one HTTP/1.1 connection (chunked body).
struct Events {
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
}

/// One event: its `id:` and its `data:`.
struct Event {
    id: u64,
    data: String,
}

impl Events {
    fn open(port: u16, path: &str) -> Result<Self, (u16, String, String)> {
        Self::open_with(port, path, "")
    }

    /// With `headers`, each line ending in CRLF.
    fn open_with(port: u16, path: &str, headers: &str) -> Result<Self, (u16, String, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        if status != 200 {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            return Err((status, head, String::from_utf8(body).unwrap()));
        }
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        Ok(Self {
            reader,
            pending: Vec::new(),
        })
    }

    /// The next chunk of the body, appended to `pending`.
    fn read_chunk(&mut self) {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        assert!(size > 0, "the stream ended");
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        self.pending.extend_from_slice(&chunk[..size]);
    }

    /// The next event with data (comments, the heartbeats, are skipped).
    fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.pending[..end].to_vec()).unwrap();
                self.pending.drain(..end + 2);
                let (mut id, mut data) = (None, None);
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.parse().unwrap());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(value.to_owned());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return Event { id, data };
                }
                continue;
            }
            self.read_chunk();
        }
    }
}

#[test]
fn a_stream_delivers_every_nonce_once_and_in_order_across_a_reconnect() {
    let _serial = serial();
    const WRITES: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let pid = spawn(&su, &client);
    let (status, _, head) = request(
        su.port,
        "GET",
        &format!("/{pid}/stream?from-nonce=x"),
        &[],
        &[],
    );
    assert_eq!(status, 400, "{head}");
    let (status, _, _) = request(su.port, "GET", "/not-a-process/stream", &[], &[]);
    assert_eq!(status, 400);

    let messages: Vec<Vec<u8>> = (0..WRITES)
        .map(|n| client.message(&pid, &format!("m{n}")).0)
        .collect();
    let port = su.port;
    let mut stream = Events::open(port, &format!("/{pid}/stream?from-nonce=0"))
        .ok()
        .unwrap();
    // Four writers, so commits group several entries.
    let writers: Vec<_> = messages
        .chunks(messages.len() / 4)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                for message in chunk {
                    let (status, body, _) = request(port, "POST", "/", &message, &[]);
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                }
            })
        })
        .collect();
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut expected = 1;
    while expected <= WRITES {
        // The client goes away after 400 events and comes back with the last id it saw.
        if expected == 401 {
            drop(stream);
            let last = seen.last().unwrap().0;
            stream = Events::open(port, &format!("/{pid}/stream?from-nonce={last}"))
                .ok()
                .unwrap();
        }
        let event = stream.next();
        assert_eq!(event.id, expected, "every nonce once, in order");
        seen.push((event.id, event.data));
        expected += 1;
    }
    for writer in writers {
        writer.join().unwrap();
    }
    // Each event's data is the edge of the message list, cursor included.
    let listed = edges(&su, &pid);
    assert_eq!(listed.len() as u64, WRITES + 1);
    for (nonce, data) in &seen {
        let edge: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(edge, listed[*nonce as usize], "nonce {nonce}");
    }
    // A reconnect through `Last-Event-ID` (what an EventSource sends) resumes after it too.
    let mut stream = Events::open_with(
        port,
        &format!("/{pid}/stream"),
        &format!("Last-Event-ID: {}\r\n", WRITES - 1),
    )
    .ok()
    .unwrap();
    let event = stream.next();
    assert_eq!(event.id, WRITES);
}

/// The server's CPU time so far (utime + stime), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn idle_waiters_cost_no_cpu_and_the_cap_answers_503() {
    let _serial = serial();
    const WAITERS: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let cap = WAITERS.to_string();
    let su = TestSu::start(dir.path(), &[("SU_MAX_LIVE_READS", cap.as_str())]);
    let client = Client::new();
    let pid = spawn(&su, &client);
    let port = su.port;

    let mut waiters = Vec::new();
    for _ in 0..WAITERS {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "GET /{pid}?from-nonce=0&wait=60 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        waiters.push(stream);
    }
    // Once every waiter holds its place (`/metrics` counts them), one more waiting read or
    // stream is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = su.get("/metrics");
        if metrics.contains(&format!("su_live_reads {WAITERS}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the waiters did not all wait: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body, head) = request(
        port,
        "GET",
        &format!("/{pid}?from-nonce=0&wait=1"),
        &[],
        &[],
    );
    assert_eq!(status, 503, "{head}");
    let body = String::from_utf8(body).unwrap();
    assert!(body.starts_with("{\"error\":"), "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    match Events::open(port, &format!("/{pid}/stream")) {
        Err((status, _, body)) => {
            assert_eq!(status, 503);
            assert!(body.starts_with("{\"error\":"), "{body}");
        }
        Ok(_) => panic!("a stream beyond the cap was served"),
    }
    // Reads without `wait` are not counted.
    assert_eq!(su.get(&format!("/{pid}?from-nonce=0")).0, 200);

    // Idle: 500 waiters and no writes cost (almost) no CPU time over 2 s.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(su.child.id());
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(su.child.id()) - before;
    eprintln!("500 idle waiters: {spent} ticks of server CPU in 2 s");
    assert!(
        spent <= 5,
        "500 idle waiters cost {spent} ticks of CPU in 2 s"
    );

    // One write answers every one of them with its entry.
    let (message, mid) = client.message(&pid, "wake");
    assert_eq!(su.post("/", &message).0, 200);
    for mut waiter in waiters {
        let mut raw = Vec::new();
        waiter.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains(&mid), "{text}");
    }
    // The places are given back.
    let (status, body) = su.get(&format!("/{pid}?from-nonce=1&wait=1"));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_standby_wakes_its_waiting_reads_when_it_replicates() {
    let _serial = serial();
    let (primary_dir, standby_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = TestSu::start(primary_dir.path(), &[]);
    let client = Client::new();
    let pid = spawn(&primary, &client);
    let standby = support::SuCommand::new(standby_dir.path())
        .args([
            "sync",
            "--from",
            &format!("http://127.0.0.1:{}", primary.port),
            "--interval",
            "1",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .daemon();
    let deadline = Instant::now() + Duration::from_secs(20);
    while standby.get(&format!("/{pid}?from-nonce=-1")).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the standby never had the process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let port = standby.port;
    let path = format!("/{pid}?from-nonce=0&wait=30");
    let reader = std::thread::spawn(move || {
        let (status, body, _) = request(port, "GET", &path, &[], &[]);
        (status, body, Instant::now())
    });
    let mut stream = Events::open(port, &format!("/{pid}/stream?from-nonce=0"))
        .ok()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (message, mid) = client.message(&pid, "replicated");
    assert_eq!(primary.post("/", &message).0, 200);
    let acknowledged = Instant::now();
    let (status, body, answered) = reader.join().unwrap();
    assert_eq!(status, 200);
    let page = page(&body);
    assert_eq!(
        page["edges"][0]["node"]["message"]["id"],
        mid.as_str(),
        "{page}"
    );
    // The standby follows every interval (1 s): the answer comes with the page it applies.
    assert!(answered.duration_since(acknowledged) < Duration::from_secs(10));
    let event = stream.next();
    assert_eq!(event.id, 1);
    assert!(event.data.contains(&mid));
}

#[test]
fn a_stream_consumer_that_does_not_keep_up_is_disconnected_and_streams_end_at_shutdown() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut su = TestSu::start(dir.path(), &[("SU_SHUTDOWN_SECS", "20")]);
    let client = Client::new();
    let pid = spawn(&su, &client);
    // 40 MB of schedule, more than the socket buffers, hyper's and the stream's hold.
    let data = "x".repeat(256 * 1024);
    for _ in 0..160 {
        let (message, _) = client.message(&pid, &data);
        assert_eq!(su.post("/", &message).0, 200);
    }
    // A client that opens a stream and never reads.
    let stalled = Events::open(su.port, &format!("/{pid}/stream?from-nonce=0"))
        .ok()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = su.get("/metrics");
        if metrics.contains("su_live_streams_dropped_total{reason=\"slow\"} 1")
            && metrics.contains("su_live_reads 0")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled stream was not dropped: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stalled);
    // Open streams and waiting reads do not hold the shutdown to its drain deadline.
    let mut idle = Events::open(su.port, &format!("/{pid}/stream?from-nonce=160"))
        .ok()
        .unwrap();
    let port = su.port;
    let path = format!("/{pid}?from-nonce=160&wait=60");
    let waiting = std::thread::spawn(move || request(port, "GET", &path, &[], &[]).0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !su.get("/metrics").1.contains("su_live_reads 2") {
        assert!(Instant::now() < deadline, "the live reads did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    assert_eq!(su.stop(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(waiting.join().unwrap(), 200);
    let mut rest = Vec::new();
    let _ = idle.reader.read_to_end(&mut rest);
}
