//! Fake upstreams on 127.0.0.1:0 speaking the real wire formats (PROTOCOL 10.1–10.4): an
//! Arweave gateway with GraphQL, a bundler (+ cache) whose behaviour a test can change, and
//! an allow-list server whose answer a test can change or make fail.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One parsed HTTP/1.1 request.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// What a handler answers: a status, a body and an optional `Location`, or `None` to close
/// without a response.
type Reply = Option<(u16, Vec<u8>, Option<String>)>;
type Handler = Arc<dyn Fn(&HttpRequest) -> Reply + Send + Sync>;

/// A listener served by a background thread; stops accepting when dropped.
pub struct FakeServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    fn start(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve_connection(stream, &handler));
            }
        });
        Self { port, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(stream: &mut TcpStream) -> Option<HttpRequest> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Some(HttpRequest { method, path, body })
}

fn serve_connection(mut stream: TcpStream, handler: &Handler) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let Some((status, body, location)) = handler(&request) else {
        return; // dropping the stream closes it without a response
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let location = location.map_or(String::new(), |to| format!("Location: {to}\r\n"));
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{location}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if request.method != "HEAD" {
        out.extend_from_slice(&body);
    }
    let _ = stream.write_all(&out);
    let _ = stream.flush();
}

/// A transaction as the fake GraphQL endpoint describes it.
#[derive(Clone, Debug)]
pub struct GqlTx {
    pub id: String,
    pub anchor: Option<String>,
    pub recipient: String,
    pub tags: Vec<(String, String)>,
}

impl GqlTx {
    /// How GraphQL describes a signed item, and its `/raw` data.
    pub fn of_item(bytes: &[u8]) -> (Self, Vec<u8>) {
        let item = ao_su::ans104::DataItem::parse(bytes).expect("a data item");
        let encode = ao_su::ans104::b64::encode;
        let tx = Self {
            id: encode(&item.id()),
            anchor: item.anchor.map(encode),
            recipient: item.target.map(encode).unwrap_or_default(),
            tags: item
                .tags
                .iter()
                .map(|t| (t.name.to_string(), t.value.to_string()))
                .collect(),
        };
        (tx, item.data.to_vec())
    }
}

/// A transaction GraphQL finds by owner and tags (`transactions(owners: [...], tags: [...])`),
/// such as a Scheduler-Location record.
#[derive(Clone, Debug)]
pub struct OwnedTx {
    /// The owner's address, base64url.
    pub owner: String,
    pub id: String,
    pub tags: Vec<(String, String)>,
    /// `(height, timestamp in Unix seconds)` of its block; `None` while not mined.
    pub block: Option<(u64, u64)>,
}

impl OwnedTx {
    /// How GraphQL describes a signed item once it is in `block`.
    pub fn of_item(bytes: &[u8], block: Option<(u64, u64)>) -> Self {
        let item = ao_su::ans104::DataItem::parse(bytes).expect("a data item");
        let encode = ao_su::ans104::b64::encode;
        Self {
            owner: encode(&item.owner_address()),
            id: encode(&item.id()),
            tags: item
                .tags
                .iter()
                .map(|t| (t.name.to_string(), t.value.to_string()))
                .collect(),
            block,
        }
    }
}

#[derive(Default)]
pub struct GatewayState {
    pub height: u64,
    pub confirmations: HashMap<String, u64>,
    pub raw: HashMap<String, Vec<u8>>,
    pub existing: HashSet<String>,
    pub txs: HashMap<String, GqlTx>,
    pub heads: usize,
    pub owned: Vec<OwnedTx>,
    /// GraphQL queries by owner answered so far.
    pub owner_queries: usize,
}

/// `GET /info`, `GET /tx/{id}/status`, `GET /raw/{id}`, `HEAD /{id}` and `POST /graphql`.
pub struct FakeGateway {
    pub server: FakeServer,
    pub state: Arc<Mutex<GatewayState>>,
}

fn reply(status: u16, body: &[u8]) -> Reply {
    Some((status, body.to_vec(), None))
}

fn json(value: serde_json::Value) -> Reply {
    reply(200, value.to_string().as_bytes())
}

fn not_found() -> Reply {
    reply(404, b"Not Found")
}

fn graphql(state: &mut GatewayState, body: &[u8]) -> Reply {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let query = request["query"].as_str()?;
    if query.contains("owners: [") {
        return graphql_by_owner(state, query);
    }
    let list = query.split("ids: [").nth(1)?.split(']').next()?;
    let ids = list.split(',').map(|id| id.trim().trim_matches('"'));
    let edges: Vec<_> = ids.filter_map(|id| state.txs.get(id)).map(|tx| serde_json::json!({"node": {
            "id": tx.id,
            "signature": "c2lnbmF0dXJl",
            "anchor": tx.anchor,
            "owner": {"address": "b3duZXI", "key": "a2V5"},
            "tags": tx.tags.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "recipient": tx.recipient,
        }})).collect();
    json(serde_json::json!({"data": {"transactions": {"edges": edges}}}))
}

/// The quoted strings of a GraphQL list literal (`["a", "b"]` after `opening`).
fn quoted_list(query: &str, opening: &str) -> Vec<String> {
    let Some(rest) = query.split(opening).nth(1) else {
        return Vec::new();
    };
    let list = rest.split(']').next().unwrap_or("");
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `transactions(owners: [...], tags: [{name: "N", values: ["V"]}, ...], sort: HEIGHT_DESC,
/// first: N)`: unmined transactions first, then by height, newest first. A query without
/// `sort: HEIGHT_DESC` is refused, so a client relying on a gateway's default order fails.
fn graphql_by_owner(state: &mut GatewayState, query: &str) -> Reply {
    state.owner_queries += 1;
    if !query.contains("sort: HEIGHT_DESC") {
        return reply(
            400,
            b"{\"errors\":[{\"message\":\"expected sort: HEIGHT_DESC\"}]}",
        );
    }
    let owners = quoted_list(query, "owners: [");
    let filters: Vec<(String, String)> = query
        .split("{name: ")
        .skip(1)
        .filter_map(|filter| {
            let name = filter.split('"').nth(1)?;
            let value = quoted_list(filter, "values: [").into_iter().next()?;
            Some((name.to_string(), value))
        })
        .collect();
    let first: usize = query
        .split("first: ")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(10);
    let mut found: Vec<&OwnedTx> = state
        .owned
        .iter()
        .filter(|tx| owners.contains(&tx.owner))
        .filter(|tx| filters.iter().all(|filter| tx.tags.contains(filter)))
        .collect();
    found.sort_by_key(|tx| std::cmp::Reverse(tx.block.map_or(u64::MAX, |(height, _)| height)));
    let edges: Vec<_> = found.into_iter().take(first).map(|tx| serde_json::json!({"node": {
            "id": tx.id,
            "tags": tx.tags.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "block": tx.block.map(|(height, timestamp)| serde_json::json!({"height": height, "timestamp": timestamp})),
        }})).collect();
    json(serde_json::json!({"data": {"transactions": {"edges": edges}}}))
}

impl FakeGateway {
    pub fn start(height: u64) -> Self {
        let state = Arc::new(Mutex::new(GatewayState {
            height,
            ..GatewayState::default()
        }));
        let shared = state.clone();
        let server = FakeServer::start(Arc::new(move |request: &HttpRequest| {
            let mut state = shared.lock().unwrap();
            let path = request.path.as_str();
            match (request.method.as_str(), path) {
                ("GET", "/info") => json(serde_json::json!({
                    "network": "arweave.N.1", "height": state.height, "current": "x"
                })),
                ("POST", "/graphql") => graphql(&mut state, &request.body),
                ("GET", _) if path.starts_with("/tx/") && path.ends_with("/status") => {
                    let id = &path["/tx/".len()..path.len() - "/status".len()];
                    match state.confirmations.get(id) {
                        Some(n) => json(serde_json::json!({
                            "block_height": 1, "number_of_confirmations": n
                        })),
                        None => not_found(),
                    }
                }
                ("GET", _) if path.starts_with("/raw/") => match state.raw.get(&path[5..]) {
                    Some(data) => reply(200, data),
                    None => not_found(),
                },
                ("HEAD", _) => {
                    state.heads += 1;
                    if state.existing.contains(&path[1..]) {
                        reply(200, b"")
                    } else {
                        not_found()
                    }
                }
                _ => not_found(),
            }
        }));
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn set_height(&self, height: u64) {
        self.state.lock().unwrap().height = height;
    }

    pub fn set_confirmations(&self, id: &str, confirmations: u64) {
        let mut state = self.state.lock().unwrap();
        state.confirmations.insert(id.to_string(), confirmations);
    }

    /// A transaction GraphQL knows, with its `/raw` data.
    pub fn add_tx(&self, tx: GqlTx, data: &[u8]) {
        let mut state = self.state.lock().unwrap();
        state.raw.insert(tx.id.clone(), data.to_vec());
        state.txs.insert(tx.id.clone(), tx);
    }

    /// An id GraphQL knows, with no data.
    pub fn add_known(&self, id: &str) {
        let tx = GqlTx {
            id: id.to_string(),
            anchor: None,
            recipient: String::new(),
            tags: Vec::new(),
        };
        self.add_tx(tx, b"");
    }

    /// An id `HEAD /{id}` answers 200 for.
    pub fn add_existing(&self, id: &str) {
        self.state.lock().unwrap().existing.insert(id.to_string());
    }

    pub fn head_count(&self) -> usize {
        self.state.lock().unwrap().heads
    }

    /// A transaction GraphQL finds by its owner and tags.
    pub fn add_owned(&self, tx: OwnedTx) {
        self.state.lock().unwrap().owned.push(tx);
    }

    /// GraphQL queries by owner answered so far.
    pub fn owner_queries(&self) -> usize {
        self.state.lock().unwrap().owner_queries
    }
}

/// How the fake bundler answers `POST /tx/arweave`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail,
    Slow(u64),
    Down,
    /// Answer this status (e.g. 402, 503) without accepting.
    Refuse(u16),
    /// Answer this 3xx status with this `Location`.
    Redirect(u16, String),
}

/// One scripted answer, used (in order) before the mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    Redirect(u16, String),
}

#[derive(Default)]
struct Received {
    bundler: Vec<(String, Instant)>,
    /// The bytes of each acknowledged item, in arrival order.
    bundler_items: Vec<Vec<u8>>,
    cache: Vec<String>,
}

#[derive(Default)]
struct Behaviour {
    script: VecDeque<Answer>,
    /// Per item id: sleep this long before accepting it.
    slow: HashMap<String, u64>,
}

/// `POST /tx/arweave` (bundler) and `POST /id?codec-device=ans104@1.0` (cache).
pub struct FakeBundler {
    pub server: FakeServer,
    mode: Arc<Mutex<Mode>>,
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Received>>,
    attempts: Arc<AtomicUsize>,
}

fn item_id(body: &[u8]) -> Option<String> {
    let item = ao_su::ans104::DataItem::parse(body).ok()?;
    Some(ao_su::ans104::b64::encode(&item.id()))
}

fn answer_bundler(
    mode: &Mutex<Mode>,
    behaviour: &Mutex<Behaviour>,
    received: &Mutex<Received>,
    body: &[u8],
) -> Reply {
    let scripted = behaviour.lock().unwrap().script.pop_front();
    match scripted {
        Some(Answer::Status(status)) => return reply(status, b"{\"error\":\"scripted\"}"),
        Some(Answer::Redirect(status, to)) => return Some((status, Vec::new(), Some(to))),
        None => {}
    }
    let current = mode.lock().unwrap().clone();
    match current {
        Mode::Down => return None,
        Mode::Fail => return reply(500, b"{\"error\":\"down\"}"),
        Mode::Refuse(status) => return reply(status, b"{\"error\":\"refused\"}"),
        Mode::Redirect(status, to) => return Some((status, Vec::new(), Some(to))),
        Mode::Slow(ms) => std::thread::sleep(Duration::from_millis(ms)),
        Mode::Ok => {}
    }
    let Some(id) = item_id(body) else {
        return reply(400, b"{\"error\":\"bad item\"}");
    };
    let slow = behaviour.lock().unwrap().slow.get(&id).copied();
    if let Some(ms) = slow {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let mut received = received.lock().unwrap();
    received.bundler.push((id.clone(), Instant::now()));
    received.bundler_items.push(body.to_vec());
    json(serde_json::json!({"id": id}))
}

impl FakeBundler {
    pub fn start(mode: Mode) -> Self {
        let mode = Arc::new(Mutex::new(mode));
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let received = Arc::new(Mutex::new(Received::default()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (shared_mode, shared_behaviour, shared_received, counter) = (
            mode.clone(),
            behaviour.clone(),
            received.clone(),
            attempts.clone(),
        );
        let server = FakeServer::start(Arc::new(move |request: &HttpRequest| {
            match (request.method.as_str(), request.path.as_str()) {
                ("POST", "/tx/arweave") => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    answer_bundler(
                        &shared_mode,
                        &shared_behaviour,
                        &shared_received,
                        &request.body,
                    )
                }
                ("POST", "/id?codec-device=ans104@1.0") => {
                    let Some(id) = item_id(&request.body) else {
                        return reply(400, b"{\"error\":\"bad item\"}");
                    };
                    shared_received.lock().unwrap().cache.push(id);
                    reply(200, b"{}")
                }
                _ => not_found(),
            }
        }));
        Self {
            server,
            mode,
            behaviour,
            received,
            attempts,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Answers used, in order, before the mode applies again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.behaviour.lock().unwrap().script.extend(answers);
    }

    /// Makes the bundler take `ms` before accepting this item.
    pub fn set_slow(&self, id: &str, ms: u64) {
        let mut behaviour = self.behaviour.lock().unwrap();
        behaviour.slow.insert(id.to_string(), ms);
    }

    /// Ids the bundler acknowledged, in arrival order (repeats kept).
    pub fn received_ids(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received.bundler.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The bytes of every acknowledged item, in arrival order (repeats kept).
    pub fn received_items(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().bundler_items.clone()
    }

    /// When each acknowledged id was accepted, in arrival order.
    pub fn received_at(&self) -> Vec<(String, Instant)> {
        self.received.lock().unwrap().bundler.clone()
    }

    /// Ids the cache endpoint received.
    pub fn cache_ids(&self) -> Vec<String> {
        self.received.lock().unwrap().cache.clone()
    }

    /// Every `POST /tx/arweave` connection that reached the handler, whatever the mode.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

/// How the fake allow-list server answers `GET /list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListAnswer {
    /// 200 with this body (JSON, or anything a test wants the SU to refuse).
    Body(String),
    /// This status, with a JSON error body.
    Fail(u16),
    /// Close the connection without an answer.
    Down,
}

/// An allow-list URL (`IP_WHITELIST_URL`, `PROCESS_WHITELIST_URL`) whose answer a test sets.
pub struct FakeAllowList {
    pub server: FakeServer,
    answer: Arc<Mutex<ListAnswer>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeAllowList {
    pub fn start(answer: ListAnswer) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (answer.clone(), fetches.clone());
        let server = FakeServer::start(Arc::new(move |request: &HttpRequest| {
            if (request.method.as_str(), request.path.as_str()) != ("GET", "/list") {
                return not_found();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            match shared.lock().unwrap().clone() {
                ListAnswer::Body(body) => reply(200, body.as_bytes()),
                ListAnswer::Fail(status) => reply(status, b"{\"error\":\"list unavailable\"}"),
                ListAnswer::Down => None,
            }
        }));
        Self {
            server,
            answer,
            fetches,
        }
    }

    /// A JSON list of IPs, as `IP_WHITELIST_URL` serves it.
    pub fn ips(ips: &[&str]) -> ListAnswer {
        ListAnswer::Body(serde_json::json!(ips).to_string())
    }

    /// A process allow-list (PROTOCOL 8.2): `(process id, su url, read_only)` entries.
    pub fn processes(entries: &[(&str, &str, Option<bool>)]) -> ListAnswer {
        let mut processes = serde_json::Map::new();
        let mut sus = serde_json::Map::new();
        for (id, su, read_only) in entries {
            let mut entry = serde_json::json!({"su": su, "db_name": "su_a"});
            if let Some(read_only) = read_only {
                entry["read_only"] = serde_json::json!(read_only);
            }
            processes.insert(id.to_string(), entry);
            sus.insert(
                su.to_string(),
                serde_json::json!({"dbs": [{"db_name": "su_a", "efs_name": "efs_a"}]}),
            );
        }
        ListAnswer::Body(serde_json::json!({"sus": sus, "processes": processes}).to_string())
    }

    pub fn url(&self) -> String {
        format!("{}/list", self.server.url())
    }

    pub fn set(&self, answer: ListAnswer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// `GET /list` requests so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Waits until the SU has fetched, and applied, the answer set now: the fetch after the
    /// next one starts only once that one was handled, since the SU refreshes one at a time.
    pub fn wait_for_refresh(&self) {
        let target = self.fetches() + 2;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.fetches() < target {
            assert!(
                Instant::now() < deadline,
                "the SU did not fetch its allow-list again"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
