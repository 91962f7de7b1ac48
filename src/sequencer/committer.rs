//! The committer: the one place where entries are admitted to the store. It drains what
//! the shards have signed, gives each entry the next global sequence, writes one synced
//! WriteBatch (group commit), and only then answers the clients.

use super::shard::Staged;
use super::{SequencerConfig, SequencerContext};
use crate::store::Commit;
use crossbeam_channel::Receiver;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub(super) struct Committer {
    context: Arc<SequencerContext>,
    config: SequencerConfig,
    next_sequence: u64,
    /// Per shard, how many of its entries are durable: raised only after a write returns.
    durable: Vec<Arc<AtomicU64>>,
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
        while let Ok(first) = inbox.recv() {
            let mut round: Vec<Staged> = vec![first];
            round.extend(
                inbox
                    .try_iter()
                    .take(self.config.max_commit.saturating_sub(1)),
            );
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
                    // Fail-stop: the shards' tips are ahead of the disk now. Dropping the
                    // replies answers every waiting client with 503; the server exits.
                    tracing::error!(%error, "store write failed; stopping the scheduler");
                    (self.context.on_fatal)();
                    return;
                }
                metrics::histogram!("su_store_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("su_store_commit_entries").record(commit.entries.len() as f64);
                metrics::counter!("su_sequencer_entries_total")
                    .increment(commit.entries.len() as u64);
                // Only now may the shards forget these entries' in-flight facts.
                for staged in &round {
                    if staged.had_entry {
                        self.durable[staged.shard].fetch_add(1, Ordering::Release);
                    }
                }
            }
            for staged in round {
                let _ = staged.reply.send(staged.answer);
            }
        }
    }
}
