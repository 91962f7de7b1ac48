//! A running SU as a source of history (`su import-su`): one process's schedule, read over
//! HTTP in nonce-mode pages with `show-anchor` (PROTOCOL 5.2), each node rebuilt into its
//! items (`rebuild`) and handed to the pipeline in the stored-wrapper shape it reads. Items
//! whose JSON lost bytes are completed from the gateway when one is configured; the first
//! entry that still does not rebuild is reported and ends the process there, so a later
//! top-up continues from it and the import never leaves a gap of its own.

use super::cursor::RowKey;
use super::rebuild::{self, Fetched, ItemParts, NodeJson, PageJson, RebuiltNode, Role};
use super::source::{Source, SourceError, SourceRow};
use crate::ans104::b64;
use crate::upstream::Gateway;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The source kind recorded in the cursor.
pub const KIND: u8 = 3;

/// The most JSON one page may take; a larger page is asked again with half the limit.
const PAGE_MAX_BYTES: usize = 16 << 20;
/// The most JSON a page of one entry may take (one large message, escaped).
const ENTRY_MAX_BYTES: usize = 128 << 20;
/// Attempts per request (network errors and 5xx are retried), and the first pause.
const ATTEMPTS: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The timeout of one request to the SU.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the SU could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SuError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: unexpected JSON: {source}")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: one entry's JSON is larger than {ENTRY_MAX_BYTES} bytes")]
    TooLarge { url: String },
    #[error("starting the HTTP client: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("{0}")]
    Page(String),
}

/// What a GET answered: its status and (bounded) body.
enum Answer {
    Ok(Vec<u8>),
    Status(u16, Vec<u8>),
    TooLarge,
}

/// A blocking client of one SU (and of the gateway), on a small runtime of its own.
#[derive(Debug)]
pub struct SuClient {
    base: String,
    http: reqwest::Client,
    gateway: Option<Gateway>,
    runtime: tokio::runtime::Runtime,
}

impl SuClient {
    /// A client of the SU at `base` (`http://host:port`), with the gateway that completes
    /// what the JSON loses, if any.
    pub fn new(base: &str, gateway: Option<Gateway>) -> Result<Self, SuError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = base.to_string();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| SuError::Http { url, source })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            gateway,
            runtime,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET with retries of network errors and 5xx; the body is read up to `max` bytes.
    fn get(&self, path: &str, max: usize) -> Result<Answer, SuError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 1;
        loop {
            let result = self.runtime.block_on(async {
                let mut response = self.http.get(&url).send().await?;
                let status = response.status();
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > max {
                        return Ok(Answer::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok::<_, reqwest::Error>(if status.is_success() {
                    Answer::Ok(body)
                } else {
                    Answer::Status(status.as_u16(), body)
                })
            });
            let retry = match &result {
                Ok(Answer::Status(status, _)) => *status >= 500,
                Ok(_) => false,
                Err(error) => !error.is_builder(),
            };
            if retry && attempt < ATTEMPTS {
                tracing::warn!(%url, attempt, "reading the SU failed; trying again");
                std::thread::sleep(RETRY_PAUSE * 2u32.pow(attempt - 1));
                attempt += 1;
                continue;
            }
            return result.map_err(|source| SuError::Http { url, source });
        }
    }

    /// GET that must answer 2xx with JSON.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> Result<Option<T>, SuError> {
        let url = format!("{}{path}", self.base);
        match self.get(path, max)? {
            Answer::Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|source| SuError::Json { url, source }),
            Answer::TooLarge => Ok(None),
            Answer::Status(status, body) => Err(SuError::Status {
                url,
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }

    /// The SU's wallet address (`GET /`).
    pub fn address(&self) -> Result<String, SuError> {
        #[derive(serde::Deserialize)]
        struct Info {
            address: String,
        }
        let info: Option<Info> = self.get_json("/", 1 << 20)?;
        info.map(|info| info.address)
            .ok_or_else(|| SuError::Page("GET / answered too much".to_string()))
    }

    /// Whether the SU holds `process` (`GET /processes/{id}`: 200, or 400 not found).
    pub fn holds(&self, process: &str) -> Result<bool, SuError> {
        let path = format!("/processes/{process}");
        match self.get(&path, 16 << 20)? {
            Answer::Ok(_) | Answer::TooLarge => Ok(true),
            Answer::Status(400 | 404, _) => Ok(false),
            Answer::Status(status, body) => Err(SuError::Status {
                url: format!("{}{path}", self.base),
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }

    /// One nonce-mode page after `from_nonce` (exclusive; -1 includes the process node), of
    /// at most `limit` entries: fewer when a page's JSON would pass `PAGE_MAX_BYTES`.
    pub fn page(&self, process: &str, from_nonce: i64, limit: usize) -> Result<PageJson, SuError> {
        let mut limit = limit.max(1);
        loop {
            let path = format!(
                "/{process}?process-id={process}&from-nonce={from_nonce}&limit={limit}\
                 &show-anchor=true"
            );
            let max = if limit == 1 {
                ENTRY_MAX_BYTES
            } else {
                PAGE_MAX_BYTES
            };
            match self.get_json(&path, max)? {
                Some(page) => return Ok(page),
                None if limit > 1 => limit /= 2,
                None => {
                    return Err(SuError::TooLarge {
                        url: format!("{}{path}", self.base),
                    });
                }
            }
        }
    }

    /// What the gateway has of an item whose JSON may have lost its data or anchor: `/raw`
    /// for the data, GraphQL for the anchor. Nothing without a gateway.
    pub fn fetch(&self, parts: &ItemParts) -> Fetched {
        let mut fetched = Fetched::default();
        let Some(gateway) = &self.gateway else {
            return fetched;
        };
        let id = b64::encode(&parts.id);
        if !matches!(parts.data, rebuild::Known::Exact(_)) {
            match self.runtime.block_on(gateway.raw(&id)) {
                Ok(data) => fetched.data = Some(data),
                Err(error) => tracing::warn!(%id, %error, "the gateway has no data for the item"),
            }
        }
        if !matches!(parts.anchor, rebuild::Known::Exact(_)) {
            match self.runtime.block_on(gateway.transaction(&id)) {
                Ok(transaction) => {
                    fetched.anchor = Some(
                        transaction
                            .anchor
                            .as_deref()
                            .filter(|anchor| !anchor.is_empty())
                            .and_then(b64::decode_id),
                    );
                }
                Err(error) => tracing::warn!(%id, %error, "GraphQL has no anchor for the item"),
            }
        }
        fetched
    }
}

/// One process of a running SU, as a `Source`.
pub struct SuSource {
    client: Arc<SuClient>,
    process: String,
    /// The process node's rows, for a process the store does not hold yet.
    process_row: Option<SourceRow>,
    /// One line per entry that was not imported, for the caller to report and count.
    problems: Arc<Mutex<Vec<String>>>,
    threads: usize,
    /// The last page said there is nothing after this key.
    exhausted: Option<RowKey>,
    /// An entry did not rebuild: nothing after it is read.
    stopped: bool,
}

/// What the SU holds at the start of a process's schedule.
#[derive(Debug)]
pub enum ProcessNode {
    /// A process with its own assignment (P2), rebuilt and verified: the pipeline's row.
    Assigned(SourceRow),
    /// A legacy process (P1): its SU wrapper is never served, so it cannot be rebuilt.
    Legacy,
}

/// The assignment's `Nonce` tag.
fn nonce_of(node: &NodeJson) -> Option<i64> {
    node.assignment.tag("Nonce")?.parse().ok()
}

/// Whether a node is the process's own (nonce 0 of a P2 process): its message is the process
/// and its assignment names no message.
fn is_process_node(node: &NodeJson, process: &str) -> bool {
    node.message.as_ref().is_some_and(|item| item.id == process)
        && node.assignment.tag("Message").is_none()
        && !rebuild::is_legacy_wrapper(&node.assignment)
}

impl SuSource {
    pub fn new(client: Arc<SuClient>, process: &str, problems: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            client,
            process: process.to_string(),
            process_row: None,
            problems,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            exhausted: None,
            stopped: false,
        }
    }

    /// Reads and rebuilds the process node (a process the store does not hold yet); the
    /// pipeline then gets it from `process`.
    pub fn read_process_node(&mut self) -> Result<ProcessNode, ProcessNodeError> {
        if !self.client.holds(&self.process)? {
            return Err(ProcessNodeError::NotHeld);
        }
        let page = self.client.page(&self.process, -1, 1)?;
        // A process the SU holds whose schedule does not start with its own node is legacy.
        let Some(edge) = page
            .edges
            .first()
            .filter(|edge| is_process_node(&edge.node, &self.process))
        else {
            return Ok(ProcessNode::Legacy);
        };
        let client = self.client.clone();
        let node = rebuild::rebuild_node(&edge.node, Role::Process, &mut |parts: &ItemParts| {
            client.fetch(parts)
        })?;
        let row = SourceRow {
            wrapper: rebuild::wrapper_of(&node),
            ..SourceRow::default()
        };
        self.process_row = Some(row.clone());
        Ok(ProcessNode::Assigned(row))
    }

    fn report(&mut self, line: String) {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }

    /// The entries of a page after `after`, with their keys, in (nonce, timestamp) order (a
    /// reference Postgres store serves a page in timestamp order): the duplicate rank of an
    /// entry counts the entries of the same nonce before it, which is the same on every page
    /// because a page is asked from the nonce before, so it starts at a nonce's first entry.
    fn entries_of(
        &self,
        page: PageJson,
        after: Option<RowKey>,
    ) -> Result<Vec<(RowKey, NodeJson)>, SuError> {
        let mut entries = Vec::with_capacity(page.edges.len());
        for edge in page.edges {
            if is_process_node(&edge.node, &self.process) {
                continue;
            }
            let nonce = nonce_of(&edge.node).ok_or_else(|| {
                SuError::Page(format!(
                    "process {}: assignment {} has no valid Nonce tag",
                    self.process, edge.node.assignment.id
                ))
            })?;
            let timestamp = edge
                .node
                .assignment
                .tag("Timestamp")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            let key = RowKey {
                nonce,
                timestamp,
                row: 0,
            };
            entries.push((key, edge.node));
        }
        entries.sort_by_key(|(key, _)| (key.nonce, key.timestamp));
        let mut previous: Option<RowKey> = None;
        for (key, _) in &mut entries {
            if let Some(before) = previous
                && before.nonce == key.nonce
            {
                key.row = before.row + 1;
            }
            previous = Some(*key);
        }
        entries.retain(|(key, _)| {
            after.is_none_or(|after| (key.nonce, key.row) > (after.nonce, after.row))
        });
        Ok(entries)
    }

    /// Rebuilds entries on every core (no gateway there: its calls run on this thread).
    fn rebuild_all(
        &self,
        entries: &[(RowKey, NodeJson)],
    ) -> Vec<Result<RebuiltNode, rebuild::NodeError>> {
        let one = |(_, node): &(RowKey, NodeJson)| {
            rebuild::rebuild_node(node, Role::Message, &mut |_: &ItemParts| Fetched::default())
        };
        let chunk = entries.len().div_ceil(self.threads.max(1)).max(1);
        if entries.len() <= chunk {
            return entries.iter().map(one).collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(chunk)
                .map(|part| {
                    let handle = scope.spawn(move || part.iter().map(one).collect::<Vec<_>>());
                    (part, handle)
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|(part, handle)| {
                    handle.join().unwrap_or_else(|_| {
                        part.iter()
                            .map(|(_, node)| {
                                Err(rebuild::NodeError {
                                    which: "entry",
                                    id: node.assignment.id.clone(),
                                    error: rebuild::RebuildError::Panicked,
                                })
                            })
                            .collect()
                    })
                })
                .collect()
        })
    }
}

/// Why a process node could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessNodeError {
    #[error(transparent)]
    Su(#[from] SuError),
    #[error("the SU does not hold it")]
    NotHeld,
    #[error("its process node does not rebuild: {0}")]
    Rebuild(#[from] rebuild::NodeError),
}

impl Source for SuSource {
    fn kind(&self) -> u8 {
        KIND
    }

    /// The process alone (not the URL), so a top-up or a resumed run may read another SU
    /// that serves the same schedule.
    fn identity(&self) -> String {
        format!("su-process:{}", self.process)
    }

    fn total_entries(&mut self) -> Result<Option<u64>, SourceError> {
        Ok(None)
    }

    fn processes_after(
        &mut self,
        after: Option<&str>,
        _max: usize,
    ) -> Result<Vec<String>, SourceError> {
        Ok(after
            .is_none_or(|after| after < self.process.as_str())
            .then(|| self.process.clone())
            .into_iter()
            .collect())
    }

    fn process(&mut self, _process: &str) -> Result<Option<SourceRow>, SourceError> {
        Ok(self.process_row.take())
    }

    fn entries_after(
        &mut self,
        process: &str,
        after: Option<RowKey>,
        max: usize,
    ) -> Result<Vec<SourceRow>, SourceError> {
        if self.stopped || (after.is_some() && after == self.exhausted) {
            return Ok(Vec::new());
        }
        let from_nonce = after.map_or(-1, |after| after.nonce - 1);
        let page = self.client.page(process, from_nonce, max)?;
        let more = page.page_info.has_next_page;
        let entries = self.entries_of(page, after)?;
        if entries.is_empty() && more {
            return Err(SuError::Page(format!(
                "process {process}: a page after nonce {from_nonce} holds nothing new; more \
                 duplicates of one nonce than a page holds?"
            ))
            .into());
        }
        if !more {
            self.exhausted = entries.last().map(|(key, _)| *key);
        }
        let rebuilt = self.rebuild_all(&entries);
        let mut rows = Vec::with_capacity(entries.len());
        for ((key, node), result) in entries.iter().zip(rebuilt) {
            let result = match result {
                Err(error) if error.lost() && self.client.gateway.is_some() => {
                    let client = self.client.clone();
                    rebuild::rebuild_node(node, Role::Message, &mut |parts: &ItemParts| {
                        client.fetch(parts)
                    })
                }
                other => other,
            };
            match result {
                Ok(node) => rows.push(SourceRow {
                    key: Some(*key),
                    wrapper: rebuild::wrapper_of(&node),
                    nonce: Some(key.nonce),
                    ..SourceRow::default()
                }),
                Err(error) => {
                    self.stopped = true;
                    self.report(format!(
                        "not imported: process {process} nonce {}: {error}; the process stops \
                         here (a rerun that can rebuild this entry continues from it)",
                        key.nonce
                    ));
                    break;
                }
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(process: &str) -> SuSource {
        let client = Arc::new(SuClient::new("http://127.0.0.1:9", None).unwrap());
        SuSource::new(client, process, Arc::new(Mutex::new(Vec::new())))
    }

    fn node(nonce: u64, timestamp: u64, message: Option<&str>) -> serde_json::Value {
        let mut tags = vec![
            serde_json::json!({"name": "Nonce", "value": nonce.to_string()}),
            serde_json::json!({"name": "Timestamp", "value": timestamp.to_string()}),
        ];
        if message.is_none() {
            tags.push(serde_json::json!({"name": "Message", "value": "m"}));
        }
        let item = |id: &str| serde_json::json!({"id": id, "owner": {"key": "k"}, "signature": "s", "tags": tags});
        serde_json::json!({"node": {
            "message": message.map(item),
            "assignment": item("a"),
        }})
    }

    #[test]
    fn a_page_is_ordered_by_nonce_and_timestamp_with_duplicate_ranks() {
        let source = source("P");
        let page = |edges: Vec<serde_json::Value>| -> PageJson {
            serde_json::from_value(serde_json::json!({
                "page_info": {"has_next_page": false},
                "edges": edges,
            }))
            .unwrap()
        };
        let edges = vec![
            node(0, 5, Some("P")),
            node(1, 10, None),
            node(3, 30, None),
            node(2, 21, None),
            node(2, 20, None),
        ];
        let keys = |after| {
            source
                .entries_of(page(edges.clone()), after)
                .unwrap()
                .into_iter()
                .map(|(key, _)| (key.nonce, key.timestamp, key.row))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(None), [(1, 10, 0), (2, 20, 0), (2, 21, 1), (3, 30, 0)]);
        let after = RowKey {
            nonce: 2,
            timestamp: 20,
            row: 0,
        };
        assert_eq!(keys(Some(after)), [(2, 21, 1), (3, 30, 0)]);
        let missing_nonce = vec![serde_json::json!({"node": {
            "message": null,
            "assignment": {"id": "a", "owner": {"key": "k"}, "signature": "s", "tags": []},
        }})];
        assert!(source.entries_of(page(missing_nonce), None).is_err());
    }

    #[test]
    fn only_its_own_process_is_listed() {
        let mut source = source("bbb");
        assert_eq!(source.processes_after(None, 10).unwrap(), ["bbb"]);
        assert_eq!(source.processes_after(Some("aaa"), 10).unwrap(), ["bbb"]);
        assert!(source.processes_after(Some("bbb"), 10).unwrap().is_empty());
    }
}
