//! Router mode (`su router`, PROTOCOL 7): where each process lives, and where a new one goes.
//! The SUs are the truth; the placement table (`routes` in the router's own store) is a
//! cache of their answers and of this router's own placements. A process the table does not
//! know is looked up on every known SU at once before the router says "not found", so two
//! routers give the same answers and a router on an empty data dir rebuilds itself.
//!
//! `list` reads the scheduler list, `placement` holds the rules for a new process, `sus`
//! the SUs' health and process counts. `http/router.rs` turns the answers into 307s.

pub mod list;
pub mod placement;
pub mod sus;

use crate::config::RouterConfig;
use crate::domain::Id;
use crate::store::routes::{RouteRecord, RouteState};
use crate::store::{Store, StoreError};
use list::{ListError, Scheduler};
use placement::Candidate;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use sus::SuSet;
use tokio::sync::{Semaphore, watch};

/// A tentative placement older than this is checked on its SU when it is next used.
const CONFIRM_AFTER_MS: u64 = 2_000;
/// A tentative placement no SU holds after this long is forgotten (the spawn was refused).
const FORGET_AFTER_MS: u64 = 60_000;
/// Lazy confirmations in flight at once; beyond it a confirmation waits for a later lookup.
const CONFIRMATIONS: usize = 16;

/// Why a lookup or placement failed (not "not found", which is an answer).
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("placement table: {0}")]
    Store(#[from] StoreError),
    #[error("placement table task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How a new process was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The process already lives there (a repeated spawn goes where the first went).
    Existing(String),
    /// Placed now, tentatively, on this SU.
    New(String),
}

impl Placement {
    pub fn url(&self) -> &str {
        match self {
            Self::Existing(url) | Self::New(url) => url,
        }
    }
}

/// The router: its table, the SUs it knows, and a client that never follows redirects.
pub struct Router {
    store: Arc<Store>,
    client: reqwest::Client,
    list_path: Option<PathBuf>,
    sus: RwLock<Arc<SuSet>>,
    confirmations: Arc<Semaphore>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl Router {
    /// A router over `store`, knowing the SUs the store remembers; call `reload` to read the
    /// scheduler list.
    pub fn new(store: Arc<Store>, config: &RouterConfig) -> Result<Self, RouterError> {
        let timeout = Duration::from_secs(config.su_timeout_secs.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let remembered = store.router_sus()?;
        let sus = SuSet::build(&SuSet::default(), &remembered, &[]);
        Ok(Self {
            store,
            client,
            list_path: config.list_path.clone(),
            sus: RwLock::new(Arc::new(sus)),
            confirmations: Arc::new(Semaphore::new(CONFIRMATIONS)),
        })
    }

    /// The SUs now.
    pub fn sus(&self) -> Arc<SuSet> {
        self.sus
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// (Re)reads the scheduler list (blocking I/O): new SUs are learnt and remembered in the
    /// store, SUs no longer listed take no new processes but keep theirs. On an error the
    /// last good list stays. Returns the number of listed SUs.
    pub fn reload(&self) -> Result<usize, ReloadError> {
        let list: Vec<Scheduler> = match &self.list_path {
            Some(path) => list::read(path)?,
            None => Vec::new(),
        };
        let mut slot = self.sus.write().unwrap_or_else(PoisonError::into_inner);
        let next = SuSet::build(&slot, &[], &list);
        let known = next.known_urls();
        if known != slot.known_urls() {
            self.store.put_router_sus(&known)?;
        }
        let listed = next.listed.len();
        for removed in slot
            .listed
            .iter()
            .filter(|old| !list.iter().any(|new| new.url == old.scheduler.url))
        {
            tracing::info!(su = %removed.scheduler.url, "SU no longer listed: it gets no new processes and keeps its own");
        }
        *slot = Arc::new(next);
        Ok(listed)
    }

    /// One health check of every known SU, at once.
    pub async fn check_health(&self) {
        let sus = self.sus();
        let mut checks = tokio::task::JoinSet::new();
        for state in &sus.known {
            let (state, client) = (state.clone(), self.client.clone());
            checks.spawn(async move { state.check(&client).await });
        }
        while checks.join_next().await.is_some() {}
    }

    /// Checks every SU's health every `period`, until `stop`.
    pub async fn run_health_checks(
        self: Arc<Self>,
        period: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => self.check_health().await,
                _ = stop.changed() => return,
            }
        }
    }

    /// Where `process` lives: the table, else every known SU asked at once (the answer is
    /// remembered). `None`: no SU holds it.
    pub async fn locate(self: &Arc<Self>, process: &Id) -> Result<Option<String>, RouterError> {
        let store = self.store.clone();
        let id = *process;
        let record = tokio::task::spawn_blocking(move || store.route(&id)).await??;
        if let Some(record) = record {
            if record.state == RouteState::Tentative
                && now_ms().saturating_sub(record.set_ms) > CONFIRM_AFTER_MS
            {
                self.confirm_later(id, record.clone());
            }
            return Ok(Some(record.su));
        }
        let found = self.find_on_sus(process).await;
        metrics::counter!(
            "su_router_fallthrough_total",
            "outcome" => if found.is_some() { "found" } else { "not_found" }
        )
        .increment(1);
        let Some(url) = found else { return Ok(None) };
        self.put(id, RouteState::Confirmed, url.clone()).await?;
        Ok(Some(url))
    }

    /// Places a new process of `owner` (PROTOCOL 7.2): where it already lives if any SU
    /// holds it, else on the SU the rules pick, tentatively. `None`: no SU may take it.
    pub async fn place(
        self: &Arc<Self>,
        process: &Id,
        owner: &str,
    ) -> Result<Option<Placement>, RouterError> {
        if let Some(url) = self.locate(process).await? {
            return Ok(Some(Placement::Existing(url)));
        }
        let sus = self.sus();
        let candidates: Vec<Candidate<'_>> = sus
            .listed
            .iter()
            .map(|listed| Candidate {
                no_route: listed.scheduler.no_route,
                healthy: listed.state.is_healthy(),
                wallets_to_route: &listed.scheduler.wallets_to_route,
                wallets_only: listed.scheduler.wallets_only,
                load: listed.state.load(),
            })
            .collect();
        let Some(index) = placement::pick(&candidates, owner) else {
            return Ok(None);
        };
        let chosen = &sus.listed[index];
        chosen.state.placed();
        let url = chosen.scheduler.url.clone();
        self.put(*process, RouteState::Tentative, url.clone())
            .await?;
        metrics::counter!("su_router_placements_total", "su" => url.clone()).increment(1);
        tracing::info!(process = %crate::ans104::b64::encode(process), su = %url, "placed a new process");
        Ok(Some(Placement::New(url)))
    }

    async fn put(&self, process: Id, state: RouteState, su: String) -> Result<(), RouterError> {
        let store = self.store.clone();
        let record = RouteRecord {
            state,
            set_ms: now_ms(),
            su,
        };
        tokio::task::spawn_blocking(move || store.put_route(&process, &record)).await??;
        Ok(())
    }

    /// The first known SU that answers 200 to `GET /processes/{id}`, asking all at once.
    async fn find_on_sus(&self, process: &Id) -> Option<String> {
        let sus = self.sus();
        let id = crate::ans104::b64::encode(process);
        let mut asks = tokio::task::JoinSet::new();
        for state in &sus.known {
            let (url, client) = (state.url.clone(), self.client.clone());
            let path = format!("{url}/processes/{id}");
            asks.spawn(async move {
                match client.get(&path).send().await {
                    Ok(response) if response.status() == reqwest::StatusCode::OK => Some(url),
                    _ => None,
                }
            });
        }
        while let Some(answer) = asks.join_next().await {
            if let Ok(Some(url)) = answer {
                asks.abort_all();
                return Some(url);
            }
        }
        None
    }

    /// Checks a tentative placement in the background: confirmed when its SU holds the
    /// process; after `FORGET_AFTER_MS` without it, moved to the SU that does, or forgotten.
    fn confirm_later(self: &Arc<Self>, process: Id, record: RouteRecord) {
        let Ok(permit) = self.confirmations.clone().try_acquire_owned() else {
            return;
        };
        let router = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let id = crate::ans104::b64::encode(&process);
            let holds = matches!(
                router.client.get(format!("{}/processes/{id}", record.su)).send().await,
                Ok(response) if response.status() == reqwest::StatusCode::OK
            );
            let result = if holds {
                router.put(process, RouteState::Confirmed, record.su).await
            } else if now_ms().saturating_sub(record.set_ms) > FORGET_AFTER_MS {
                match router.find_on_sus(&process).await {
                    Some(url) => router.put(process, RouteState::Confirmed, url).await,
                    None => {
                        let store = router.store.clone();
                        tracing::info!(process = %id, su = %record.su, "forgetting a placement its SU never took");
                        match tokio::task::spawn_blocking(move || store.delete_route(&process))
                            .await
                        {
                            Ok(result) => result.map_err(RouterError::from),
                            Err(error) => Err(error.into()),
                        }
                    }
                }
            } else {
                Ok(())
            };
            if let Err(error) = result {
                tracing::warn!(%error, process = %id, "could not update a placement");
            }
        });
    }
}

/// Why the scheduler list was not (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    List(#[from] ListError),
    #[error("remembering the SUs: {0}")]
    Store(#[from] StoreError),
}
