//! The operator's allow-lists (PROTOCOL 8): fetched over HTTP with a timeout and a size
//! cap, parsed, and refreshed in the background. A failed refresh keeps the last good list.
//! What a list means for a request is decided in `http::controls`, not here.

use crate::ans104::b64;
use crate::config::ControlsConfig;
use crate::domain::Id;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Why a list could not be fetched or read; the list in force stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum AllowListError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the response exceeds {0} bytes")]
    TooLarge(usize),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// GETs one list URL with the outbound timeout, reading at most `max_bytes` of body.
#[derive(Debug, Clone)]
pub struct ListFetcher {
    client: reqwest::Client,
    url: String,
    max_bytes: usize,
}

impl ListFetcher {
    pub fn new(url: &str, timeout_secs: u64, max_bytes: usize) -> Result<Self, AllowListError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(timeout_secs.clamp(1, 5)))
            .build()?;
        Ok(Self {
            client,
            url: url.to_string(),
            max_bytes,
        })
    }

    /// The body of a 2xx answer; a larger body than the cap is an error, not a truncation.
    pub async fn fetch(&self) -> Result<Vec<u8>, AllowListError> {
        let mut response = self.client.get(&self.url).send().await?;
        if !response.status().is_success() {
            return Err(AllowListError::Status(response.status()));
        }
        let too_large = AllowListError::TooLarge(self.max_bytes);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The IP allow-list (PROTOCOL 8.1): a JSON array of strings, compared with `X-Real-IP`.
#[derive(Debug, Default)]
pub struct IpAllowList {
    /// `None` until a first list was fetched.
    ips: RwLock<Option<Arc<HashSet<String>>>>,
}

/// What the IP allow-list says of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVerdict {
    Allowed,
    NotListed,
    /// No list has been fetched yet.
    NotLoaded,
}

/// `["203.0.113.7", ...]` → the set of listed IPs, each trimmed.
pub fn parse_ip_list(bytes: &[u8]) -> Result<HashSet<String>, serde_json::Error> {
    let ips: Vec<String> = serde_json::from_slice(bytes)?;
    Ok(ips.into_iter().map(|ip| ip.trim().to_string()).collect())
}

impl IpAllowList {
    pub fn check(&self, ip: &str) -> IpVerdict {
        let ips = self
            .ips
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match ips.as_ref() {
            None => IpVerdict::NotLoaded,
            Some(ips) if ips.contains(ip.trim()) => IpVerdict::Allowed,
            Some(_) => IpVerdict::NotListed,
        }
    }

    /// Parses `bytes` and puts the list in force; returns how many entries it has.
    fn apply(&self, bytes: &[u8]) -> Result<usize, AllowListError> {
        let ips = parse_ip_list(bytes)?;
        let count = ips.len();
        *self
            .ips
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(ips));
        Ok(count)
    }
}

/// Whose processes count as allowed (PROTOCOL 8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// su mode: processes listed with `su` equal to this SU's URL (compared without a
    /// trailing `/`).
    ThisSu(String),
    /// Router mode: every listed process.
    AnySu,
}

/// What this SU may do with an allowed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessAccess {
    pub read_only: bool,
}

/// The allowed processes of one list, by id.
pub type ProcessTable = HashMap<Id, ProcessAccess>;

#[derive(Deserialize)]
struct ProcessDocument {
    processes: HashMap<String, ProcessEntry>,
}

/// One `processes` entry; `db_name` and the `sus` section only served the reference's
/// multi-tenant Postgres and are ignored.
#[derive(Deserialize)]
struct ProcessEntry {
    su: String,
    #[serde(default)]
    read_only: Option<bool>,
}

/// `{"sus": …, "processes": {"<id>": {"su": …, "read_only": …}}}` → the processes allowed
/// in `scope`. Keys that are not process ids are skipped (they can never match).
pub fn parse_process_list(
    bytes: &[u8],
    scope: &ListScope,
) -> Result<ProcessTable, serde_json::Error> {
    let document: ProcessDocument = serde_json::from_slice(bytes)?;
    let in_scope = |entry: &ProcessEntry| match scope {
        ListScope::AnySu => true,
        ListScope::ThisSu(own) => entry.su.trim_end_matches('/') == own.trim_end_matches('/'),
    };
    Ok(document
        .processes
        .into_iter()
        .filter(|(_, entry)| in_scope(entry))
        .filter_map(|(id, entry)| {
            let access = ProcessAccess {
                read_only: entry.read_only.unwrap_or(false),
            };
            Some((b64::decode_id(&id)?, access))
        })
        .collect())
}

/// The process allow-list (PROTOCOL 8.2); loaded before the server starts.
#[derive(Debug)]
pub struct ProcessAllowList {
    scope: ListScope,
    table: RwLock<Arc<ProcessTable>>,
}

impl ProcessAllowList {
    /// A list in force from the start (`load` fetches one).
    pub fn new(scope: ListScope, table: ProcessTable) -> Self {
        Self {
            scope,
            table: RwLock::new(Arc::new(table)),
        }
    }

    /// Fetches the first list; an error here stops the start-up, as in the reference.
    pub async fn load(fetcher: &ListFetcher, scope: ListScope) -> Result<Self, AllowListError> {
        let table = parse_process_list(&fetcher.fetch().await?, &scope)?;
        tracing::info!(allowed = table.len(), "process allow-list loaded");
        metrics::gauge!("su_allow_list_entries", "list" => "process").set(table.len() as f64);
        Ok(Self::new(scope, table))
    }

    /// `None`: this SU may not serve the process.
    pub fn access(&self, process: &Id) -> Option<ProcessAccess> {
        let table = self
            .table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        table.get(process).copied()
    }

    fn apply(&self, bytes: &[u8]) -> Result<usize, AllowListError> {
        let table = parse_process_list(bytes, &self.scope)?;
        let count = table.len();
        *self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        Ok(count)
    }
}

/// A background loop, boxed so a mode can start several of one kind.
pub type RefreshLoop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The allow-lists a daemon runs with, and where each is fetched from.
#[derive(Debug, Default)]
pub struct AllowLists {
    pub ip: Option<Arc<IpAllowList>>,
    pub process: Option<Arc<ProcessAllowList>>,
    ip_source: Option<(ListFetcher, Duration)>,
    process_source: Option<(ListFetcher, Duration)>,
}

impl AllowLists {
    /// Fetches the process allow-list (su mode: this SU's processes), whose failure stops the
    /// start-up; the IP allow-list starts empty and its loop fetches it at once.
    pub async fn load(config: &ControlsConfig, timeout_secs: u64) -> Result<Self, AllowListError> {
        let mut lists = Self::default();
        if let Some(source) = &config.ip_allow_list {
            let fetcher = ListFetcher::new(&source.url, timeout_secs, config.list_max_bytes)?;
            lists.ip = Some(Arc::new(IpAllowList::default()));
            lists.ip_source = Some((fetcher, Duration::from_secs(source.refresh_secs)));
        }
        if let Some(process) = &config.process_allow_list {
            let source = &process.source;
            let fetcher = ListFetcher::new(&source.url, timeout_secs, config.list_max_bytes)?;
            let scope = ListScope::ThisSu(process.own_url.clone());
            lists.process = Some(Arc::new(ProcessAllowList::load(&fetcher, scope).await?));
            lists.process_source = Some((fetcher, Duration::from_secs(source.refresh_secs)));
        }
        Ok(lists)
    }

    /// One refresh loop per list, each ending at `stop`.
    pub fn refresh_loops(&self, stop: &watch::Receiver<bool>) -> Vec<RefreshLoop> {
        let mut loops: Vec<RefreshLoop> = Vec::new();
        if let (Some(list), Some((fetcher, period))) = (&self.ip, &self.ip_source) {
            let list = list.clone();
            let refresh = Refresh {
                name: "ip",
                fetcher: fetcher.clone(),
                period: *period,
                fetch_at_once: true,
            };
            loops.push(Box::pin(
                refresh.run(move |bytes| list.apply(bytes), stop.clone()),
            ));
        }
        if let (Some(list), Some((fetcher, period))) = (&self.process, &self.process_source) {
            let list = list.clone();
            let refresh = Refresh {
                name: "process",
                fetcher: fetcher.clone(),
                period: *period,
                fetch_at_once: false,
            };
            loops.push(Box::pin(
                refresh.run(move |bytes| list.apply(bytes), stop.clone()),
            ));
        }
        loops
    }
}

/// One list's refresh loop.
struct Refresh {
    /// The `list` label of its metrics and logs.
    name: &'static str,
    fetcher: ListFetcher,
    period: Duration,
    /// Fetch when the loop starts, rather than one period later.
    fetch_at_once: bool,
}

impl Refresh {
    /// Fetches every `period` and hands the body to `apply` until `stop` fires. A failure
    /// (network, status, size, JSON) is logged and counted, and the list stays as it was.
    async fn run(
        self,
        apply: impl Fn(&[u8]) -> Result<usize, AllowListError>,
        mut stop: watch::Receiver<bool>,
    ) {
        let first = tokio::time::Instant::now()
            + if self.fetch_at_once {
                Duration::ZERO
            } else {
                self.period
            };
        let mut interval = tokio::time::interval_at(first, self.period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut entries = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            let outcome = match self.fetcher.fetch().await {
                Ok(bytes) => apply(&bytes),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(count) => {
                    metrics::gauge!("su_allow_list_entries", "list" => self.name).set(count as f64);
                    if entries != Some(count) {
                        tracing::info!(list = self.name, entries = count, "allow-list in force");
                    } else {
                        tracing::debug!(list = self.name, entries = count, "allow-list refreshed");
                    }
                    entries = Some(count);
                }
                Err(error) => {
                    metrics::counter!("su_allow_list_refresh_failures_total", "list" => self.name)
                        .increment(1);
                    tracing::warn!(list = self.name, %error, "allow-list refresh failed; the last list stays in force");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCESS_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const PROCESS_B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA";
    const PROCESS_C: &str = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA";

    fn id(text: &str) -> Id {
        b64::decode_id(text).unwrap()
    }

    #[test]
    fn ip_lists_are_arrays_of_strings() {
        let ips = parse_ip_list(br#"["203.0.113.7", " 198.51.100.2 "]"#).unwrap();
        assert!(ips.contains("203.0.113.7") && ips.contains("198.51.100.2"));
        assert!(parse_ip_list(br#"{"ips": []}"#).is_err());
        assert!(parse_ip_list(br#"[1, 2]"#).is_err());
        assert!(parse_ip_list(b"").is_err());
    }

    #[test]
    fn an_ip_list_refuses_until_loaded_and_keeps_the_last_good_one() {
        let list = IpAllowList::default();
        assert_eq!(list.check("203.0.113.7"), IpVerdict::NotLoaded);
        assert_eq!(list.apply(br#"["203.0.113.7"]"#).unwrap(), 1);
        assert_eq!(list.check(" 203.0.113.7"), IpVerdict::Allowed);
        assert_eq!(list.check("203.0.113.8"), IpVerdict::NotListed);
        assert!(list.apply(b"not json").is_err());
        assert_eq!(list.check("203.0.113.7"), IpVerdict::Allowed);
    }

    fn document() -> String {
        format!(
            r#"{{
              "sus": {{"https://su201.example": {{"dbs": [{{"db_name": "a", "efs_name": "a"}}]}}}},
              "processes": {{
                "{PROCESS_A}": {{"su": "https://su201.example", "db_name": "a"}},
                "{PROCESS_B}": {{"su": "https://su201.example/", "db_name": "a", "read_only": true}},
                "{PROCESS_C}": {{"su": "https://su202.example", "db_name": "b", "read_only": null}},
                "not-an-id": {{"su": "https://su201.example", "db_name": "a"}}
              }}
            }}"#
        )
    }

    #[test]
    fn su_mode_allows_the_processes_listed_for_this_su() {
        let scope = ListScope::ThisSu("https://su201.example".into());
        let table = parse_process_list(document().as_bytes(), &scope).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.get(&id(PROCESS_A)),
            Some(&ProcessAccess { read_only: false })
        );
        assert_eq!(
            table.get(&id(PROCESS_B)),
            Some(&ProcessAccess { read_only: true })
        );
        assert_eq!(table.get(&id(PROCESS_C)), None);
    }

    #[test]
    fn router_mode_allows_every_listed_process() {
        let table = parse_process_list(document().as_bytes(), &ListScope::AnySu).unwrap();
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_bad_process_document_is_an_error() {
        let scope = ListScope::AnySu;
        assert!(parse_process_list(br#"{"sus": {}}"#, &scope).is_err());
        assert!(parse_process_list(br#"{"processes": {"x": {}}}"#, &scope).is_err());
        assert!(parse_process_list(br#"["a"]"#, &scope).is_err());
        assert!(
            parse_process_list(br#"{"processes": {}}"#, &scope)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_process_refresh_keeps_the_table() {
        let scope = ListScope::ThisSu("https://su201.example".into());
        let list = ProcessAllowList::new(scope, ProcessTable::new());
        assert_eq!(list.access(&id(PROCESS_A)), None);
        assert_eq!(list.apply(document().as_bytes()).unwrap(), 2);
        assert!(list.access(&id(PROCESS_A)).is_some());
        assert!(list.apply(br#"{"processes": 1}"#).is_err());
        assert!(list.access(&id(PROCESS_A)).is_some());
    }
}
