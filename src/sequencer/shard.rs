//! One shard: a thread that owns the tips of its processes and signs their Assignments.
//! It never awaits, never does network I/O and never sleeps.

use super::command::{AppendError, DedupeHashes, Receipt, Rejection, Request};
use super::pending::Pending;
use super::{Envelope, Reply, SequencerContext};
use crate::domain::{self, AssignmentFields, Id, Tip};
use crate::store::records::{EntryKind, EntryRecord, IdRole, Origin, RenderStyle};
use crate::store::{StagedEntry, StoreError};
use crossbeam_channel::{Receiver, Sender};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A signed entry on its way to the committer, with the reply to send once it is durable.
pub(super) struct Staged {
    /// The shard that staged it (the committer counts each shard's durable entries).
    pub shard: usize,
    /// The write epoch it was staged in; the committer writes only the current epoch's.
    pub epoch: u64,
    pub entry: Option<StagedEntry>,
    /// Set by the committer when it takes `entry` into a commit.
    pub had_entry: bool,
    /// What the client is told once the commit holding this (or an earlier) entry is durable:
    /// its receipt, or a rejection that rests on an entry still in flight.
    pub answer: Result<Receipt, AppendError>,
    pub reply: Reply,
}

pub(super) struct Shard {
    index: usize,
    context: Arc<SequencerContext>,
    committer: Sender<Staged>,
    /// Durable tips of recently used processes. Evicting one is always safe: the disk holds
    /// the same tip.
    tips: LruCache<Id, Tip>,
    /// Tips, item ids and dedupe hashes of entries staged but not yet durable; never evicted.
    pending: Pending,
    /// How many entries this shard has handed to the committer.
    staged: u64,
    /// How many of them the committer has made durable (it alone increments this).
    durable: Arc<AtomicU64>,
    /// Set when the current request's rejection rests on an entry not yet durable: it is then
    /// answered through the committer, after that entry's commit, never before.
    rejection_waits_for_commit: bool,
    /// The write epoch this shard's memory belongs to (`WriteHealth`).
    epoch: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl Shard {
    pub(super) fn new(
        index: usize,
        context: Arc<SequencerContext>,
        committer: Sender<Staged>,
        tip_cache: usize,
        durable: Arc<AtomicU64>,
    ) -> Self {
        let capacity = NonZeroUsize::new(tip_cache.max(1)).expect("at least 1");
        Self {
            index,
            context,
            committer,
            tips: LruCache::new(capacity),
            pending: Pending::default(),
            staged: 0,
            durable,
            rejection_waits_for_commit: false,
            epoch: 0,
        }
    }

    /// After a fault: forgets every tip and in-flight fact (they may be ahead of the disk),
    /// so tips are reloaded from the reopened store. The committer wrote nothing of the old
    /// epoch since the fault, so the durable counter is final for it.
    fn reset(&mut self, epoch: u64) {
        self.tips.clear();
        self.pending = Pending::default();
        self.staged = self.durable.load(Ordering::Acquire);
        self.epoch = epoch;
        tracing::info!(
            shard = self.index,
            epoch,
            "shard reloads its tips from the store"
        );
    }

    /// Moves the facts of entries the committer has made durable out of `pending`.
    fn settle(&mut self, shard_label: &str) {
        let durable = self.durable.load(Ordering::Acquire);
        let tips = &mut self.tips;
        self.pending.settle(durable, |process, tip| {
            tips.put(process, tip);
        });
        metrics::gauge!("su_sequencer_in_flight_entries", "shard" => shard_label.to_owned())
            .set(self.pending.len() as f64);
    }

    pub(super) fn run(mut self, inbox: Receiver<Envelope>) {
        let shard_label = self.index.to_string();
        while let Ok(Envelope { request, reply }) = inbox.recv() {
            let epoch = self.context.health.epoch();
            if epoch % 2 == 1 {
                let cause = self.context.health.fault().map(|fault| fault.cause);
                let _ = reply.send(Err(AppendError::Unavailable(
                    cause.unwrap_or_else(|| "writes are unavailable".to_owned()),
                )));
                continue;
            }
            if epoch != self.epoch {
                self.reset(epoch);
            }
            // A panic (a bug) must not kill the shard: its memory may be inconsistent, so
            // writes become unavailable until the committer has reopened the store and a new
            // epoch makes every shard reload its tips.
            let mut reply = Some(reply);
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.handle(request, &mut reply, epoch, &shard_label)
            }));
            match handled {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => {
                    let cause = format!(
                        "shard {} failed: {}",
                        self.index,
                        super::panic_message(&*panic)
                    );
                    tracing::error!(cause, "writes are unavailable");
                    self.context.health.fail(cause.clone());
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(AppendError::Unavailable(cause)));
                    }
                }
            }
        }
    }

    /// Stages one request and hands it to the committer (or answers it at once). Returns
    /// false when the committer is gone.
    fn handle(
        &mut self,
        request: Request,
        reply: &mut Option<Reply>,
        epoch: u64,
        shard_label: &str,
    ) -> bool {
        let started = Instant::now();
        if let Some(fault) = &self.context.fault_injection {
            fault(&request);
        }
        self.settle(shard_label);
        self.rejection_waits_for_commit = false;
        let (entry, answer) = match self.stage(request) {
            Ok((entry, receipt)) => {
                metrics::histogram!("su_sequencer_stage_seconds", "shard" => shard_label.to_owned())
                    .record(started.elapsed().as_secs_f64());
                (entry, Ok(receipt))
            }
            Err(error) if self.rejection_waits_for_commit => (None, Err(error)),
            Err(error) => {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(Err(error));
                }
                return true;
            }
        };
        let Some(reply) = reply.take() else {
            return true;
        };
        if entry.is_some() {
            self.staged += 1;
        }
        let staged = Staged {
            shard: self.index,
            epoch,
            entry,
            had_entry: false,
            answer,
            reply,
        };
        if self.committer.send(staged).is_err() {
            tracing::error!(shard = self.index, "committer stopped; shard exits");
            return false;
        }
        true
    }

    /// The process's newest tip: staged, else cached, else from disk. A tip not yet durable
    /// is always in `pending`, so the cache and the disk are only asked for durable tips.
    fn tip(&mut self, process: &Id) -> Result<Option<Tip>, StoreError> {
        if let Some(tip) = self.pending.tip(process) {
            return Ok(Some(tip));
        }
        if let Some(tip) = self.tips.get(process) {
            return Ok(Some(*tip));
        }
        let Some((nonce, record)) = self.context.store.last_entry(process)? else {
            return Ok(None);
        };
        Ok(Some(Tip {
            nonce,
            timestamp: record.timestamp,
            hash_chain: record.hash_chain,
            assignment_id: record.assignment_id,
        }))
    }

    /// The receipt of an item already scheduled in this process, if any.
    fn existing(&mut self, process: &Id, id: &Id) -> Result<Option<Receipt>, StoreError> {
        if let Some(receipt) = self.pending.item(process, id) {
            return Ok(Some(Receipt {
                fresh: false,
                ..receipt
            }));
        }
        let hits = self.context.store.find_id(id, Some(process), usize::MAX)?;
        let Some(hit) = hits.into_iter().find(|hit| hit.role == IdRole::Body) else {
            return Ok(None);
        };
        let record = self.context.store.entry_at(process, hit.slot)?;
        let assignment_id = record
            .ok_or(StoreError::Corrupt {
                what: "entry named by the id index",
            })?
            .assignment_id;
        Ok(Some(Receipt {
            id: *id,
            process: *process,
            nonce: hit.slot.nonce,
            timestamp: hit.timestamp,
            assignment_id,
            fresh: false,
        }))
    }

    /// Rejects a request for a process this SU does not host, or whose dedupe hash repeats.
    /// A process without entries is hosted when it has a record: an imported legacy (era P1)
    /// process, which has no entry of its own, takes its first message at nonce 0.
    fn admit(&mut self, process: &Id, dedupe: Option<&DedupeHashes>) -> Result<(), AppendError> {
        if self.tip(process).map_err(internal)?.is_none()
            && self
                .context
                .store
                .process(process)
                .map_err(internal)?
                .is_none()
        {
            return Err(Rejection::ProcessNotFound.into());
        }
        match dedupe {
            Some(hashes) => self.check_dedupe(process, hashes),
            None => Ok(()),
        }
    }

    fn check_dedupe(&mut self, process: &Id, hashes: &DedupeHashes) -> Result<(), AppendError> {
        if !self.context.dedupe_checks {
            return Ok(());
        }
        for hash in [&hashes.ordered, &hashes.unordered] {
            let in_flight = self.pending.has_hash(process, hash);
            if in_flight {
                self.rejection_waits_for_commit = true;
            }
            if in_flight
                || self
                    .context
                    .store
                    .has_dedupe(process, hash)
                    .map_err(internal)?
            {
                return Err(Rejection::DeepHashExists.into());
            }
        }
        Ok(())
    }

    fn stage(&mut self, request: Request) -> Result<(Option<StagedEntry>, Receipt), AppendError> {
        match request {
            Request::Process { process, item } => {
                if let Some(receipt) = self.existing(&process, &process).map_err(internal)? {
                    return Ok((None, receipt));
                }
                if self.tip(&process).map_err(internal)?.is_some() {
                    return Err(AppendError::Internal(
                        "process has entries but no record".into(),
                    ));
                }
                self.schedule(
                    process,
                    EntryKind::Process,
                    process,
                    Some(item),
                    None,
                    Vec::new(),
                )
            }
            Request::Message {
                process,
                message,
                item,
                dedupe,
            } => {
                if let Some(receipt) = self.existing(&process, &message).map_err(internal)? {
                    return Ok((None, receipt));
                }
                self.admit(&process, dedupe.as_ref())?;
                self.schedule(
                    process,
                    EntryKind::Message,
                    message,
                    Some(item),
                    dedupe,
                    Vec::new(),
                )
            }
            Request::Assign {
                process,
                transaction,
                exclude,
                dedupe,
            } => {
                self.admit(&process, dedupe.as_ref())?;
                self.schedule(
                    process,
                    EntryKind::AssignmentOnly,
                    transaction,
                    None,
                    dedupe,
                    exclude,
                )
            }
        }
    }

    fn schedule(
        &mut self,
        process: Id,
        kind: EntryKind,
        message_id: Id,
        body: Option<Vec<u8>>,
        dedupe: Option<DedupeHashes>,
        exclude: Vec<String>,
    ) -> Result<(Option<StagedEntry>, Receipt), AppendError> {
        let previous = self.tip(&process).map_err(internal)?;
        let (nonce, hash_chain) = match &previous {
            Some(tip) => (
                tip.nonce + 1,
                domain::next_hash_chain(&tip.assignment_id, &tip.hash_chain),
            ),
            None => (0, domain::seed_hash_chain(&process)),
        };
        let timestamp = domain::next_timestamp(now_ms(), previous.map(|tip| tip.timestamp));
        let fields = AssignmentFields {
            process,
            nonce,
            hash_chain,
            block_height: self.context.block_height.load(Ordering::Relaxed),
            timestamp,
            message: (kind != EntryKind::Process).then_some(message_id),
            exclude,
        };
        let wallet = &self.context.wallet;
        let draft = wallet.draft(domain::assignment_tags(&fields), Vec::new());
        let signing = Instant::now();
        let (assignment, assignment_id) = wallet
            .sign(&draft)
            .map_err(|err| AppendError::Internal(err.to_string()))?;
        metrics::histogram!("su_sequencer_sign_seconds").record(signing.elapsed().as_secs_f64());

        let record = EntryRecord {
            kind,
            timestamp,
            sequence: 0,
            assignment_id,
            message_id,
            hash_chain,
            style: RenderStyle::Standard,
            origin: Origin::Scheduled,
        };
        let id = if kind == EntryKind::AssignmentOnly {
            assignment_id
        } else {
            message_id
        };
        let receipt = Receipt {
            id,
            process,
            nonce,
            timestamp,
            assignment_id,
            fresh: true,
        };
        let tip = Tip {
            nonce,
            timestamp,
            hash_chain,
            assignment_id,
        };
        self.pending.stage(
            self.staged,
            process,
            tip,
            kind.has_body().then_some((message_id, receipt)),
            dedupe.as_ref().map(|hashes| hashes.ordered),
        );
        let entry = StagedEntry {
            process,
            nonce,
            record,
            assignment,
            dup: 0,
            body,
            dedupe_hashes: dedupe.map(|hashes| hashes.ordered).into_iter().collect(),
            upload: true,
        };
        Ok((Some(entry), receipt))
    }
}

/// A store error while staging: a fault of the disk is a 503 with its cause (nothing was
/// staged), anything else an internal error.
fn internal(error: StoreError) -> AppendError {
    if error.is_storage_fault() {
        AppendError::Unavailable(format!("the store could not be read: {error}"))
    } else {
        AppendError::Internal(error.to_string())
    }
}
