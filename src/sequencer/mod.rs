//! The sequencer: one single-writer shard thread per slice of processes, and one committer
//! thread that group-commits every shard's signed entries into synced WriteBatches.
//!
//! A shard owns the tips of its processes: it checks duplicates, takes the next nonce,
//! timestamp and hash-chain link, signs the Assignment, and hands the entry to the committer.
//! Clients are answered only by the committer, after the batch holding their entry is durable.

mod command;
mod committer;
mod health;
mod pending;
mod shard;

pub use command::{AppendError, DedupeHashes, Receipt, Rejection, Request};
pub use health::{Fault, WriteHealth};

use crate::domain::Id;
use crate::store::Store;
use crate::wallet::Wallet;
use crossbeam_channel::{Sender, TrySendError, bounded};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;

/// Sizes of the sequencer's queues and caches.
#[derive(Debug, Clone, Copy)]
pub struct SequencerConfig {
    pub shards: usize,
    pub mailbox: usize,
    /// Most entries the committer writes in one batch.
    pub max_commit: usize,
    /// Sync the WAL on every commit. Only benches turn this off.
    pub sync: bool,
    /// Durable tips each shard keeps in memory (`SU_TIP_CACHE_SIZE`); any value >= 1 is
    /// safe, since tips not yet durable are held apart and never evicted.
    pub tip_cache: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            shards: 2,
            mailbox: 1024,
            max_commit: 512,
            sync: true,
            tip_cache: 16_384,
        }
    }
}

/// Entries staged but not yet durable are bounded by the committer queue plus one commit.
const COMMITTER_QUEUE: usize = 4096;

type Reply = tokio::sync::oneshot::Sender<Result<Receipt, AppendError>>;

struct Envelope {
    request: Request,
    reply: Reply,
}

/// The handle the HTTP layer holds; cloning it is cheap.
#[derive(Clone)]
pub struct Sequencer {
    mailboxes: Arc<[Sender<Envelope>]>,
    health: Arc<WriteHealth>,
}

/// A hook that runs before a shard stages each request: tests use it to make a shard panic.
pub type FaultInjection = Box<dyn Fn(&Request) + Send + Sync>;

/// Shared state the shards read.
pub struct SequencerContext {
    pub store: Arc<Store>,
    pub wallet: Arc<Wallet>,
    pub block_height: Arc<AtomicU64>,
    /// Reject repeated dedupe hashes (`ENABLE_DEEP_HASH_CHECKS`); hashes are recorded anyway.
    pub dedupe_checks: bool,
    /// Whether writes are available; shared with whoever reports it.
    pub health: Arc<WriteHealth>,
    /// `None` outside tests of the fault handling.
    pub fault_injection: Option<FaultInjection>,
    /// Told each process's highest durable nonce after every synced write (live reads).
    pub notifier: Arc<crate::live::Notifier>,
}

/// The running threads; join them after dropping every `Sequencer` clone.
pub struct SequencerThreads {
    threads: Vec<JoinHandle<()>>,
}

impl SequencerThreads {
    /// Waits for the shards to drain and the committer to write what they staged.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// `first 8 bytes of the raw id, big-endian, mod n`.
pub fn shard_of(process: &Id, shards: usize) -> usize {
    let head = u64::from_be_bytes(process[..8].try_into().expect("8 bytes"));
    (head % shards.max(1) as u64) as usize
}

impl Sequencer {
    /// Starts the shard threads and the committer.
    pub fn start(
        context: SequencerContext,
        config: SequencerConfig,
    ) -> std::io::Result<(Self, SequencerThreads)> {
        let context = Arc::new(context);
        let next_sequence = context
            .store
            .last_sequence()
            .map_err(std::io::Error::other)?
            + 1;
        let (commit_tx, commit_rx) = bounded(COMMITTER_QUEUE);
        let mut threads = Vec::new();
        let shards = config.shards.max(1);
        let durable: Vec<Arc<AtomicU64>> = (0..shards).map(|_| Arc::default()).collect();
        let committer =
            committer::Committer::new(context.clone(), config, next_sequence, durable.clone());
        threads.push(
            std::thread::Builder::new()
                .name("su-committer".into())
                .spawn(move || committer.run(commit_rx))?,
        );
        let mut mailboxes = Vec::new();
        for (index, durable) in durable.iter().enumerate() {
            let (tx, rx) = bounded(config.mailbox);
            mailboxes.push(tx);
            let shard = shard::Shard::new(
                index,
                context.clone(),
                commit_tx.clone(),
                config.tip_cache,
                durable.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("su-shard-{index}"))
                    .spawn(move || shard.run(rx))?,
            );
        }
        Ok((
            Self {
                mailboxes: mailboxes.into(),
                health: context.health.clone(),
            },
            SequencerThreads { threads },
        ))
    }

    /// Schedules a request; resolves once its entry is durable (or it was a repeat).
    pub async fn append(&self, request: Request) -> Result<Receipt, AppendError> {
        let (reply, receipt) = tokio::sync::oneshot::channel();
        let shard = shard_of(request.process(), self.mailboxes.len());
        self.mailboxes[shard]
            .try_send(Envelope { request, reply })
            .map_err(|err| match err {
                TrySendError::Full(_) => AppendError::Busy,
                TrySendError::Disconnected(_) => AppendError::Stopped,
            })?;
        receipt.await.map_err(|_| AppendError::Stopped)?
    }

    /// Whether writes are available, and why not.
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    /// Requests waiting in each shard's mailbox.
    pub fn queue_depths(&self) -> Vec<usize> {
        self.mailboxes.iter().map(Sender::len).collect()
    }
}

/// The message of a caught panic, for the log and the 503 that reports it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic".to_owned()
    }
}
