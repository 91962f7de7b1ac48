//! The committer: the one place where entries are admitted to the store. It drains what
//! the shards have signed, gives each entry the next global sequence, writes one synced
//! WriteBatch (group commit), and only then answers the clients.
//!
//! When a write fails (a full disk, an I/O error) or a shard panics, writes become unavailable
//! (`WriteHealth`): the committer answers everything it holds with 503, then keeps probing the
//! disk and, once it is writable, reopens the store, checks that a synced write succeeds,
//! reloads the global sequence and opens a new epoch. Entries staged before the fault are never
//! written afterwards (their epoch is old), so no nonce staged against a tip that is ahead of
//! the disk can reach it.

use super::command::AppendError;
use super::shard::Staged;
use super::{SequencerConfig, SequencerContext};
use crate::store::Commit;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a degraded committer tries to bring writes back.
pub(super) const RECOVERY_INTERVAL: Duration = Duration::from_secs(2);

/// How long a degraded committer waits for staged entries between recovery attempts.
const DEGRADED_POLL: Duration = Duration::from_millis(200);

pub(super) struct Committer {
    context: Arc<SequencerContext>,
    config: SequencerConfig,
    next_sequence: u64,
    /// Per shard, how many of its entries are durable: raised only after a write returns.
    durable: Vec<Arc<AtomicU64>>,
}

/// What the committer does next.
enum Next {
    Continue,
    /// Every shard has exited: the sequencer is stopping.
    Stop,
}

impl Committer {
    pub(super) fn new(
        context: Arc<SequencerContext>,
        config: SequencerConfig,
        next_sequence: u64,
        durable: Vec<Arc<AtomicU64>>,
    ) -> Self {
        Self {
            context,
            config,
            next_sequence,
            durable,
        }
    }

    pub(super) fn run(mut self, inbox: Receiver<Staged>) {
        loop {
            let next = if self.context.health.is_available() {
                self.commit_round(&inbox)
            } else {
                self.recover(&inbox)
            };
            if let Next::Stop = next {
                return;
            }
        }
    }

    /// Takes what is queued (waiting briefly for a first entry), writes it, and answers.
    fn commit_round(&mut self, inbox: &Receiver<Staged>) -> Next {
        let first = match inbox.recv_timeout(DEGRADED_POLL) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => return Next::Continue,
            Err(RecvTimeoutError::Disconnected) => return Next::Stop,
        };
        let mut round: Vec<Staged> = vec![first];
        round.extend(
            inbox
                .try_iter()
                .take(self.config.max_commit.saturating_sub(1)),
        );
        // A panic here (a bug) must not kill the thread: the round's clients are answered
        // with 503 when their replies drop, and writes go through recovery like any fault.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.commit(round)));
        if let Err(panic) = result {
            let cause = format!("the committer failed: {}", super::panic_message(&*panic));
            tracing::error!(cause, "writes are unavailable");
            self.context.health.fail(cause);
        }
        Next::Continue
    }

    fn commit(&mut self, mut round: Vec<Staged>) {
        // Entries staged in an earlier epoch rest on tips from before a fault: refuse them.
        let epoch = self.context.health.epoch();
        let (current, stale): (Vec<Staged>, Vec<Staged>) =
            round.drain(..).partition(|staged| staged.epoch == epoch);
        for staged in stale {
            self.refuse(staged);
        }
        let mut round = current;
        let mut commit = Commit {
            entries: Vec::with_capacity(round.len()),
            sync: self.config.sync,
            ..Default::default()
        };
        for staged in &mut round {
            if let Some(mut entry) = staged.entry.take() {
                staged.had_entry = true;
                entry.record.sequence = self.next_sequence;
                self.next_sequence += 1;
                commit.entries.push(entry);
            }
        }
        let started = Instant::now();
        if !commit.entries.is_empty() {
            if let Err(error) = self.context.store.write(&commit) {
                // The shards' tips are ahead of the disk now: nothing they staged may be
                // written. Writes stop until the store is reopened (`recover`).
                let cause = format!("the store could not write: {error}");
                tracing::error!(cause, "writes are unavailable");
                self.context.health.fail(cause);
                for staged in round {
                    self.refuse(staged);
                }
                return;
            }
            metrics::histogram!("su_store_commit_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("su_store_commit_entries").record(commit.entries.len() as f64);
            metrics::counter!("su_sequencer_entries_total").increment(commit.entries.len() as u64);
            // Only now may the shards forget these entries' in-flight facts.
            for staged in &round {
                if staged.had_entry {
                    self.durable[staged.shard].fetch_add(1, Ordering::Release);
                }
            }
            // Live reads wake before the clients are answered, so a reader never learns of
            // an entry later than its writer does.
            for entry in &commit.entries {
                self.context.notifier.publish(&entry.process, entry.nonce);
            }
        }
        for staged in round {
            let _ = staged.reply.send(staged.answer);
        }
    }

    /// Answers a staged request that will not be written with 503 and the fault's cause.
    fn refuse(&self, staged: Staged) {
        let cause = self.context.health.fault().map_or_else(
            || "writes were interrupted by a fault".to_owned(),
            |f| f.cause,
        );
        let _ = staged.reply.send(Err(AppendError::Unavailable(cause)));
    }

    /// While writes are unavailable: refuse what arrives, and every `RECOVERY_INTERVAL` try
    /// to bring the store back.
    fn recover(&mut self, inbox: &Receiver<Staged>) -> Next {
        let mut next_attempt = Instant::now() + RECOVERY_INTERVAL / 2;
        let mut attempts = 0u64;
        loop {
            match inbox.recv_timeout(DEGRADED_POLL) {
                Ok(staged) => self.refuse(staged),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Next::Stop,
            }
            if Instant::now() < next_attempt {
                continue;
            }
            attempts += 1;
            match self.try_recover() {
                Ok(()) => {
                    let down = self
                        .context
                        .health
                        .fault()
                        .map(|fault| fault.since.elapsed().as_millis() as u64);
                    self.context.health.recover();
                    tracing::info!(
                        unavailable_ms = down,
                        attempts,
                        "the store accepts writes again; writes resumed"
                    );
                    return Next::Continue;
                }
                Err(error) => {
                    if attempts == 1 || attempts % 15 == 0 {
                        tracing::warn!(%error, attempts, "writes still unavailable");
                    }
                    next_attempt = Instant::now() + RECOVERY_INTERVAL;
                }
            }
        }
    }

    /// Checks the disk takes a synced file, reopens the store, checks it takes a synced
    /// write, and reloads the next global sequence from it.
    fn try_recover(&mut self) -> Result<(), RecoveryError> {
        let store = &self.context.store;
        store.probe_disk().map_err(RecoveryError::Disk)?;
        store.reopen().map_err(RecoveryError::Store)?;
        store.check_writable().map_err(RecoveryError::Store)?;
        self.next_sequence = store.last_sequence().map_err(RecoveryError::Store)? + 1;
        Ok(())
    }
}

/// Why writes could not be brought back yet.
#[derive(Debug, thiserror::Error)]
enum RecoveryError {
    #[error("the data directory does not take a synced file yet: {0}")]
    Disk(#[source] std::io::Error),
    #[error("the reopened store does not take writes yet: {0}")]
    Store(#[source] crate::store::StoreError),
}
