//! Whether writes are available, and the epoch that makes recovering from a fault safe.
//!
//! The epoch is even while writes are available and odd while they are not (a failed store
//! write, a full disk, a shard or the committer that panicked). Every staged entry carries the
//! epoch it was staged in, and the committer writes only entries of the current epoch: after a
//! fault, nothing a shard staged against tips that may be ahead of the disk can reach it. A
//! shard that sees a new even epoch forgets everything it held in memory and reloads its tips
//! from the reopened store.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Shared by the HTTP layer (to refuse writes early and report), the shards and the committer.
#[derive(Debug, Default)]
pub struct WriteHealth {
    epoch: AtomicU64,
    fault: Mutex<Option<Fault>>,
}

/// Why writes are unavailable, and since when.
#[derive(Debug, Clone)]
pub struct Fault {
    pub cause: String,
    pub since: Instant,
}

impl WriteHealth {
    /// The current epoch (even: writes available).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether writes are being accepted.
    pub fn is_available(&self) -> bool {
        self.epoch() % 2 == 0
    }

    /// Why writes are unavailable, while they are.
    pub fn fault(&self) -> Option<Fault> {
        if self.is_available() {
            return None;
        }
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Marks writes unavailable for `cause`. Returns whether this call made the change (a
    /// second fault while degraded keeps the first cause).
    pub(super) fn fail(&self, cause: String) -> bool {
        let mut fault = self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let epoch = self.epoch.load(Ordering::Acquire);
        if epoch % 2 == 1 {
            return false;
        }
        *fault = Some(Fault {
            cause,
            since: Instant::now(),
        });
        self.epoch.store(epoch + 1, Ordering::Release);
        metrics::counter!("su_storage_faults_total").increment(1);
        true
    }

    /// Marks writes available again, in a new epoch. Only the committer calls it, after the
    /// store was reopened and accepted a synced write.
    pub(super) fn recover(&self) {
        let mut fault = self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let epoch = self.epoch.load(Ordering::Acquire);
        if epoch % 2 == 1 {
            *fault = None;
            self.epoch.store(epoch + 1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_makes_the_epoch_odd_and_recovery_starts_a_new_even_one() {
        let health = WriteHealth::default();
        assert!(health.is_available());
        assert!(health.fault().is_none());
        assert!(health.fail("disk full".into()));
        assert!(
            !health.fail("second".into()),
            "a second fault keeps the first"
        );
        assert_eq!(
            health.fault().map(|fault| fault.cause).as_deref(),
            Some("disk full")
        );
        assert_eq!(health.epoch(), 1);
        health.recover();
        assert_eq!(health.epoch(), 2);
        assert!(health.is_available());
        assert!(health.fault().is_none());
        health.recover();
        assert_eq!(
            health.epoch(),
            2,
            "recovering while available changes nothing"
        );
    }
}
