//! The in-memory window of queued rows: per-row attempts, last error and capped exponential
//! backoff, the order rows are sent in, the rotating probe, and the oldest row's age.
//! Pure bookkeeping: no I/O and no clock of its own (callers pass `now`).

use crate::domain::Id;
use crate::store::OutboxRow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// An outbox key, as stored.
pub type Key = Vec<u8>;

/// What the engine knows about one queued row.
#[derive(Debug, Clone)]
pub struct RowState {
    pub id: Id,
    pub enqueued_ms: u64,
    /// Uploads started in this run.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The pause after the next failure.
    backoff: Duration,
    /// When the row may be sent again; `None` while an upload is in flight.
    pub due: Option<Instant>,
}

/// Rows loaded from the store and not yet delivered.
#[derive(Debug)]
pub struct Rows {
    states: BTreeMap<Key, RowState>,
    /// Rows not in flight, by the time they may be sent.
    schedule: BTreeSet<(Instant, Key)>,
    ages: BTreeSet<(u64, Key)>,
    first_backoff: Duration,
    max_backoff: Duration,
    probe_cursor: Key,
}

impl Rows {
    pub fn new(first_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            states: BTreeMap::new(),
            schedule: BTreeSet::new(),
            ages: BTreeSet::new(),
            first_backoff,
            max_backoff: max_backoff.max(first_backoff),
            probe_cursor: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&RowState> {
        self.states.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &RowState)> {
        self.states.iter()
    }

    /// Adds a row, due now; `false` when it is already known.
    pub fn insert(&mut self, row: OutboxRow, now: Instant) -> bool {
        if self.states.contains_key(&row.key) {
            return false;
        }
        self.schedule.insert((now, row.key.clone()));
        self.ages.insert((row.enqueued_ms, row.key.clone()));
        self.states.insert(
            row.key,
            RowState {
                id: row.id,
                enqueued_ms: row.enqueued_ms,
                attempts: 0,
                last_error: None,
                backoff: self.first_backoff,
                due: Some(now),
            },
        );
        true
    }

    fn start(&mut self, key: &Key) -> Option<(Key, Id, u32)> {
        let state = self.states.get_mut(key)?;
        if let Some(due) = state.due.take() {
            self.schedule.remove(&(due, key.clone()));
        }
        state.attempts += 1;
        Some((key.clone(), state.id, state.attempts))
    }

    /// The next row whose time has come, marked in flight: `(key, id, attempt number)`.
    pub fn next_due(&mut self, now: Instant) -> Option<(Key, Id, u32)> {
        let (due, key) = self.schedule.first()?.clone();
        if due > now {
            return None;
        }
        self.start(&key)
    }

    /// When the earliest waiting row becomes due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.schedule.first().map(|(due, _)| *due)
    }

    /// Whether any row is waiting out a backoff.
    pub fn backing_off(&self, now: Instant) -> bool {
        self.schedule.last().is_some_and(|(due, _)| *due > now)
    }

    /// Picks the next backing-off row after the previous probe (rotating, so one row the
    /// bundler always refuses cannot hide a recovery) and marks it in flight.
    pub fn pick_probe(&mut self, now: Instant) -> Option<(Key, Id, u32)> {
        let waiting = |state: &RowState| state.due.is_some_and(|due| due > now);
        let after = self
            .states
            .range::<Key, _>((
                std::ops::Bound::Excluded(&self.probe_cursor),
                std::ops::Bound::Unbounded,
            ))
            .find(|(_, state)| waiting(state));
        let key = match after {
            Some((key, _)) => key.clone(),
            None => self.states.iter().find(|(_, s)| waiting(s))?.0.clone(),
        };
        self.probe_cursor = key.clone();
        self.start(&key)
    }

    /// The row was accepted: forget it. `false` when it was dropped meanwhile.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(state) = self.states.remove(key) else {
            return false;
        };
        if let Some(due) = state.due {
            self.schedule.remove(&(due, key.to_vec()));
        }
        self.ages.remove(&(state.enqueued_ms, key.to_vec()));
        true
    }

    /// The upload failed: the row waits its backoff, which then doubles up to the cap.
    /// Returns the pause, or `None` when the row was dropped meanwhile.
    pub fn failed(&mut self, key: &[u8], error: String, now: Instant) -> Option<Duration> {
        let state = self.states.get_mut(key)?;
        let pause = state.backoff;
        state.backoff = (state.backoff * 2).min(self.max_backoff);
        state.last_error = Some(error);
        if let Some(due) = state.due.take() {
            self.schedule.remove(&(due, key.to_vec()));
        }
        state.due = Some(now + pause);
        self.schedule.insert((now + pause, key.to_vec()));
        Some(pause)
    }

    /// Ends the backoff of every waiting row (or those uploading `id`), which start over
    /// from the first pause; returns the keys released.
    pub fn release(&mut self, id: Option<&Id>, now: Instant) -> Vec<Key> {
        let waiting: Vec<(Instant, Key)> = self
            .schedule
            .iter()
            .filter(|(due, key)| {
                *due > now && id.is_none_or(|id| self.states.get(key).is_some_and(|s| &s.id == id))
            })
            .cloned()
            .collect();
        let mut released = Vec::with_capacity(waiting.len());
        for (due, key) in waiting {
            self.schedule.remove(&(due, key.clone()));
            self.schedule.insert((now, key.clone()));
            if let Some(state) = self.states.get_mut(&key) {
                state.due = Some(now);
                state.backoff = self.first_backoff;
            }
            released.push(key);
        }
        released
    }

    /// The enqueue time of the oldest row in the window.
    pub fn oldest_enqueued_ms(&self) -> Option<u64> {
        self.ages.first().map(|(ms, _)| *ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u8) -> OutboxRow {
        OutboxRow {
            key: vec![n],
            id: [n; 32],
            enqueued_ms: 100 + u64::from(n),
        }
    }

    #[test]
    fn backoff_is_per_row_doubling_and_capped() {
        let now = Instant::now();
        let mut rows = Rows::new(Duration::from_secs(1), Duration::from_secs(4));
        rows.insert(row(1), now);
        rows.insert(row(2), now);
        let (key, _, attempt) = rows.next_due(now).unwrap();
        assert_eq!((key.as_slice(), attempt), (&[1u8][..], 1));
        let pauses: Vec<u64> = (0..4)
            .map(|_| rows.failed(&key, "500".into(), now).unwrap().as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 4]);
        // The failing row does not hold the other one back.
        assert_eq!(rows.next_due(now).unwrap().0, vec![2]);
        assert!(rows.backing_off(now));
        assert_eq!(rows.next_wake(), Some(now + Duration::from_secs(4)));
    }

    #[test]
    fn probes_rotate_and_release_restarts_backoff() {
        let now = Instant::now();
        let mut rows = Rows::new(Duration::from_secs(1), Duration::from_secs(32));
        for n in 1..=3 {
            rows.insert(row(n), now);
            let (key, ..) = rows.next_due(now).unwrap();
            rows.failed(&key, "402".into(), now);
        }
        let probes: Vec<Key> = (0..4)
            .map(|_| {
                let (key, ..) = rows.pick_probe(now).unwrap();
                rows.failed(&key, "402".into(), now);
                key
            })
            .collect();
        assert_eq!(probes, [vec![1], vec![2], vec![3], vec![1]]);
        assert_eq!(rows.release(None, now).len(), 3);
        assert!(!rows.backing_off(now));
        let (key, _, attempts) = rows.next_due(now).unwrap();
        assert_eq!(
            rows.failed(&key, "x".into(), now),
            Some(Duration::from_secs(1))
        );
        assert!(attempts >= 2);
    }

    #[test]
    fn removal_tracks_the_oldest_row() {
        let now = Instant::now();
        let mut rows = Rows::new(Duration::from_secs(1), Duration::from_secs(32));
        rows.insert(row(2), now);
        rows.insert(row(1), now);
        assert!(!rows.insert(row(1), now));
        assert_eq!(rows.oldest_enqueued_ms(), Some(101));
        assert!(rows.remove(&[1]));
        assert!(!rows.remove(&[1]));
        assert_eq!(rows.oldest_enqueued_ms(), Some(102));
        assert_eq!(rows.len(), 1);
    }
}
