//! What a shard has staged but the committer has not yet made durable: tips, item ids and
//! dedupe hashes. Never evicted: these facts are not on disk yet, so forgetting one would let
//! the shard reload a stale tip (a second Assignment for a slot) or schedule a repeat twice.
//! Bounded all the same, by the committer queue: a shard cannot stage more than it holds.
//!
//! Entries become durable in the order the shard staged them (one FIFO queue to the
//! committer), so one counter of durable entries per shard tells which facts to release.

use super::command::Receipt;
use crate::domain::{Id, Tip};
use std::collections::{HashMap, VecDeque};

/// The facts of one staged entry, released together once it is durable.
struct Staged {
    index: u64,
    process: Id,
    item: Option<Id>,
    hash: Option<[u8; 48]>,
}

/// In-flight facts of one shard, keyed by the shard-local index of the entry that made them.
#[derive(Default)]
pub(super) struct Pending {
    order: VecDeque<Staged>,
    tips: HashMap<Id, (u64, Tip)>,
    items: HashMap<(Id, Id), (u64, Receipt)>,
    hashes: HashMap<(Id, [u8; 48]), u64>,
}

impl Pending {
    /// Records the facts of the shard's `index`-th staged entry (indexes only grow).
    pub(super) fn stage(
        &mut self,
        index: u64,
        process: Id,
        tip: Tip,
        item: Option<(Id, Receipt)>,
        hash: Option<[u8; 48]>,
    ) {
        self.tips.insert(process, (index, tip));
        if let Some((id, receipt)) = item {
            self.items.insert((process, id), (index, receipt));
        }
        if let Some(hash) = hash {
            self.hashes.insert((process, hash), index);
        }
        self.order.push_back(Staged {
            index,
            process,
            item: item.map(|(id, _)| id),
            hash,
        });
    }

    /// Releases the facts of every entry with an index below `durable`, handing each tip that
    /// is still the newest of its process to `on_durable_tip` (the shard's cache).
    pub(super) fn settle(&mut self, durable: u64, mut on_durable_tip: impl FnMut(Id, Tip)) {
        while self
            .order
            .front()
            .is_some_and(|staged| staged.index < durable)
        {
            let staged = self.order.pop_front().expect("front exists");
            if let Some(&(index, tip)) = self.tips.get(&staged.process)
                && index == staged.index
            {
                self.tips.remove(&staged.process);
                on_durable_tip(staged.process, tip);
            }
            if let Some(id) = staged.item {
                let key = (staged.process, id);
                if self
                    .items
                    .get(&key)
                    .is_some_and(|(index, _)| *index == staged.index)
                {
                    self.items.remove(&key);
                }
            }
            if let Some(hash) = staged.hash {
                let key = (staged.process, hash);
                if self.hashes.get(&key) == Some(&staged.index) {
                    self.hashes.remove(&key);
                }
            }
        }
    }

    /// The newest staged tip of a process that is not durable yet.
    pub(super) fn tip(&self, process: &Id) -> Option<Tip> {
        self.tips.get(process).map(|(_, tip)| *tip)
    }

    /// The receipt of an item staged in a process and not durable yet.
    pub(super) fn item(&self, process: &Id, id: &Id) -> Option<Receipt> {
        self.items
            .get(&(*process, *id))
            .map(|(_, receipt)| *receipt)
    }

    /// Whether a dedupe hash was staged for the process and is not durable yet.
    pub(super) fn has_hash(&self, process: &Id, hash: &[u8; 48]) -> bool {
        self.hashes.contains_key(&(*process, *hash))
    }

    /// How many staged entries are not durable yet.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(nonce: u64) -> Tip {
        Tip {
            nonce,
            timestamp: nonce,
            hash_chain: [0; 32],
            assignment_id: [nonce as u8; 32],
        }
    }

    fn receipt(nonce: u64) -> Receipt {
        Receipt {
            id: [nonce as u8; 32],
            process: [1; 32],
            nonce,
            timestamp: nonce,
            assignment_id: [0; 32],
            fresh: true,
        }
    }

    #[test]
    fn facts_stay_until_their_entry_is_durable_and_only_the_newest_tip_is_released() {
        let mut pending = Pending::default();
        let process = [1; 32];
        pending.stage(
            0,
            process,
            tip(5),
            Some(([5; 32], receipt(5))),
            Some([5; 48]),
        );
        pending.stage(1, process, tip(6), Some(([6; 32], receipt(6))), None);
        assert_eq!(pending.tip(&process), Some(tip(6)));
        let mut released = Vec::new();
        pending.settle(1, |process, tip| released.push((process, tip)));
        // Entry 0 is durable, but a newer tip of the process is still in flight.
        assert!(released.is_empty());
        assert_eq!(pending.tip(&process), Some(tip(6)));
        assert_eq!(pending.item(&process, &[5; 32]), None);
        assert!(!pending.has_hash(&process, &[5; 48]));
        assert_eq!(pending.item(&process, &[6; 32]), Some(receipt(6)));
        assert_eq!(
            pending.item(&[2; 32], &[6; 32]),
            None,
            "another process's item"
        );
        pending.settle(2, |process, tip| released.push((process, tip)));
        assert_eq!(released, vec![(process, tip(6))]);
        assert_eq!(pending.tip(&process), None);
        assert_eq!(pending.len(), 0);
    }
}
