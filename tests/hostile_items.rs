//! Hostile items, reads and downloads against the real `su` binary (issue 17): a tag-count
//! bomb, a malleated Ethereum signature, On-Boot values that would choose a gateway path, an
//! oversized `exclude`, concurrent huge pages, `GET /{id}` past 10,000 index rows, and a
//! `/raw` larger than the cap. Memory is the su child's own, from `/proc/<pid>/status`.

mod support;

use ao_su::ans104::item::sha256;
use ao_su::ans104::{ItemDraft, SignatureType, b64};
use ao_su::store::records::{EntryKind, EntryRecord};
use ao_su::store::{Commit, OpenMode, StagedEntry, Store};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::fakes::{FakeGateway, GqlTx};
use support::{Client, MODULE, TestSu, edges, json_field, request};

const MIB: u64 = 1 << 20;
const MIN_CANARY_ANSWERS: usize = 50;

/// The tests of this file measure memory and latency, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The memory of the su child: its resident set now, and its peak since `reset_peak`.
struct Memory {
    pid: u32,
    sampled_peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

/// A `kB` field of `/proc/<pid>/status`; `None` once the process is gone.
fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn status_kib(pid: u32, field: &str) -> u64 {
    read_status_kib(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

impl Memory {
    /// Starts watching: the peak is the larger of `VmHWM` (reset here through
    /// `clear_refs`) and a 5 ms sampling of `VmRSS`, in case the reset is not allowed.
    fn watch(su: &TestSu) -> Self {
        let pid = su.child.id();
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let sampled_peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, stopped) = (sampled_peak.clone(), stop.clone());
        let sampler = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Some(rss) = read_status_kib(pid, "VmRSS:") else {
                    return;
                };
                peak.fetch_max(rss * 1024, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            pid,
            sampled_peak,
            stop,
            sampler: Some(sampler),
        }
    }

    fn rss(&self) -> u64 {
        status_kib(self.pid, "VmRSS:") * 1024
    }

    /// The peak resident set since `watch`.
    fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(sampler) = self.sampler.take() {
            sampler.join().unwrap();
        }
        let high_water = status_kib(self.pid, "VmHWM:") * 1024;
        high_water.max(self.sampled_peak.load(Ordering::SeqCst))
    }
}

/// Keeps asking `GET /timestamp` every 10 ms and records how long each answer took; it
/// answers at least `MIN_CANARY_ANSWERS` times, however short the attack.
struct Canary {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Duration>>,
}

impl Canary {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !stopped.load(Ordering::SeqCst) || latencies.len() < MIN_CANARY_ANSWERS {
                let started = Instant::now();
                let (status, _, _) = request(port, "GET", "/timestamp", &[], &[]);
                latencies.push(started.elapsed());
                assert_eq!(status, 200, "the canary was refused");
                std::thread::sleep(Duration::from_millis(10));
            }
            latencies
        });
        Self { stop, thread }
    }

    /// The 99th percentile latency, and the number of answers it is taken over.
    fn finish(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut latencies = self.thread.join().unwrap();
        latencies.sort();
        let n = latencies.len();
        assert!(n >= MIN_CANARY_ANSWERS, "the canary ran only {n} times");
        (latencies[(n * 99).div_ceil(100) - 1], n)
    }
}

/// How a server dealt with a request whose body it may refuse before reading all of it.
#[derive(Debug)]
enum Outcome {
    Answered(u16, String),
    /// The connection was closed before an answer could be read (a refusal from the header
    /// may close it while the body is still being sent).
    Closed,
}

fn post_raw(port: u16, body: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return Outcome::Closed;
    }
    for chunk in body.chunks(64 * 1024) {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Outcome::Closed;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Outcome::Answered(
        status,
        String::from_utf8_lossy(&raw[split + 4..]).to_string(),
    )
}

/// An RSA-typed item header (signature and owner of zeros) declaring `n_tags` empty tags,
/// with that many tags actually encoded.
fn tag_bomb(n_tags: u64) -> Vec<u8> {
    let mut item = vec![1u8, 0];
    item.resize(2 + 512 + 512, 0);
    item.extend_from_slice(&[0, 0]);
    let mut tags = Vec::new();
    let mut zigzag = n_tags << 1;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            tags.push(byte);
            break;
        }
        tags.push(byte | 0x80);
    }
    tags.resize(tags.len() + 2 * n_tags as usize, 0);
    tags.push(0);
    item.extend_from_slice(&n_tags.to_le_bytes());
    item.extend_from_slice(&(tags.len() as u64).to_le_bytes());
    item.extend_from_slice(&tags);
    item
}

#[test]
fn a_tag_count_bomb_is_refused_from_its_header() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    assert_eq!(su.get("/timestamp").0, 200);

    // The client is told why, from the counts alone.
    let (status, body) = su.post("/", &tag_bomb(5_000_000)[..2000]);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"Too many tags: 5000000 (at most 128)"}"#)
    );
    let mut too_long = tag_bomb(3);
    too_long[2 + 512 + 512 + 2 + 8..][..8].copy_from_slice(&5000u64.to_le_bytes());
    let (status, body) = su.post("/", &too_long);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"Tags take 5000 bytes (at most 4096)"}"#)
    );

    let bomb = Arc::new(tag_bomb(5_000_000));
    assert!(bomb.len() > 9 * MIB as usize && bomb.len() <= 10 * MIB as usize);
    let start = Memory::watch(&su);
    let baseline = start.rss();
    let canary = Canary::start(su.port);
    let port = su.port;
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let bomb = bomb.clone();
            std::thread::spawn(move || post_raw(port, &bomb))
        })
        .collect();
    for sender in senders {
        match sender.join().unwrap() {
            Outcome::Answered(400, body) => assert!(body.contains("Too many tags"), "{body}"),
            Outcome::Closed => {}
            other => panic!("the bomb was not refused: {other:?}"),
        }
    }
    let (p99, n) = canary.finish();
    let growth = start.peak().saturating_sub(baseline);
    eprintln!(
        "tag bomb: RSS growth {} MiB, canary p99 {p99:?} over {n}",
        growth / MIB
    );
    assert!(growth < 256 * MIB, "RSS grew by {} MiB", growth / MIB);
    assert!(p99 < Duration::from_millis(200), "canary p99 {p99:?}");

    let client = Client::new();
    let (process, _) = client.process();
    assert_eq!(su.post("/", &process).0, 200, "the SU still writes");
}

/// A type-3 ao message signed with `personal_sign` over the signing message, as MetaMask
/// and ethers.js sign (low-S, v = 27 or 28).
fn ethereum_message(secret: &[u8; 32], process: &str) -> Vec<u8> {
    let draft = ItemDraft {
        signature_type: SignatureType::ETHEREUM,
        owner: Vec::new(),
        target: Some(b64::decode_id(process).unwrap()),
        anchor: None,
        tags: [
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Message"),
            ("Action", "Transfer"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect(),
        data: b"1000".to_vec(),
    };
    draft.finish_ethereum(secret)
}

/// The same item with `(r, n - s)` and `v` switched between 27 and 28: the signature still
/// recovers the same key, but the bytes, and so the id, differ.
fn malleate(item: &[u8]) -> Vec<u8> {
    use k256::ecdsa::Signature;
    let signature = Signature::from_slice(&item[2..66]).unwrap();
    let (r, s) = signature.split_scalars();
    let twin = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    let mut out = item.to_vec();
    out[2..66].copy_from_slice(&twin.to_bytes());
    out[66] = if out[66] == 27 { 28 } else { 27 };
    out
}

#[test]
fn a_malleated_ethereum_signature_is_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);

    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret).unwrap();
    let message = ethereum_message(&secret, &pid);
    let (status, body) = su.post("/", &message);
    assert_eq!(status, 200, "{body}");
    let id = b64::encode(&sha256(&message[2..67]));
    assert_eq!(json_field(&body, "id"), id.as_str());

    let twin = malleate(&message);
    let twin_id = b64::encode(&sha256(&twin[2..67]));
    assert_ne!(twin_id, id);
    let (status, body) = su.post("/", &twin);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Failed to recover public key"), "{body}");
    assert!(body.contains("not canonical"), "{body}");
    assert_eq!(edges(&su, &pid).len(), 2, "the message is scheduled once");
    let (status, _) = su.get(&format!("/{twin_id}?process-id={pid}"));
    assert_eq!(status, 400);
    // The twin of the twin is the original: its re-POST is the idempotent 200.
    assert_eq!(malleate(&twin), message);
    assert_eq!(su.post("/", &message).0, 200);
    assert_eq!(edges(&su, &pid).len(), 2);
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

#[test]
fn on_boot_values_are_checked_before_any_request() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(100);
    let su = TestSu::start(
        dir.path(),
        &[
            ("ARWEAVE_URL", &gateway.url()),
            ("ARWEAVE_URL_LIST", &gateway.url()),
        ],
    );
    let client = Client::new();
    let slash = format!("{}/", "A".repeat(42));
    let plus = format!("{}+", "A".repeat(42));
    let long = "A".repeat(44);
    let hostile = [
        "../info?x=",
        "../../graphql",
        "?x=1",
        "%2e%2e%2finfo",
        "abc",
        "",
        slash.as_str(),
        plus.as_str(),
        long.as_str(),
    ];
    for value in hostile {
        let (process, _) = process_with(&client, &[("On-Boot", value)]);
        let (status, body) = su.post("/", &process);
        assert_eq!(
            (status, body.as_str()),
            (400, r#"{"error":"Invalid tx id for On-Boot tag"}"#),
            "On-Boot {value:?}"
        );
    }
    assert_eq!(
        gateway.head_count(),
        0,
        "a hostile On-Boot reached the gateway"
    );

    // A well-formed id is asked about: the fake does see requests.
    let unknown = b64::encode(&[7u8; 32]);
    let (process, _) = process_with(&client, &[("On-Boot", &unknown)]);
    assert_eq!(su.post("/", &process).0, 400);
    assert_eq!(gateway.head_count(), 1);
}

#[test]
fn an_exclude_beyond_the_ans104_limits_is_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::start(100);
    let su = TestSu::start(
        dir.path(),
        &[
            ("ARWEAVE_URL", &gateway.url()),
            ("GRAPHQL_URL", &gateway.url()),
        ],
    );
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    let (bytes, tx) = client.item(None, &[("App-Name", "test")], b"payload");
    let (metadata, data) = GqlTx::of_item(&bytes);
    gateway.add_tx(metadata, &data);

    let assign = |exclude: &str| {
        su.post(
            &format!("/?process-id={pid}&assign={tx}&exclude={exclude}"),
            b"",
        )
    };
    // 20,000 values no longer fit in a request head (SU_MAX_HEADER_BYTES): 431.
    let (status, body) = assign(&vec!["x"; 20_000].join(","));
    assert_eq!(status, 431, "{body}");
    let (status, body) = assign(&vec!["x"; 1_000].join(","));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("exclude makes the Assignment too large: Too many tags: 1010 (at most 128)"),
        "{body}"
    );
    // Nine schedule tags and `Message` leave room for 118 values.
    let (status, body) = assign(&vec!["x"; 119].join(","));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Too many tags: 129 (at most 128)"), "{body}");
    let (status, body) = assign(&vec!["y".repeat(2100); 2].join(","));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bytes (at most 4096)"), "{body}");
    assert_eq!(edges(&su, &pid).len(), 1, "nothing was signed");

    let (status, body) = assign(&vec!["x"; 118].join(","));
    assert_eq!(status, 200, "{body}");
    let all = edges(&su, &pid);
    assert_eq!(all.len(), 2);
    let tags = all[1]["node"]["assignment"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 128);
}

/// `GET path` with the body read and dropped as it arrives: status, `Retry-After`, body
/// length, and its first and last bytes.
struct Streamed {
    status: u16,
    retry_after: bool,
    len: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
}

fn get_streamed(port: u16, path: &str) -> Streamed {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let split = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the response head");
        received.extend_from_slice(&chunk[..n]);
    };
    let response_head = String::from_utf8_lossy(&received[..split]).to_lowercase();
    let status = response_head
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut head = received[split + 4..].to_vec();
    let mut len = head.len();
    let mut tail = head.clone();
    head.truncate(256);
    loop {
        let n = stream.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        len += n;
        if head.len() < 256 {
            let more = (256 - head.len()).min(n);
            head.extend_from_slice(&chunk[..more]);
        }
        tail.extend_from_slice(&chunk[..n]);
        let keep = tail.len().saturating_sub(512);
        tail.drain(..keep);
    }
    Streamed {
        status,
        retry_after: response_head.contains("retry-after:"),
        len,
        head,
        tail,
    }
}

#[test]
fn concurrent_huge_pages_stay_within_the_read_budget() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The defaults are what is measured.
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    // 4 MiB of control bytes: each renders as `\u0001`, six bytes of JSON per stored byte.
    let control = "\u{1}".repeat(4 * MIB as usize);
    for _ in 0..40 {
        let (message, _) = client.message(&pid, &control);
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
    }

    let memory = Memory::watch(&su);
    let baseline = memory.rss();
    let canary = Canary::start(su.port);
    let port = su.port;
    let path = format!("/{pid}?process-id={pid}&limit=100");
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let page = get_streamed(port, &path);
                    if page.status == 503 {
                        assert!(page.retry_after, "a 503 without Retry-After");
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                    return page;
                }
                panic!("the page was refused 20 times");
            })
        })
        .collect();
    let pages: Vec<Streamed> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let (p99, n) = canary.finish();
    let growth = memory.peak().saturating_sub(baseline);
    let largest = pages.iter().map(|page| page.len).max().unwrap();
    eprintln!(
        "huge pages: RSS growth {} MiB, largest page {} MiB, canary p99 {p99:?} over {n}",
        growth / MIB,
        largest as u64 / MIB
    );
    for page in &pages {
        assert_eq!(page.status, 200);
        let head = String::from_utf8_lossy(&page.head);
        assert!(
            head.starts_with(r#"{"page_info":{"has_next_page":true},"edges":[{"node":"#),
            "{head}"
        );
        assert!(page.tail.ends_with(b"\"}]}"), "the page is complete JSON");
        assert!(
            page.len as u64 <= 64 * MIB + 25 * MIB,
            "a page passed MAX_READ_MEMORY"
        );
    }
    assert!(growth < 512 * MIB, "RSS grew by {} MiB", growth / MIB);
    assert!(p99 < Duration::from_millis(200), "canary p99 {p99:?}");
}

fn placeholder(
    seed: u64,
    target: Option<[u8; 32]>,
    tags: &[(&str, String)],
) -> (Vec<u8>, [u8; 32]) {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: vec![5; 512],
        target,
        anchor: None,
        tags: tags
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
        data: b"data".to_vec(),
    };
    draft.finish_with_placeholder(seed)
}

fn entry(
    process: [u8; 32],
    nonce: u64,
    kind: EntryKind,
    message: ([u8; 32], Option<Vec<u8>>),
    sequence: u64,
) -> StagedEntry {
    let mut tags = vec![
        ("Process", b64::encode(&process)),
        ("Nonce", nonce.to_string()),
    ];
    if kind != EntryKind::Process {
        tags.push(("Message", b64::encode(&message.0)));
    }
    let (assignment, assignment_id) = placeholder(sequence << 8, None, &tags);
    StagedEntry {
        process,
        nonce,
        dup: 0,
        record: EntryRecord {
            kind,
            timestamp: 1_700_000_000_000 + sequence,
            sequence,
            assignment_id,
            message_id: message.0,
            hash_chain: [0; 32],
            style: Default::default(),
            origin: Default::default(),
        },
        assignment,
        body: message.1,
        dedupe_hashes: Vec::new(),
        upload: false,
    }
}

#[test]
fn get_by_id_finds_the_entry_past_10000_index_rows() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // A first start makes the wallet and records it as the store's signer.
    TestSu::start(dir.path(), &[]).stop();
    let (message_id, process, assigner, assigner_assignment) = {
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        // A process whose id sorts after every process that assigns its message.
        let (process_item, process) = (1..)
            .map(|seed| placeholder(seed, None, &[("Type", "Process".to_string())]))
            .find(|(_, id)| id[0] != 0)
            .unwrap();
        let (message_item, message_id) =
            placeholder(1 << 40, Some(process), &[("Type", "Message".to_string())]);
        let mut entries = vec![
            entry(
                process,
                0,
                EntryKind::Process,
                (process, Some(process_item)),
                1,
            ),
            entry(
                process,
                1,
                EntryKind::Message,
                (message_id, Some(message_item)),
                2,
            ),
        ];
        let mut sequence = 2;
        let mut assigners = Vec::new();
        for n in 1..=10_001u64 {
            let mut assigner = [0u8; 32];
            assigner[24..].copy_from_slice(&n.to_be_bytes());
            sequence += 1;
            let assigned = entry(
                assigner,
                1,
                EntryKind::AssignmentOnly,
                (message_id, None),
                sequence,
            );
            assigners.push((assigner, assigned.record.assignment_id));
            entries.push(assigned);
            if entries.len() == 1000 {
                let commit = Commit {
                    entries: std::mem::take(&mut entries),
                    sync: false,
                    ..Default::default()
                };
                store.write(&commit).unwrap();
            }
        }
        let commit = Commit {
            entries,
            ..Default::default()
        };
        store.write(&commit).unwrap();
        assert!(store.find_id(&message_id, None, usize::MAX).unwrap().len() > 10_000);
        let (assigner, assignment) = assigners[9_000];
        (message_id, process, assigner, assignment)
    };

    let su = TestSu::start(dir.path(), &[]);
    let (message, process, assigner) = (
        b64::encode(&message_id),
        b64::encode(&process),
        b64::encode(&assigner),
    );
    for path in [
        format!("/{message}"),
        format!("/{message}?process-id={process}"),
    ] {
        let (status, body) = su.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        let node: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(node["message"]["id"], message.as_str(), "{path}");
    }
    // Where the message is only assigned, it is not found (DECISIONS 10) ...
    let (status, body) = su.get(&format!("/{message}?process-id={assigner}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Message or Process not found"), "{body}");
    // ... but the assignment is, by its own id.
    let assignment = b64::encode(&assigner_assignment);
    let (status, body) = su.get(&format!("/{assignment}"));
    assert_eq!(status, 200, "{body}");
    let node: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(node["assignment"]["id"], assignment.as_str());
    assert_eq!(node["message"], serde_json::Value::Null);
}

/// An Arweave gateway for `/info` and `/raw/{id}` whose data is streamed from nothing: `/raw`
/// of an id in `sizes` sends that many zero bytes (with a `Content-Length` when `declared`,
/// else until the client hangs up), slowly when `drip` is set. It counts the bytes it
/// managed to send and the most `/raw` requests it served at once.
struct RawGateway {
    port: u16,
    sent: Arc<AtomicU64>,
    most_in_flight: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct RawBody {
    size: u64,
    declared: bool,
    drip: bool,
}

impl RawGateway {
    fn start(bodies: Vec<(String, RawBody)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(bodies);
        let (total, now, most) = (sent.clone(), in_flight, most_in_flight.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (bodies, total, now, most) =
                    (bodies.clone(), total.clone(), now.clone(), most.clone());
                std::thread::spawn(move || serve_raw(stream, &bodies, &total, &now, &most));
            }
        });
        Self {
            port,
            sent,
            most_in_flight,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve_raw(
    mut stream: TcpStream,
    bodies: &[(String, RawBody)],
    sent: &AtomicU64,
    in_flight: &AtomicUsize,
    most_in_flight: &AtomicUsize,
) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request).to_string();
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    if path == "/info" {
        let body = r#"{"network":"arweave.N.1","height":100,"current":"x"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let Some((_, body)) = bodies.iter().find(|(id, _)| path == format!("/raw/{id}")) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    most_in_flight.fetch_max(now, Ordering::SeqCst);
    let length = if body.declared {
        format!("Content-Length: {}\r\n", body.size)
    } else {
        String::new()
    };
    let head = format!("HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n");
    let mut counted = true;
    if stream.write_all(head.as_bytes()).is_ok() {
        let chunk = vec![0u8; if body.drip { 1024 } else { 64 * 1024 }];
        let mut left = body.size;
        while left > 0 {
            let n = left.min(chunk.len() as u64);
            if n == left {
                // Done before the client can have it all: a download that starts once this
                // one has ended is never counted with it.
                in_flight.fetch_sub(1, Ordering::SeqCst);
                counted = false;
            }
            if stream.write_all(&chunk[..n as usize]).is_err() {
                break;
            }
            sent.fetch_add(n, Ordering::SeqCst);
            left -= n;
            if body.drip && left > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    if counted {
        in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn raw_downloads_are_capped_streamed_and_bounded() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let ids: Vec<String> = (0..5).map(|n| b64::encode(&[n + 1; 32])).collect();
    let huge = |declared| RawBody {
        size: 4 << 30,
        declared,
        drip: false,
    };
    let small = RawBody {
        size: 10 * 1024,
        declared: true,
        drip: true,
    };
    let raw = RawGateway::start(vec![
        (ids[0].clone(), huge(true)),
        (ids[1].clone(), huge(false)),
        (ids[2].clone(), small.clone()),
        (ids[3].clone(), small.clone()),
        (ids[4].clone(), small),
    ]);
    let graphql = FakeGateway::start(100);
    for id in &ids {
        // Distinct tags, so the equal data gives distinct dedupe hashes.
        let tx = GqlTx {
            id: id.clone(),
            anchor: None,
            recipient: String::new(),
            tags: vec![("Name".to_string(), id.clone())],
        };
        graphql.add_tx(tx, b"");
    }
    let su = TestSu::start(
        dir.path(),
        &[
            ("ARWEAVE_URL", &raw.url()),
            ("GRAPHQL_URL", &graphql.url()),
            ("RAW_DOWNLOAD_MAX_BYTES", "1048576"),
            ("RAW_DOWNLOAD_CONCURRENCY", "1"),
        ],
    );
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);

    let memory = Memory::watch(&su);
    let baseline = memory.rss();
    for id in &ids[..2] {
        let (status, body) = su.post(&format!("/?process-id={pid}&assign={id}"), b"");
        assert_eq!(
            (status, body.as_str()),
            (
                400,
                r#"{"error":"Transaction data is larger than 1048576 bytes"}"#
            )
        );
    }
    let growth = memory.peak().saturating_sub(baseline);
    let sent = raw.sent.load(Ordering::SeqCst);
    eprintln!(
        "raw over the cap: {} MiB sent of 4096, RSS growth {} MiB",
        sent / MIB,
        growth / MIB
    );
    assert!(sent < 256 * MIB, "the gateway sent {} MiB", sent / MIB);
    assert!(growth < 64 * MIB, "RSS grew by {} MiB", growth / MIB);

    // Three slow downloads at once, with one slot: they take turns, and all succeed.
    let port = su.port;
    let posts: Vec<_> = ids[2..]
        .iter()
        .map(|id| {
            let path = format!("/?process-id={pid}&assign={id}");
            std::thread::spawn(move || request(port, "POST", &path, b"", &[]))
        })
        .collect();
    for post in posts {
        let (status, body, _) = post.join().unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(raw.most_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(edges(&su, &pid).len(), 4);
}
