//! Model test of the sequencer (shards and committer) on a real store, in process.
//!
//! Random runs of spawns, messages to hosted and unknown processes, idempotent re-posts,
//! assignments, and pushed messages with repeated dedupe hashes are sent in waves, every
//! request of a wave in flight at once, across restarts with 1 or 3 shards. Each outcome is
//! compared with a small model (per process: the entries so far, the receipts of its items
//! and its dedupe hashes), and the store is checked at the end: contiguous nonces, every
//! acknowledged id once, increasing timestamps, valid hash-chain links and signatures, and a
//! contiguous log.

use ao_su::ans104::{DataItem, ItemDraft, SignatureType, b64, verify::verify};
use ao_su::domain::{self, Id};
use ao_su::sequencer::{
    AppendError, DedupeHashes, Receipt, Rejection, Request, Sequencer, SequencerConfig,
    SequencerContext, WriteHealth,
};
use ao_su::store::records::{EntryKind, EntryRecord, IdRole};
use ao_su::store::{OpenMode, Store, StoreError, cf};
use ao_su::wallet::{SigningSalt, Wallet};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::task::Poll;

/// Process slots a run draws from; a slot's process exists once a `Spawn` of it succeeded.
const SLOTS: usize = 5;
const BLOCK_HEIGHT: u64 = 1_736_676;

/// The SU's key: RSA-4096 takes about a second to generate, so once per test binary.
fn su_wallet() -> Arc<Wallet> {
    static WALLET: OnceLock<Arc<Wallet>> = OnceLock::new();
    WALLET
        .get_or_init(|| {
            let jwk = Wallet::generate().unwrap();
            Arc::new(Wallet::from_jwk(&jwk, SigningSalt::Digest).unwrap())
        })
        .clone()
}

/// One client request, in terms of slots and pools; `Run::requests` makes it concrete.
#[derive(Debug, Clone)]
enum Op {
    /// Spawn the slot's process (a re-post of its Process item once it exists).
    Spawn(usize),
    /// A new message to the slot's process; `pushed` picks its (ordered, as-given) hashes.
    Message {
        slot: usize,
        pushed: Option<(u8, u8)>,
    },
    /// Re-post the n-th message sent so far (modulo their count), whatever became of it.
    Repost(usize),
    /// Assign a new transaction to the slot's process, with `excludes` Exclude values.
    Assign {
        slot: usize,
        pushed: Option<(u8, u8)>,
        excludes: usize,
    },
}

/// One life of the sequencer: started on the reopened store, fed `waves`, then stopped.
#[derive(Debug, Clone)]
struct Epoch {
    shards: usize,
    mailbox: usize,
    waves: Vec<Vec<Op>>,
}

#[derive(Debug, Clone)]
struct Run {
    dedupe_checks: bool,
    epochs: Vec<Epoch>,
}

/// What the model says a request gets.
#[derive(Clone, PartialEq, Eq)]
enum Expected {
    /// A new entry at this nonce.
    Fresh {
        process: Id,
        nonce: u64,
    },
    /// The receipt already given to this item of this process.
    Repeat {
        process: Id,
        id: Id,
    },
    Rejected(Rejection),
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fresh { process, nonce } => {
                write!(
                    f,
                    "a new entry at nonce {nonce} of {}",
                    b64::encode(process)
                )
            }
            Self::Repeat { process, id } => {
                let (id, process) = (b64::encode(id), b64::encode(process));
                write!(f, "the receipt of {id} in {process}")
            }
            Self::Rejected(rejection) => write!(f, "{rejection:?}"),
        }
    }
}

/// What the store must hold at one nonce.
struct ModelEntry {
    kind: EntryKind,
    /// The body's id, or the assigned transaction.
    message_id: Id,
    body: Option<Vec<u8>>,
    excludes: usize,
    /// Filled in when the request's reply arrives.
    receipt: Option<Receipt>,
}

#[derive(Default)]
struct ProcessModel {
    entries: Vec<ModelEntry>,
    /// Nonce of each scheduled item (process or message) by id.
    items: HashMap<Id, u64>,
    /// Ordered dedupe hashes recorded for the process.
    hashes: HashSet<[u8; 48]>,
}

/// The whole model: the hosted processes (a process is here once it is spawned).
struct Model {
    dedupe_checks: bool,
    processes: HashMap<Id, ProcessModel>,
}

impl Model {
    /// Predicts the outcome of `request`, sent after every request already applied, and
    /// records its effect.
    fn apply(&mut self, request: &Request) -> Expected {
        match request {
            Request::Process { process, item } => {
                if self.processes.contains_key(process) {
                    return Expected::Repeat {
                        process: *process,
                        id: *process,
                    };
                }
                let model = self.processes.entry(*process).or_default();
                model.items.insert(*process, 0);
                model.entries.push(ModelEntry {
                    kind: EntryKind::Process,
                    message_id: *process,
                    body: Some(item.clone()),
                    excludes: 0,
                    receipt: None,
                });
                Expected::Fresh {
                    process: *process,
                    nonce: 0,
                }
            }
            Request::Message {
                process,
                message,
                item,
                dedupe,
            } => {
                let scheduled = self
                    .processes
                    .get(process)
                    .map(|p| p.items.contains_key(message));
                if scheduled == Some(true) {
                    return Expected::Repeat {
                        process: *process,
                        id: *message,
                    };
                }
                self.admit(
                    process,
                    dedupe.as_ref(),
                    EntryKind::Message,
                    *message,
                    Some(item),
                    0,
                )
            }
            Request::Assign {
                process,
                transaction,
                exclude,
                dedupe,
            } => self.admit(
                process,
                dedupe.as_ref(),
                EntryKind::AssignmentOnly,
                *transaction,
                None,
                exclude.len(),
            ),
        }
    }

    fn admit(
        &mut self,
        process: &Id,
        dedupe: Option<&DedupeHashes>,
        kind: EntryKind,
        message_id: Id,
        body: Option<&Vec<u8>>,
        excludes: usize,
    ) -> Expected {
        let Some(model) = self.processes.get_mut(process) else {
            return Expected::Rejected(Rejection::ProcessNotFound);
        };
        if let Some(hashes) = dedupe {
            let seen = [&hashes.ordered, &hashes.unordered]
                .iter()
                .any(|hash| model.hashes.contains(*hash));
            if self.dedupe_checks && seen {
                return Expected::Rejected(Rejection::DeepHashExists);
            }
            model.hashes.insert(hashes.ordered);
        }
        let nonce = model.entries.len() as u64;
        if kind.has_body() {
            model.items.insert(message_id, nonce);
        }
        model.entries.push(ModelEntry {
            kind,
            message_id,
            body: body.cloned(),
            excludes,
            receipt: None,
        });
        Expected::Fresh {
            process: *process,
            nonce,
        }
    }

    /// Checks an outcome against its prediction; a fresh receipt is recorded for later repeats.
    fn check(&mut self, expected: Expected, outcome: Result<Receipt, AppendError>, what: &str) {
        match (expected, outcome) {
            (Expected::Fresh { process, nonce }, Ok(receipt)) => {
                let entry = &mut self.processes.get_mut(&process).unwrap().entries[nonce as usize];
                let id = match entry.kind {
                    EntryKind::AssignmentOnly => receipt.assignment_id,
                    _ => entry.message_id,
                };
                assert!(receipt.fresh, "{what}: a new entry is fresh");
                assert_eq!(
                    (receipt.process, receipt.nonce, receipt.id),
                    (process, nonce, id),
                    "{what}"
                );
                entry.receipt = Some(receipt);
            }
            (Expected::Repeat { process, id }, Ok(receipt)) => {
                let model = &self.processes[&process];
                let original = model.entries[model.items[&id] as usize]
                    .receipt
                    .expect("the original was answered first");
                let repeat = Receipt {
                    fresh: false,
                    ..original
                };
                assert_eq!(
                    receipt, repeat,
                    "{what}: a repeat gets the original receipt"
                );
            }
            (Expected::Rejected(rejection), Err(AppendError::Rejected(got))) => {
                assert_eq!(got, rejection, "{what}");
            }
            (expected, outcome) => panic!("{what}: expected {expected:?}, got {outcome:?}"),
        }
    }
}

/// How often each outcome happened in a run.
#[derive(Debug, Default)]
struct Tally {
    fresh: usize,
    repeats: usize,
    not_found: usize,
    deep_hash: usize,
    busy: usize,
}

/// The concrete items of a run: one Process item per slot, and every message sent so far.
struct Items {
    processes: Vec<(Id, Vec<u8>)>,
    messages: Vec<Request>,
    seed: u64,
}

fn placeholder_item(seed: u64, target: Option<Id>, tags: &[(&str, &str)]) -> (Vec<u8>, Id) {
    let draft = ItemDraft {
        signature_type: SignatureType::ARWEAVE,
        owner: vec![7; 512],
        target,
        anchor: None,
        tags: tags
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        data: format!("item {seed}").into_bytes(),
    };
    draft.finish_with_placeholder(seed)
}

/// A dedupe hash from a small pool, so that hashes repeat.
fn pool_hash(index: u8) -> [u8; 48] {
    [index + 1; 48]
}

fn hashes(pushed: Option<(u8, u8)>) -> Option<DedupeHashes> {
    pushed.map(|(ordered, as_given)| DedupeHashes {
        ordered: pool_hash(ordered),
        unordered: pool_hash(as_given),
    })
}

impl Items {
    fn new() -> Self {
        let processes = (0..SLOTS as u64)
            .map(|slot| {
                let tags = [("Data-Protocol", "ao"), ("Type", "Process")];
                let (item, process) = placeholder_item(1 << 32 | slot, None, &tags);
                (process, item)
            })
            .collect();
        Self {
            processes,
            messages: Vec::new(),
            seed: 0,
        }
    }

    fn next_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    fn request(&mut self, op: &Op) -> Option<Request> {
        Some(match op {
            Op::Spawn(slot) => {
                let (process, item) = self.processes[*slot].clone();
                Request::Process { process, item }
            }
            Op::Message { slot, pushed } => {
                let process = self.processes[*slot].0;
                let tags = [("Data-Protocol", "ao"), ("Type", "Message")];
                let (item, message) = placeholder_item(self.next_seed(), Some(process), &tags);
                let request = Request::Message {
                    process,
                    message,
                    item,
                    dedupe: hashes(*pushed),
                };
                self.messages.push(request.clone());
                request
            }
            Op::Repost(n) if !self.messages.is_empty() => {
                self.messages[n % self.messages.len()].clone()
            }
            Op::Repost(_) => return None,
            Op::Assign {
                slot,
                pushed,
                excludes,
            } => {
                let mut transaction = [0xa5; 32];
                transaction[..8].copy_from_slice(&self.next_seed().to_be_bytes());
                Request::Assign {
                    process: self.processes[*slot].0,
                    transaction,
                    exclude: (0..*excludes).map(|n| format!("exclude-{n}")).collect(),
                    dedupe: hashes(*pushed),
                }
            }
        })
    }
}

/// Polls a future once with the task's context, so requests are enqueued in program order.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

type Append<'a> = Pin<Box<dyn Future<Output = Result<Receipt, AppendError>> + 'a>>;

/// A request sent in a wave: answered at once, or still in flight.
enum Sent<'a> {
    Answered(Result<Receipt, AppendError>),
    InFlight(Append<'a>),
}

/// Sends every request of a wave at once (each enqueued before the next is built), then
/// checks the outcomes in send order, so an original is checked before its repeats.
async fn send_wave(
    sequencer: &Sequencer,
    epoch: &Epoch,
    wave: &[Op],
    label: &str,
    items: &mut Items,
    model: &mut Model,
    tally: &mut Tally,
) {
    let mut sent = Vec::new();
    for (op_index, op) in wave.iter().enumerate() {
        let Some(request) = items.request(op) else {
            continue;
        };
        let what = format!("{label} op {op_index} {op:?}");
        let mut append: Append<'_> = Box::pin(sequencer.append(request.clone()));
        let first = poll_once(&mut append).await;
        if let Poll::Ready(Err(AppendError::Busy)) = first {
            // Never enqueued, so no effect; only a wave larger than a mailbox can fill it.
            assert!(
                wave.len() > epoch.mailbox,
                "{what}: busy with room in the mailbox"
            );
            tally.busy += 1;
            continue;
        }
        let expected = model.apply(&request);
        let state = match first {
            Poll::Ready(outcome) => Sent::Answered(outcome),
            Poll::Pending => Sent::InFlight(append),
        };
        sent.push((expected, what, state));
    }
    for (expected, what, state) in sent {
        let outcome = match state {
            Sent::Answered(outcome) => outcome,
            Sent::InFlight(append) => append.await,
        };
        match &expected {
            Expected::Fresh { .. } => tally.fresh += 1,
            Expected::Repeat { .. } => tally.repeats += 1,
            Expected::Rejected(Rejection::ProcessNotFound) => tally.not_found += 1,
            Expected::Rejected(Rejection::DeepHashExists) => tally.deep_hash += 1,
        }
        model.check(expected, outcome, &what);
    }
}

/// Runs `run` on a fresh store, checking every outcome and then the store.
fn check_run(run: &Run) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut model = Model {
        dedupe_checks: run.dedupe_checks,
        processes: HashMap::new(),
    };
    let mut items = Items::new();
    let mut tally = Tally::default();
    for (epoch_index, epoch) in run.epochs.iter().enumerate() {
        // Each epoch reopens the store, so tips, repeats and dedupe hashes of earlier epochs
        // come from disk.
        let health = Arc::new(WriteHealth::default());
        let context = SequencerContext {
            store: Arc::new(Store::open(dir.path(), OpenMode::ReadWrite).unwrap()),
            wallet: su_wallet(),
            block_height: Arc::new(AtomicU64::new(BLOCK_HEIGHT)),
            dedupe_checks: run.dedupe_checks,
            health: health.clone(),
            notifier: ao_su::live::Notifier::new(),
            fault_injection: None,
        };
        let config = SequencerConfig {
            shards: epoch.shards,
            mailbox: epoch.mailbox,
            ..SequencerConfig::default()
        };
        let (sequencer, threads) = Sequencer::start(context, config).unwrap();
        for (wave_index, wave) in epoch.waves.iter().enumerate() {
            let label = format!("epoch {epoch_index} wave {wave_index}");
            runtime.block_on(send_wave(
                &sequencer, epoch, wave, &label, &mut items, &mut model, &mut tally,
            ));
        }
        drop(sequencer);
        threads.join();
        assert_eq!(health.epoch(), 0, "a store write failed");
    }
    check_store(dir.path(), &model);
    tally
}

/// An entry as read back from the store.
struct StoredEntry {
    nonce: u64,
    record: EntryRecord,
    assignment: Vec<u8>,
    body: Option<Vec<u8>>,
}

fn read_entries(store: &Store, process: &Id) -> Vec<StoredEntry> {
    let mut entries = Vec::new();
    store
        .scan_entries(process, 0, u64::MAX, |slot, record, read| {
            assert_eq!(slot.dup, 0, "su never writes a duplicate nonce");
            let nonce = slot.nonce;
            let assignment = read(&record.assignment_id)?.expect("assignment bytes are stored");
            let body = match record.kind.has_body() {
                true => read(&record.message_id)?,
                false => None,
            };
            entries.push(StoredEntry {
                nonce,
                record,
                assignment,
                body,
            });
            Ok::<_, StoreError>(true)
        })
        .unwrap();
    entries
}

/// The stored Assignment is signed by the SU and says exactly what its record says.
fn check_assignment(process: &Id, stored: &StoredEntry, entry: &ModelEntry, what: &str) {
    let item = DataItem::parse(&stored.assignment).unwrap();
    verify(&item).unwrap_or_else(|err| panic!("{what}: assignment signature: {err}"));
    assert_eq!(item.id(), stored.record.assignment_id, "{what}");
    assert_eq!(item.owner, su_wallet().owner(), "{what}");
    let fields = domain::AssignmentFields {
        process: *process,
        nonce: stored.nonce,
        hash_chain: stored.record.hash_chain,
        block_height: BLOCK_HEIGHT,
        timestamp: stored.record.timestamp,
        message: (entry.kind != EntryKind::Process).then_some(entry.message_id),
        exclude: (0..entry.excludes)
            .map(|n| format!("exclude-{n}"))
            .collect(),
    };
    let tags: Vec<(String, String)> = item
        .tags
        .iter()
        .map(|tag| (tag.name.to_string(), tag.value.to_string()))
        .collect();
    assert_eq!(tags, domain::assignment_tags(&fields), "{what}");
}

/// Every process's schedule equals the model's, and the log holds every entry once, in a
/// contiguous sequence.
fn check_store(dir: &Path, model: &Model) {
    let store = Store::open(dir, OpenMode::ReadOnly).unwrap();
    let mut hosted = store.processes_after(None, usize::MAX).unwrap();
    let mut spawned: Vec<Id> = model.processes.keys().copied().collect();
    hosted.sort_unstable();
    spawned.sort_unstable();
    assert_eq!(hosted, spawned, "the hosted processes are the spawned ones");
    let mut by_sequence: HashMap<u64, (Id, u64)> = HashMap::new();
    for (process, process_model) in &model.processes {
        let pid = b64::encode(process);
        let stored = read_entries(&store, process);
        assert_eq!(
            stored.len(),
            process_model.entries.len(),
            "{pid}: entry count"
        );
        let mut previous: Option<EntryRecord> = None;
        for (nonce, (stored, entry)) in stored.iter().zip(&process_model.entries).enumerate() {
            let what = format!("{pid} nonce {nonce}");
            let record = &stored.record;
            assert_eq!(
                stored.nonce, nonce as u64,
                "{what}: nonces are contiguous from 0"
            );
            let receipt = entry.receipt.expect("every entry was acknowledged");
            assert_eq!(
                (
                    record.kind,
                    record.message_id,
                    record.timestamp,
                    record.assignment_id
                ),
                (
                    entry.kind,
                    entry.message_id,
                    receipt.timestamp,
                    receipt.assignment_id
                ),
                "{what}: the record is what the client was told"
            );
            assert_eq!(stored.body, entry.body, "{what}: body bytes");
            let link = match &previous {
                None => domain::seed_hash_chain(process),
                Some(previous) => {
                    assert!(record.timestamp > previous.timestamp, "{what}: timestamp");
                    assert!(record.sequence > previous.sequence, "{what}: sequence");
                    domain::next_hash_chain(&previous.assignment_id, &previous.hash_chain)
                }
            };
            assert_eq!(record.hash_chain, link, "{what}: hash chain");
            check_assignment(process, stored, entry, &what);
            let duplicate = by_sequence.insert(record.sequence, (*process, nonce as u64));
            assert!(
                duplicate.is_none(),
                "{what}: sequence {} reused",
                record.sequence
            );
            previous = Some(*record);
        }
        for (id, nonce) in &process_model.items {
            let hits = store.find_id(id, None, usize::MAX).unwrap();
            let bodies: Vec<_> = hits.iter().filter(|hit| hit.role == IdRole::Body).collect();
            assert_eq!(
                bodies.len(),
                1,
                "{pid}: {} is scheduled once",
                b64::encode(id)
            );
            assert_eq!(
                (bodies[0].process, bodies[0].slot),
                (*process, ao_su::store::keys::Slot::nonce(*nonce))
            );
        }
        for hash in &process_model.hashes {
            assert!(
                store.has_dedupe(process, hash).unwrap(),
                "{pid}: dedupe hash"
            );
        }
    }
    let total = by_sequence.len() as u64;
    assert_eq!(store.last_sequence().unwrap(), total, "the last sequence");
    drop(store);
    check_log(dir, &by_sequence);
}

/// The `log` CF (schema/rocksdb.md): keys 1..=n, each naming its entry's process and nonce.
fn check_log(dir: &Path, by_sequence: &HashMap<u64, (Id, u64)>) {
    let options = rocksdb::Options::default();
    let db = rocksdb::DB::open_cf_for_read_only(&options, dir, cf::ALL, false).unwrap();
    let log = db.cf_handle(cf::LOG).unwrap();
    let mut count = 0u64;
    for row in db.iterator_cf(log, rocksdb::IteratorMode::Start) {
        let (key, value) = row.unwrap();
        count += 1;
        let sequence = u64::from_be_bytes(key[..].try_into().expect("8-byte log key"));
        assert_eq!(sequence, count, "log sequences are contiguous from 1");
        let (process, nonce) = by_sequence[&sequence];
        assert_eq!(&value[..32], &process[..], "log row {sequence}: process");
        assert_eq!(
            &value[32..],
            &nonce.to_be_bytes()[..],
            "log row {sequence}: nonce"
        );
    }
    assert_eq!(count, by_sequence.len() as u64, "one log row per entry");
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let pushed = proptest::option::weighted(0.4, (0..4u8, 0..4u8));
    prop_oneof![
        2 => slot.clone().prop_map(Op::Spawn),
        5 => (slot.clone(), pushed.clone()).prop_map(|(slot, pushed)| Op::Message { slot, pushed }),
        2 => (0..1000usize).prop_map(Op::Repost),
        1 => (slot, pushed, 0..3usize).prop_map(|(slot, pushed, excludes)| Op::Assign {
            slot,
            pushed,
            excludes
        }),
    ]
}

fn epoch() -> impl Strategy<Value = Epoch> {
    let shards = prop_oneof![Just(1usize), Just(3)];
    let mailbox = prop_oneof![4 => Just(1024usize), 1 => Just(4)];
    let waves = proptest::collection::vec(proptest::collection::vec(op(), 1..40), 1..4);
    (shards, mailbox, waves).prop_map(|(shards, mailbox, waves)| Epoch {
        shards,
        mailbox,
        waves,
    })
}

fn run() -> impl Strategy<Value = Run> {
    let epochs = proptest::collection::vec(epoch(), 1..4);
    (proptest::bool::weighted(0.8), epochs).prop_map(|(dedupe_checks, epochs)| Run {
        dedupe_checks,
        epochs,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_runs_match_the_model(run in run()) {
        check_run(&run);
    }
}

/// A fixed run that takes every path at least once: repeats in flight and from disk, both
/// rejections, both dedupe hashes, assignments, and a restart with another shard count.
#[test]
fn every_outcome_happens_in_a_scripted_run() {
    use Op::{Assign, Message, Repost, Spawn};
    let first = vec![
        Spawn(0),
        Message {
            slot: 0,
            pushed: None,
        },
        Message {
            slot: 1,
            pushed: None,
        },
        Repost(0),
        Message {
            slot: 0,
            pushed: Some((1, 1)),
        },
        Message {
            slot: 0,
            pushed: Some((1, 2)),
        },
        Message {
            slot: 0,
            pushed: Some((3, 1)),
        },
        Repost(2),
        Assign {
            slot: 0,
            pushed: None,
            excludes: 2,
        },
        Assign {
            slot: 0,
            pushed: Some((1, 1)),
            excludes: 0,
        },
        Assign {
            slot: 2,
            pushed: None,
            excludes: 0,
        },
        Spawn(0),
        Spawn(1),
        Message {
            slot: 1,
            pushed: Some((1, 1)),
        },
        Repost(1),
    ];
    let second = vec![
        Repost(0),
        Spawn(1),
        Message {
            slot: 0,
            pushed: Some((0, 1)),
        },
        Message {
            slot: 1,
            pushed: Some((1, 1)),
        },
        Message {
            slot: 2,
            pushed: None,
        },
        Spawn(2),
        Message {
            slot: 2,
            pushed: None,
        },
    ];
    let run = Run {
        dedupe_checks: true,
        epochs: vec![
            Epoch {
                shards: 3,
                mailbox: 1024,
                waves: vec![first],
            },
            Epoch {
                shards: 1,
                mailbox: 1024,
                waves: vec![second],
            },
        ],
    };
    let tally = check_run(&run);
    assert_eq!(tally.busy, 0);
    assert_eq!(
        (tally.fresh, tally.repeats, tally.not_found, tally.deep_hash),
        (9, 5, 3, 5),
        "{tally:?}"
    );
}
