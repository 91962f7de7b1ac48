//! The memory all reads in progress share (`MAX_READ_MEMORY_TOTAL`): one semaphore whose
//! permits are KiB. A read holds a `Reservation` covering what it has rendered and the items
//! it is rendering; the memory goes back when the reservation is dropped, which for a
//! response is when hyper drops the body it has sent.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per permit.
const UNIT: usize = 1024;
/// A reservation grows by at least this many permits at a time (64 KiB), so small nodes do
/// not each take a semaphore operation.
const GROWTH_UNITS: usize = 64;

/// The shared budget; clones share it.
#[derive(Debug, Clone)]
pub struct ReadBudget {
    permits: Arc<Semaphore>,
    total_units: usize,
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

impl ReadBudget {
    /// A budget of `total_bytes` (at least one KiB).
    pub fn new(total_bytes: usize) -> Self {
        let total_units = units(total_bytes).clamp(1, u32::MAX as usize);
        Self {
            permits: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    /// Bytes not held by any read right now.
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    /// An empty reservation that grows from this budget.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: Some(self.clone()),
            permit: None,
        }
    }

    /// Waits at most `wait` for `bytes` (or the whole budget, when that is less) to be free,
    /// in the order reads asked; `None` when the wait ran out.
    pub async fn reserve(&self, bytes: usize, wait: Duration) -> Option<Reservation> {
        let wanted = units(bytes).clamp(1, self.total_units) as u32;
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_many_owned(wanted))
            .await
            .ok()?
            .ok()?;
        Some(Reservation {
            budget: Some(self.clone()),
            permit: Some(permit),
        })
    }
}

/// Memory one read holds from the budget; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    /// `None`: not counted (tools and tests that read a store directly).
    budget: Option<ReadBudget>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// A reservation that covers anything and holds nothing.
    pub fn unlimited() -> Self {
        Self {
            budget: None,
            permit: None,
        }
    }

    fn held_units(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.held_units() * UNIT
    }

    /// Makes the reservation cover `bytes` without waiting; false when the budget has not
    /// that much free. A reservation holding the whole budget covers anything: one node
    /// larger than the budget can still be served, alone.
    pub fn try_cover(&mut self, bytes: usize) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        let held = self.held_units();
        let needed = units(bytes).min(budget.total_units);
        if held >= needed {
            return true;
        }
        let missing = needed - held;
        let free = budget.permits.available_permits();
        // Round small growth up, within what is free, to spare semaphore operations.
        let asked = missing
            .max(GROWTH_UNITS.min(free))
            .min(budget.total_units - held);
        match budget.permits.clone().try_acquire_many_owned(asked as u32) {
            Ok(more) => {
                match &mut self.permit {
                    Some(permit) => permit.merge(more),
                    None => self.permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back everything above `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = units(bytes);
        let held = self.held_units();
        if keep == 0 {
            self.permit = None;
        } else if held > keep {
            if let Some(permit) = &mut self.permit {
                drop(permit.split(held - keep));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = ReadBudget::new(1 << 20);
        let mut first = budget.reservation();
        assert!(first.try_cover(600 << 10));
        let mut second = budget.reservation();
        assert!(!second.try_cover(600 << 10), "only 424 KiB are left");
        assert!(second.try_cover(100 << 10));
        first.shrink_to(100 << 10);
        assert_eq!(first.bytes(), 100 << 10);
        assert!(second.try_cover(600 << 10));
        drop(second);
        drop(first);
        assert_eq!(budget.available_bytes(), 1 << 20);
    }

    #[test]
    fn the_whole_budget_covers_a_node_larger_than_it() {
        let budget = ReadBudget::new(1 << 20);
        let mut alone = budget.reservation();
        assert!(alone.try_cover(5 << 20));
        assert_eq!(alone.bytes(), 1 << 20);
        assert!(!budget.reservation().try_cover(1));
        assert!(Reservation::unlimited().try_cover(usize::MAX));
    }

    #[tokio::test]
    async fn waiting_reads_get_the_memory_when_it_is_freed_or_give_up() {
        let budget = ReadBudget::new(1 << 20);
        let mut holder = budget.reservation();
        assert!(holder.try_cover(1 << 20));
        let waited = budget.reserve(512 << 10, Duration::from_millis(50)).await;
        assert!(waited.is_none());
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(512 << 10, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(holder);
        let reservation = waiter.await.unwrap().unwrap();
        assert_eq!(reservation.bytes(), 512 << 10);
    }
}
