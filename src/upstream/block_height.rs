//! The cached Arweave block height: refreshed in the background, persisted, never fetched
//! on the write path, and never lower than a height already used.

use super::Gateway;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The height every Assignment and `/timestamp` uses, and when it was last refreshed.
#[derive(Debug, Default)]
pub struct BlockHeight {
    pub height: Arc<AtomicU64>,
    refreshed_at_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl BlockHeight {
    /// Starts from the persisted height (0 on a new store).
    pub fn from_store(store: &Store) -> Self {
        let height = store.block_height().ok().flatten().unwrap_or(0);
        Self {
            height: Arc::new(AtomicU64::new(height)),
            refreshed_at_ms: AtomicU64::new(0),
        }
    }

    pub fn get(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }

    /// Whether a real height is known: persisted by an earlier run or fetched in this one.
    /// With a gateway configured, writes wait for one rather than sign `Block-Height` 0.
    pub fn is_known(&self) -> bool {
        self.get() > 0
    }

    /// Seconds since the last successful refresh; `None` if never refreshed in this run.
    pub fn age_secs(&self) -> Option<u64> {
        match self.refreshed_at_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(now_ms().saturating_sub(at) / 1000),
        }
    }

    /// Raises the height to `fetched` (a gateway that answers a lower height, a lagging
    /// replica say, never moves it back) and returns the height now in force.
    fn set(&self, fetched: u64) -> u64 {
        let previous = self.height.fetch_max(fetched, Ordering::Relaxed);
        if fetched < previous {
            tracing::warn!(
                fetched,
                kept = previous,
                "the gateway answered a lower block height; keeping the higher one"
            );
        }
        self.refreshed_at_ms.store(now_ms(), Ordering::Relaxed);
        let height = previous.max(fetched);
        metrics::gauge!("su_block_height").set(height as f64);
        height
    }

    /// One refresh: fetch, store in memory, persist.
    pub async fn refresh(
        &self,
        gateway: &Gateway,
        store: &Arc<Store>,
    ) -> Result<u64, super::GatewayError> {
        let height = self.set(gateway.height().await?);
        let store = store.clone();
        let persisted = tokio::task::spawn_blocking(move || store.put_block_height(height)).await;
        if let Ok(Err(error)) = persisted {
            tracing::warn!(%error, "could not persist the block height");
        }
        Ok(height)
    }

    /// Refreshes every `period` until `shutdown` fires. Failures keep the old height.
    pub async fn run(
        self: Arc<Self>,
        gateway: Gateway,
        store: Arc<Store>,
        period: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(error) = self.refresh(&gateway, &store).await {
                        tracing::warn!(%error, height = self.get(), "block height refresh failed; keeping the last height");
                    }
                    if let Some(age) = self.age_secs() {
                        metrics::gauge!("su_block_height_age_seconds").set(age as f64);
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_height_never_goes_backwards() {
        let height = BlockHeight::default();
        assert!(!height.is_known());
        assert_eq!(height.set(100), 100);
        assert_eq!(height.set(90), 100);
        assert_eq!(height.get(), 100);
        assert_eq!(height.set(101), 101);
        assert!(height.is_known());
        assert!(height.age_secs().is_some());
    }
}
