//! The standby's loop: pull the primary's change feed after the last applied sequence, verify
//! every change, apply each page atomically with the new position, and poll again at once while
//! behind, soon (`ACTIVE_POLL`) while the primary is taking writes, and every `interval` once a
//! poll brings nothing.

use super::feed::{FeedChange, FeedError, FeedPage, MAX_LIMIT};
use super::verify::{self, VerifyError};
use crate::ans104::b64;
use crate::domain::Id;
use crate::store::{Commit, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a round of syncing failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the primary could not be read: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("the primary answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the primary's feed is malformed: {0}")]
    Feed(#[from] FeedError),
    #[error("the primary's feed went backwards: change {got} after {after}")]
    OutOfOrder { got: u64, after: u64 },
    #[error("the primary's assignments are now signed by {now}, not {expected}")]
    SignerChanged { now: String, expected: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl SyncError {
    /// A contradiction or an invalid change: the standby must stop rather than follow.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Verify(VerifyError::Fork { .. } | VerifyError::Invalid { .. })
                | Self::SignerChanged { .. }
                | Self::OutOfOrder { .. }
                | Self::Feed(_)
        )
    }
}

/// Where to follow from, and how.
#[derive(Debug, Clone)]
pub struct Primary {
    /// Base URL, without a trailing slash.
    pub url: String,
    pub token: Option<String>,
}

impl Primary {
    /// One page of the feed after `after`.
    pub async fn page(
        &self,
        client: &reqwest::Client,
        after: u64,
        limit: usize,
    ) -> Result<FeedPage, SyncError> {
        let mut request = client.get(format!("{}/~su/log?after={after}&limit={limit}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(SyncError::Status {
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        Ok(response.json().await?)
    }
}

/// The next page, already being fetched while the current one is verified and applied.
struct Prefetch {
    after: u64,
    page: tokio::task::JoinHandle<Result<FeedPage, SyncError>>,
}

impl Prefetch {
    fn start(primary: &Primary, client: &reqwest::Client, after: u64) -> Self {
        let (primary, client) = (primary.clone(), client.clone());
        Self {
            after,
            page: tokio::spawn(async move { primary.page(&client, after, MAX_LIMIT).await }),
        }
    }
}

/// The pause after a round that caught up by applying changes: the primary is taking writes,
/// so more are likely; this keeps a busy standby's lag near this figure instead of the
/// interval, at no more than ten small feed requests a second.
const ACTIVE_POLL: Duration = Duration::from_millis(100);

/// Where the last round left the standby.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// The page was full and the primary holds more: poll again at once.
    Behind,
    /// Caught up by applying changes: poll again after `ACTIVE_POLL`.
    Active,
    /// Nothing new: poll again after the interval.
    Idle,
}

/// The follower of one primary.
pub struct Follower {
    pub store: Arc<Store>,
    pub client: reqwest::Client,
    pub primary: Primary,
    pub signer: Id,
    pub interval: Duration,
    /// Told each process's highest nonce after every replicated page (live reads).
    pub notifier: Arc<crate::live::Notifier>,
}

impl Follower {
    /// Runs until `stop` fires (Ok) or the primary's history cannot be followed (Err).
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), SyncError> {
        let mut caught_up_at = Instant::now();
        let mut failures = 0u64;
        let mut prefetch = None;
        loop {
            let wait = match self.round(&mut prefetch).await {
                Ok(Round::Behind) => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(Round::Active) => {
                    failures = 0;
                    caught_up_at = Instant::now();
                    ACTIVE_POLL.min(self.interval)
                }
                Ok(Round::Idle) => {
                    failures = 0;
                    caught_up_at = Instant::now();
                    self.interval
                }
                Err(error) if error.is_fatal() => {
                    tracing::error!(%error, "the standby stops following its primary");
                    return Err(error);
                }
                Err(error) => {
                    if let Some(stale) = prefetch.take() {
                        stale.page.abort();
                    }
                    failures += 1;
                    if failures == 1 || failures % 30 == 0 {
                        tracing::warn!(%error, failures, "sync round failed; retrying");
                    }
                    self.interval
                }
            };
            metrics::gauge!("su_sync_lag_seconds").set(caught_up_at.elapsed().as_secs_f64());
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fetches (or takes the prefetched), verifies and applies one page. While a full page is
    /// verified and written, the next one is already on its way.
    async fn round(&self, prefetch: &mut Option<Prefetch>) -> Result<Round, SyncError> {
        let store = self.store.clone();
        let after = tokio::task::spawn_blocking(move || store.sync_after()).await??;
        let page = match prefetch.take() {
            Some(next) if next.after == after => next.page.await??,
            stale => {
                if let Some(stale) = stale {
                    stale.page.abort();
                }
                self.primary.page(&self.client, after, MAX_LIMIT).await?
            }
        };
        let signer = b64::encode(&self.signer);
        if page.signer != signer {
            return Err(SyncError::SignerChanged {
                now: page.signer,
                expected: signer,
            });
        }
        let mut last = after;
        for change in &page.changes {
            if change.sequence() <= last {
                return Err(SyncError::OutOfOrder {
                    got: change.sequence(),
                    after: last,
                });
            }
            last = change.sequence();
        }
        let count = page.changes.len();
        if count > 0 && page.last_sequence > last {
            *prefetch = Some(Prefetch::start(&self.primary, &self.client, last));
        }
        let (store, signer_id) = (self.store.clone(), self.signer);
        let notifier = self.notifier.clone();
        let feed = page.changes;
        let applied = tokio::task::spawn_blocking(move || -> Result<usize, SyncError> {
            let changes = feed
                .iter()
                .map(FeedChange::to_change)
                .collect::<Result<Vec<_>, _>>()?;
            drop(feed);
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let apply = verify::check_page(&store, signer_id, changes, threads)?;
            let applied = apply.len();
            if count > 0 {
                let commit = Commit::from_changes(apply, true);
                store.write_replicated(&commit, last)?;
                for entry in &commit.entries {
                    notifier.publish(&entry.process, entry.nonce);
                }
            }
            Ok(applied)
        })
        .await??;
        let lag = page.last_sequence.saturating_sub(last);
        metrics::gauge!("su_sync_applied_sequence").set(last as f64);
        metrics::gauge!("su_sync_lag_entries").set(lag as f64);
        metrics::counter!("su_sync_entries_applied_total").increment(applied as u64);
        if count > 0 {
            tracing::debug!(applied, after = last, lag, "sync page applied");
        }
        Ok(match (count, lag) {
            (0, _) => Round::Idle,
            (_, 0) => Round::Active,
            _ => Round::Behind,
        })
    }
}
