//! The keeper loop of `su serve`: look the record up, decide (`classify`), publish through the
//! outbox when the decision says so, report the state in `/metrics` and the log, sleep.

use super::classify::{Facts, Lookup, OwnRecord, State, Verdict, classify};
use super::record;
use crate::ans104::b64;
use crate::config::LocationConfig;
use crate::domain::Id;
use crate::outbox::{Outbox, OutboxError, RowStatus};
use crate::store::location::SignedLocation;
use crate::store::{Store, StoreError};
use crate::upstream::Gateway;
use crate::wallet::{Wallet, WalletError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest pause after a check that failed (the store or the outbox did not answer).
const RETRY_AT_MOST: Duration = Duration::from_secs(60);

/// Why one check could not finish.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("signing the record: {0}")]
    Sign(#[from] WalletError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What the keeper needs; `su serve` builds it once.
pub struct Keeper {
    pub config: LocationConfig,
    pub gateway: Gateway,
    pub store: Arc<Store>,
    pub outbox: Outbox,
    pub wallet: Arc<Wallet>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, KeeperError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

impl Keeper {
    /// Checks at once, then every `check_every`, until `stop` fires.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            url = %self.config.url,
            ttl_ms = self.config.ttl_ms,
            check_every_secs = self.config.check_every.as_secs(),
            "location keeper started"
        );
        let mut last = None;
        loop {
            let pause = match self.check(&mut last).await {
                Ok(()) => self.config.check_every,
                Err(error) => {
                    tracing::warn!(%error, "checking the Scheduler-Location record failed");
                    self.config.check_every.min(RETRY_AT_MOST)
                }
            };
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: decide, publish if needed, report.
    async fn check(&self, last: &mut Option<State>) -> Result<(), KeeperError> {
        let own = self.own_record().await?;
        let lookup = self.lookup().await;
        let verdict = classify(&Facts {
            now_ms: now_ms(),
            own_url: &self.config.url,
            lookup,
            own,
        });
        report(&verdict, last);
        if verdict.state.needs_publication() {
            let id = self.publish().await?;
            metrics::counter!("su_location_publications_total").increment(1);
            tracing::info!(
                id = %b64::encode(&id),
                url = %self.config.url,
                ttl_ms = self.config.ttl_ms,
                reason = verdict.state.name(),
                "Scheduler-Location record queued for upload"
            );
            let queued = Verdict {
                state: State::Pending,
                record: verdict.record,
            };
            report(&queued, last);
        }
        Ok(())
    }

    /// The last record this SU queued, and whether the bundler has taken it.
    async fn own_record(&self) -> Result<Option<OwnRecord>, KeeperError> {
        let store = self.store.clone();
        let Some(publication) = blocking(move || store.location_publication()).await? else {
            return Ok(None);
        };
        let status = self
            .outbox
            .status(vec![publication.outbox_key.clone()])
            .await?;
        let delivered = matches!(status.first(), Some(RowStatus::Gone) | None);
        Ok(Some(OwnRecord {
            id: b64::encode(&publication.id),
            url: publication.url,
            ttl_ms: publication.ttl_ms,
            queued_ms: publication.queued_ms,
            delivered,
        }))
    }

    async fn lookup(&self) -> Lookup {
        let owner = self.wallet.address_b64();
        match self
            .gateway
            .newest_owned(&owner, &record::LOOKUP_TAGS)
            .await
        {
            Ok(Some(transaction)) => Lookup::Found(record::seen(&transaction)),
            Ok(None) => Lookup::Nothing,
            Err(error) => {
                metrics::counter!("su_location_lookup_failures_total").increment(1);
                tracing::warn!(%error, "looking up the Scheduler-Location record failed");
                Lookup::Failed
            }
        }
    }

    /// Signs a new record and queues it, with `meta/location_publication`, in one write.
    async fn publish(&self) -> Result<Id, KeeperError> {
        let (url, ttl_ms, wallet) = (
            self.config.url.clone(),
            self.config.ttl_ms,
            self.wallet.clone(),
        );
        let signed = tokio::task::spawn_blocking(move || {
            let draft = wallet.draft(record::tags(&url, ttl_ms), Vec::new());
            let (bytes, id) = wallet.sign(&draft)?;
            Ok::<_, WalletError>(SignedLocation {
                id,
                bytes,
                url,
                ttl_ms,
                queued_ms: now_ms(),
            })
        })
        .await??;
        let id = signed.id;
        let queue = move |store: &Store| Ok(store.queue_location(&signed)?.outbox_row());
        self.outbox.add_row(Box::new(queue)).await?;
        Ok(id)
    }
}

/// Sets the metrics, and logs the state when it changed.
fn report(verdict: &Verdict, last: &mut Option<State>) {
    for state in State::ALL {
        let value = if state == verdict.state { 1.0 } else { 0.0 };
        metrics::gauge!("su_location_state", "state" => state.name()).set(value);
    }
    let expires_secs = verdict
        .record
        .as_ref()
        .map_or(0.0, |record| record.expires_ms as f64 / 1000.0);
    metrics::gauge!("su_location_expires_at_seconds").set(expires_secs);
    if *last == Some(verdict.state) {
        return;
    }
    *last = Some(verdict.state);
    let id = verdict
        .record
        .as_ref()
        .map(|record| record.id.as_str())
        .unwrap_or("");
    let url = verdict
        .record
        .as_ref()
        .and_then(|record| record.url.as_deref())
        .unwrap_or("");
    let expires_ms = verdict.record.as_ref().map(|record| record.expires_ms);
    let state = verdict.state.name();
    match verdict.state {
        State::Unknown | State::Expired | State::Elsewhere => {
            tracing::warn!(state = %state, id = %id, url = %url, ?expires_ms, "Scheduler-Location record")
        }
        _ => {
            tracing::info!(state = %state, id = %id, url = %url, ?expires_ms, "Scheduler-Location record")
        }
    }
}
