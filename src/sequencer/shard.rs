//! One shard: a thread that owns the tips of its processes and signs their Assignments.
//! It never awaits, never does network I/O and never sleeps.

use super::command::{AppendError, DedupeHashes, Receipt, Rejection, Request};
use super::{Envelope, Reply, SequencerContext};
use crate::domain::{self, AssignmentFields, Id, Tip};
use crate::store::records::{EntryKind, EntryRecord, IdRole};
use crate::store::{StagedEntry, StoreError};
use crossbeam_channel::{Receiver, Sender};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A signed entry on its way to the committer, with the reply to send once it is durable.
pub(super) struct Staged {
    pub entry: Option<StagedEntry>,
    pub receipt: Receipt,
    pub reply: Reply,
}

pub(super) struct Shard {
    index: usize,
    context: Arc<SequencerContext>,
    committer: Sender<Staged>,
    /// Tips of recently used processes, including entries not yet committed.
    tips: LruCache<Id, Tip>,
    /// Receipts of recently staged items by id, for idempotent repeats before they commit.
    recent_items: LruCache<Id, Receipt>,
    /// Dedupe hashes staged recently, per process.
    recent_hashes: LruCache<(Id, [u8; 48]), ()>,
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
        cache: usize,
    ) -> Self {
        let capacity = NonZeroUsize::new(cache).expect("cache size is positive");
        Self {
            index,
            context,
            committer,
            tips: LruCache::new(capacity),
            recent_items: LruCache::new(capacity),
            recent_hashes: LruCache::new(capacity),
        }
    }

    pub(super) fn run(mut self, inbox: Receiver<Envelope>) {
        let shard_label = self.index.to_string();
        while let Ok(Envelope { request, reply }) = inbox.recv() {
            let started = Instant::now();
            match self.stage(request) {
                Ok((entry, receipt)) => {
                    metrics::histogram!("su_sequencer_stage_seconds", "shard" => shard_label.clone())
                        .record(started.elapsed().as_secs_f64());
                    if self
                        .committer
                        .send(Staged {
                            entry,
                            receipt,
                            reply,
                        })
                        .is_err()
                    {
                        tracing::error!(shard = self.index, "committer stopped; shard exits");
                        return;
                    }
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }

    fn tip(&mut self, process: &Id) -> Result<Option<Tip>, StoreError> {
        if let Some(tip) = self.tips.get(process) {
            return Ok(Some(*tip));
        }
        let Some((nonce, record)) = self.context.store.last_entry(process)? else {
            return Ok(None);
        };
        // Only staging inserts into the cache: insertions then never outnumber staged
        // entries, so an uncommitted tip cannot be evicted (see `SHARD_CACHE`).
        Ok(Some(Tip {
            nonce,
            timestamp: record.timestamp,
            hash_chain: record.hash_chain,
            assignment_id: record.assignment_id,
        }))
    }

    /// The receipt of an item already scheduled in this process, if any.
    fn existing(&mut self, process: &Id, id: &Id) -> Result<Option<Receipt>, StoreError> {
        if let Some(receipt) = self.recent_items.get(id) {
            return Ok(Some(Receipt {
                fresh: false,
                ..*receipt
            }));
        }
        let hits = self.context.store.find_id(id, Some(process), usize::MAX)?;
        let Some(hit) = hits.into_iter().find(|hit| hit.role == IdRole::Body) else {
            return Ok(None);
        };
        let record = self.context.store.entry(process, hit.nonce)?;
        let assignment_id = record
            .ok_or(StoreError::Corrupt {
                what: "entry named by the id index",
            })?
            .assignment_id;
        Ok(Some(Receipt {
            id: *id,
            process: *process,
            nonce: hit.nonce,
            timestamp: hit.timestamp,
            assignment_id,
            fresh: false,
        }))
    }

    /// Rejects a request for a process this SU does not host, or whose dedupe hash repeats.
    fn admit(&mut self, process: &Id, dedupe: Option<&DedupeHashes>) -> Result<(), AppendError> {
        if self.tip(process).map_err(internal)?.is_none() {
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
            let recent = self.recent_hashes.contains(&(*process, *hash));
            if recent
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
        self.tips.put(
            process,
            Tip {
                nonce,
                timestamp,
                hash_chain,
                assignment_id,
            },
        );
        if kind.has_body() {
            self.recent_items.put(message_id, receipt);
        }
        if let Some(hashes) = &dedupe {
            self.recent_hashes.put((process, hashes.ordered), ());
        }
        let entry = StagedEntry {
            process,
            nonce,
            record,
            assignment,
            body,
            dedupe_hash: dedupe.map(|hashes| hashes.ordered),
        };
        Ok((Some(entry), receipt))
    }
}

fn internal(error: StoreError) -> AppendError {
    AppendError::Internal(error.to_string())
}
