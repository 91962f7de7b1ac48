//! The import pipeline, shared by every source: a reader thread pages the source into a
//! bounded channel; the pipeline parses and verifies each page on every core, checks each
//! entry's place and link in (nonce, timestamp) order, numbers duplicate nonces, and writes
//! large unsynced batches, with a synced checkpoint (`meta/import_cursor`) every so often.
//! Interrupted at any point, a rerun resumes from the last checkpoint and rewrites the same
//! rows (every row is derived from the entry and its sequence, which the cursor carries), so
//! the store ends up identical to one from an uninterrupted run.

use super::assigned::{AssignedHash, AssignedHashes};
use super::cursor::{Cursor, Link, Position, RowKey, Totals};
use super::source::{Event, Source, SourceError, SourceRow};
use super::wrapper::{
    Checked, Parsed, parse_and_check_message_wrapper, parse_and_check_process_wrapper,
};
use crate::ans104::{DataItem, b64};
use crate::domain::{self, Id};
use crate::render::{self, MessageStyle};
use crate::store::keys::Slot;
use crate::store::records::{DataOverride, DedupeHash, EntryKind};
use crate::store::{Commit, StagedEntry, Store, StoreError};
use crossbeam_channel::{Receiver, bounded};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an import runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Verify every signature (off: `--skip-signatures`; hash-chain links are still checked).
    pub signatures: bool,
    /// Queue the imported items for upload again (`--reupload`).
    pub reupload: bool,
    /// Entries per source page and per write batch.
    pub page: usize,
    /// A checkpoint after this many entries...
    pub checkpoint_entries: u64,
    /// ...or this much time, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Threads that parse and verify.
    pub threads: usize,
    /// Where assigned transactions' dedupe hashes come from (the gateway); without it,
    /// assignment-only entries are imported without one and counted as not covered.
    pub assigned: Option<Arc<dyn AssignedHashes>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signatures: true,
            reupload: false,
            page: 1000,
            checkpoint_entries: 100_000,
            checkpoint_interval: Duration::from_secs(10),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            assigned: None,
        }
    }
}

/// Where the pipeline tells what it finds and how far it is.
pub trait Reporter {
    /// One line about one entry or process: a failure, an anomaly or a mismatch.
    fn problem(&mut self, line: &str);
    /// The running totals, after each page.
    fn progress(&mut self, totals: &Totals, total_entries: Option<u64>);
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// What the run ended with.
#[derive(Debug, Clone)]
pub struct Summary {
    pub totals: Totals,
    /// Whether the store was already complete when this run began.
    pub already_done: bool,
    pub signer: Option<Id>,
}

/// The process the pipeline is inside.
struct Current {
    id: Id,
    text: String,
    link: Option<Link>,
    after: Option<RowKey>,
    /// Its process wrapper does not verify: nothing of it is imported.
    skip: bool,
    /// The dedupe hashes the source recorded for it, listed on its entries at its end.
    recorded: Vec<DedupeHash>,
}

struct Pipeline<'a> {
    store: &'a Store,
    options: &'a Options,
    reporter: &'a mut dyn Reporter,
    cursor: Cursor,
    current: Option<Current>,
    commit: Commit,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    total_entries: Option<u64>,
    /// The checkpoint row's key.
    key: [u8; 33],
}

/// The `checkpoints` key of a source: its kind, then the SHA-256 of its identity.
pub fn checkpoint_key(kind: u8, identity: &str) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = kind;
    key[1..].copy_from_slice(&crate::ans104::item::sha256(identity.as_bytes()));
    key
}

/// Imports everything `source` holds into `store`, resuming from the store's cursor.
pub fn run(
    store: &Store,
    mut source: Box<dyn Source>,
    options: &Options,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ImportFailure> {
    let key = checkpoint_key(source.kind(), &source.identity());
    let cursor = match store.import_checkpoint(&key)? {
        Some(bytes) => Cursor::decode(&bytes).ok_or(StoreError::Corrupt {
            what: "import checkpoint",
        })?,
        None => {
            if store.last_sequence()? > 0 {
                return Err(ImportFailure::Refused(
                    "the store already holds history that no import wrote; import into an \
                     empty data dir (or resume with the same source)"
                        .to_string(),
                ));
            }
            Cursor::new(source.kind(), 1)
        }
    };
    if cursor.source != source.kind() {
        return Err(ImportFailure::Refused(
            "the store holds an import from another kind of source".to_string(),
        ));
    }
    if cursor.done {
        return Ok(Summary {
            totals: cursor.totals,
            already_done: true,
            signer: store.signer_address()?,
        });
    }
    let total_entries = source.total_entries()?;
    let (sender, events) = bounded(4);
    let (checked_sender, checked) = bounded(2);
    let start = cursor.process;
    let page = options.page;
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("su-import-read".into())
            .spawn_scoped(scope, move || {
                let result = read_source(source.as_mut(), start, page, &|event| {
                    sender.send(Ok(event)).is_ok()
                });
                if let Err(error) = result {
                    let _ = sender.send(Err(error));
                }
            })
            .map_err(|error| ImportFailure::Refused(format!("starting the reader: {error}")))?;
        // Pages are parsed and verified here while the writer places and writes the page
        // before, so the cores verify without pause.
        let (signatures, threads) = (options.signatures, options.threads);
        let checker = std::thread::Builder::new()
            .name("su-import-check".into())
            .spawn_scoped(scope, move || {
                for event in events {
                    let staged = event.map(|event| match event {
                        Event::Rows(rows) => {
                            let prepared = prepare(&rows, signatures, threads);
                            Staged::Rows(rows, prepared)
                        }
                        other => Staged::Event(other),
                    });
                    if checked_sender.send(staged).is_err() {
                        return;
                    }
                }
            })
            .map_err(|error| ImportFailure::Refused(format!("starting the checker: {error}")))?;
        let mut pipeline = Pipeline {
            store,
            options,
            reporter,
            cursor,
            current: None,
            commit: Commit {
                sync: false,
                ..Commit::default()
            },
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            total_entries,
            key,
        };
        let result = pipeline.consume(&checked);
        drop(checked);
        let _ = checker.join();
        let _ = reader.join();
        result
    })
}

/// The reader thread: walks the source from the cursor's position and hands over events; a
/// closed channel (the pipeline stopped) ends it.
fn read_source(
    source: &mut dyn Source,
    start: Option<(Id, Position)>,
    page: usize,
    send: &dyn Fn(Event) -> bool,
) -> Result<(), SourceError> {
    let entries = |source: &mut dyn Source, id: &str, mut after: Option<RowKey>| {
        loop {
            let rows = source.entries_after(id, after, page)?;
            // A page may hold fewer rows than asked (a source pages by nonce windows), so
            // only an empty page ends the process.
            let Some(last) = rows.last() else {
                break;
            };
            after = last.key;
            if !send(Event::Rows(rows)) {
                return Ok(false);
            }
            if after.is_none() {
                break;
            }
        }
        Ok::<bool, SourceError>(send(Event::ProcessEnd))
    };
    let mut after_process = None;
    match start {
        None => {}
        Some((id, Position::Complete)) => after_process = Some(b64::encode(&id)),
        Some((id, Position::Partial { after, .. })) => {
            let text = b64::encode(&id);
            let recorded = source.dedupe_hashes(&text)?;
            if !send(Event::Process {
                id: text.clone(),
                row: None,
                recorded,
            }) || !entries(source, &text, after)?
            {
                return Ok(());
            }
            after_process = Some(text);
        }
    }
    loop {
        let ids = source.processes_after(after_process.as_deref(), 1000)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(());
        };
        for id in ids {
            let row = source.process(&id)?;
            let recorded = source.dedupe_hashes(&id)?;
            if !send(Event::Process {
                id: id.clone(),
                row: row.map(Box::new),
                recorded,
            }) || !entries(source, &id, None)?
            {
                return Ok(());
            }
        }
        after_process = Some(last);
    }
}

/// One row parsed and checked, or why it could not be.
type Prepared = Result<(StagedEntry, Checked), String>;

/// What the checking stage hands the writer, in the reader's order.
enum Staged {
    /// A process begins or ends.
    Event(Event),
    /// A page of rows with what parsing and checking each one found.
    Rows(Vec<SourceRow>, Vec<Prepared>),
}

/// Rows a checking thread takes at a time: small enough that the threads finish a page
/// together (a signature costs the same everywhere, but the other work on the cores does not).
const CHECK_CHUNK: usize = 16;

/// Parses and checks one page on `threads` threads, keeping its order. The threads take
/// chunks of `CHECK_CHUNK` rows in turn, so no core waits for another's share.
fn prepare(rows: &[SourceRow], signatures: bool, threads: usize) -> Vec<Prepared> {
    let one = |row: &SourceRow| {
        if let Some(missing) = &row.missing {
            return Err(missing.clone());
        }
        parse_and_check_message_wrapper(&row.wrapper, signatures).map_err(|error| error.to_string())
    };
    let threads = threads.clamp(1, rows.len().div_ceil(CHECK_CHUNK).max(1));
    if threads == 1 {
        return rows.iter().map(one).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let start = next.fetch_add(CHECK_CHUNK, std::sync::atomic::Ordering::Relaxed);
            if start >= rows.len() {
                return done;
            }
            let end = (start + CHECK_CHUNK).min(rows.len());
            done.push((start, rows[start..end].iter().map(one).collect::<Vec<_>>()));
        }
    };
    let mut chunks: Vec<(usize, Vec<Prepared>)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut chunks = worker();
        for helper in helpers {
            match helper.join() {
                Ok(done) => chunks.extend(done),
                Err(_) => return Vec::new(),
            }
        }
        chunks
    });
    chunks.sort_unstable_by_key(|(start, _)| *start);
    let prepared: Vec<Prepared> = chunks.into_iter().flat_map(|(_, part)| part).collect();
    if prepared.len() != rows.len() {
        // A checking thread panicked: every row of the page is reported, none is imported.
        return rows
            .iter()
            .map(|_| Err("checking panicked".to_string()))
            .collect();
    }
    prepared
}

impl Pipeline<'_> {
    fn consume(
        &mut self,
        events: &Receiver<Result<Staged, SourceError>>,
    ) -> Result<Summary, ImportFailure> {
        let mut resume = match self.cursor.process {
            Some((id, Position::Partial { after, link })) => Some((id, after, link)),
            _ => None,
        };
        for event in events {
            match event? {
                Staged::Event(Event::Process { id, row, recorded }) => {
                    let resumed = resume.take();
                    match resumed {
                        Some((resumed_id, after, link)) if b64::encode(&resumed_id) == id => {
                            self.current = Some(Current {
                                id: resumed_id,
                                text: id,
                                link,
                                after,
                                skip: false,
                                recorded,
                            });
                        }
                        _ => self.begin_process(id, row.map(|row| *row), recorded),
                    }
                }
                Staged::Rows(rows, prepared) => self.rows(rows, prepared),
                Staged::Event(Event::Rows(rows)) => {
                    let prepared = prepare(&rows, self.options.signatures, self.options.threads);
                    self.rows(rows, prepared);
                }
                Staged::Event(Event::ProcessEnd) => self.end_process()?,
            }
            self.flush(false)?;
            self.reporter
                .progress(&self.cursor.totals, self.total_entries);
        }
        self.cursor.done = true;
        self.flush(true)?;
        Ok(Summary {
            totals: self.cursor.totals,
            already_done: false,
            signer: self.cursor.signer.map(|(_, address)| address),
        })
    }

    fn problem(&mut self, line: String) {
        self.reporter.problem(&line);
    }

    fn begin_process(&mut self, text: String, row: Option<SourceRow>, recorded: Vec<DedupeHash>) {
        let Some(id) = b64::decode_id(&text) else {
            self.cursor.totals.failures += 1;
            self.problem(format!(
                "not imported: process {text}: not a valid id; its entries are skipped"
            ));
            self.current = Some(Current {
                id: [0; 32],
                text,
                link: None,
                after: None,
                skip: true,
                recorded: Vec::new(),
            });
            return;
        };
        let mut current = Current {
            id,
            text,
            link: None,
            after: None,
            skip: false,
            recorded,
        };
        if let Some(row) = row {
            let checked = match row.missing {
                Some(missing) => Err(missing),
                None => parse_and_check_process_wrapper(&row.wrapper, self.options.signatures)
                    .map_err(|error| error.to_string()),
            };
            match checked {
                Ok((
                    _,
                    Checked {
                        failure: Some(failure),
                        ..
                    },
                ))
                | Err(failure) => {
                    self.cursor.totals.failures += 1;
                    self.problem(format!(
                        "not imported: process {}: its process wrapper: {failure}; its entries \
                         are skipped",
                        current.text
                    ));
                    current.skip = true;
                }
                Ok((parsed, _)) if parsed.process() != id => {
                    self.cursor.totals.failures += 1;
                    self.problem(format!(
                        "not imported: process {}: its wrapper holds process {}; its entries \
                         are skipped",
                        current.text,
                        b64::encode(&parsed.process())
                    ));
                    current.skip = true;
                }
                Ok((Parsed::Legacy(mut legacy), checked)) => {
                    self.keep_data(&id, &legacy.item, MessageStyle::Process, &row.stored_data);
                    legacy.sequence = self.next_sequence();
                    self.note_signer(legacy.timestamp, checked.signer);
                    self.cursor.totals.legacy_processes += 1;
                    self.cursor.totals.bytes += legacy.item_bytes() as u64;
                    self.cursor.totals.signatures += checked.signatures;
                    self.commit.legacy_processes.push(legacy);
                }
                Ok((Parsed::Entry(entry), checked)) => {
                    self.current = Some(current);
                    let process_row = SourceRow {
                        stored_data: row.stored_data,
                        ..SourceRow::default()
                    };
                    self.accept(entry, checked, &process_row, None);
                    self.cursor.process = self.position();
                    return;
                }
            }
        }
        self.current = Some(current);
        self.cursor.process = self.position();
    }

    fn rows(&mut self, rows: Vec<SourceRow>, prepared: Vec<Prepared>) {
        let Some(current) = &mut self.current else {
            return;
        };
        current.after = rows.last().and_then(|row| row.key).or(current.after);
        if current.skip {
            self.cursor.totals.failures += rows.len() as u64;
            return;
        }
        let mut assigned = self.look_up_assigned(&prepared).into_iter();
        for (row, prepared) in rows.iter().zip(prepared) {
            match prepared {
                Ok((entry, checked)) => {
                    let assigned = if needs_assigned_hash(&entry) {
                        assigned.next()
                    } else {
                        None
                    };
                    self.accept(entry, checked, row, assigned);
                }
                Err(error) => {
                    self.cursor.totals.failures += 1;
                    let text = self.current_text();
                    self.problem(format!(
                        "not imported: process {text} nonce {}: {error}",
                        row.nonce.map_or("?".to_string(), |n| n.to_string())
                    ));
                }
            }
        }
        self.cursor.process = self.position();
    }

    /// The gateway's answers for the page's assignment-only entries, in page order (none
    /// without a gateway, or when the source recorded the process's hashes itself).
    fn look_up_assigned(&self, prepared: &[Prepared]) -> Vec<AssignedHash> {
        let Some(assigned) = &self.options.assigned else {
            return Vec::new();
        };
        if self
            .current
            .as_ref()
            .is_some_and(|current| !current.recorded.is_empty())
        {
            return Vec::new();
        }
        let transactions: Vec<Id> = prepared
            .iter()
            .filter_map(|prepared| prepared.as_ref().ok())
            .filter(|(entry, _)| needs_assigned_hash(entry))
            .map(|(entry, _)| entry.record.message_id)
            .collect();
        if transactions.is_empty() {
            return Vec::new();
        }
        assigned.lookup(&transactions)
    }

    fn current_text(&self) -> String {
        self.current
            .as_ref()
            .map_or_else(String::new, |current| current.text.clone())
    }

    fn end_process(&mut self) -> Result<(), ImportFailure> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        if !current.skip {
            self.cursor.totals.processes += 1;
        }
        // A skipped process is complete too (reported once), unless its id is unusable.
        if !current.skip || current.id != [0; 32] {
            self.cursor.process = Some((current.id, Position::Complete));
        }
        if !current.skip && !current.recorded.is_empty() {
            self.list_recorded(&current.id, &current.recorded)?;
        }
        Ok(())
    }

    /// Lists the hashes the source recorded for a finished process that none of its entries
    /// lists (assignments of existing transactions: their bytes are not in the source), in one
    /// synced batch with the checkpoint that marks the process complete.
    fn list_recorded(
        &mut self,
        process: &Id,
        recorded: &[DedupeHash],
    ) -> Result<(), ImportFailure> {
        // The plan reads the process's entries: every one of them must be written first.
        let pending = (self.commit.entries.len() + self.commit.legacy_processes.len()) as u64;
        if pending > 0 {
            self.commit.sync = false;
            self.store.write_imported(&self.commit, None)?;
            self.commit.entries.clear();
            self.commit.legacy_processes.clear();
            self.commit.data_overrides.clear();
        }
        let plan = self.store.plan_recorded_hashes(process, recorded)?;
        self.cursor.totals.uncovered = self
            .cursor
            .totals
            .uncovered
            .saturating_sub(plan.covered_assignments);
        let cursor = self.cursor.encode();
        let signer = self.cursor.signer.map(|(_, address)| address);
        self.store.write_recorded_hashes(
            process,
            &plan,
            (&self.key[..], &cursor, signer.as_ref()),
        )?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn position(&self) -> Option<(Id, Position)> {
        match &self.current {
            Some(current) if !current.skip => Some((
                current.id,
                Position::Partial {
                    after: current.after,
                    link: current.link,
                },
            )),
            _ => self.cursor.process,
        }
    }

    fn next_sequence(&mut self) -> u64 {
        let sequence = self.cursor.next_sequence;
        self.cursor.next_sequence += 1;
        sequence
    }

    fn note_signer(&mut self, timestamp: u64, signer: Id) {
        if self.cursor.signer.is_none_or(|(seen, _)| timestamp >= seen) {
            self.cursor.signer = Some((timestamp, signer));
        }
    }

    /// Places one parsed, checked entry after the process's last one.
    fn accept(
        &mut self,
        mut entry: StagedEntry,
        checked: Checked,
        row: &SourceRow,
        assigned: Option<AssignedHash>,
    ) {
        let Some(current) = &self.current else {
            return;
        };
        let (pid, text, link) = (current.id, current.text.clone(), current.link);
        let nonce = entry.nonce;
        if let Some(failure) = checked.failure {
            self.cursor.totals.failures += 1;
            self.problem(format!(
                "not imported: process {text} nonce {nonce}: {failure}"
            ));
            return;
        }
        if entry.process != pid {
            self.cursor.totals.failures += 1;
            self.problem(format!(
                "not imported: process {text} nonce {nonce}: its assignment names process {}",
                b64::encode(&entry.process)
            ));
            return;
        }
        let mut anomalies = Vec::new();
        let expected = link.map_or(0, |link| link.slot.nonce + 1);
        let dup = match link {
            Some(link) if nonce < link.slot.nonce => {
                self.cursor.totals.failures += 1;
                self.problem(format!(
                    "not imported: process {text} nonce {nonce}: its Nonce tag is below the \
                     previous entry's ({})",
                    link.slot.nonce
                ));
                return;
            }
            Some(link) if nonce == link.slot.nonce => {
                let dup = link.slot.dup + 1;
                anomalies.push(format!("duplicate nonce {nonce} (copy {dup})"));
                dup
            }
            _ => {
                if nonce != expected {
                    anomalies.push(format!(
                        "missing nonces {expected}..{}",
                        nonce.saturating_sub(1)
                    ));
                }
                0
            }
        };
        let expected_chain = match &link {
            None => domain::seed_hash_chain(&pid),
            Some(link) => domain::next_hash_chain(&link.assignment_id, &link.hash_chain),
        };
        if entry.record.hash_chain != expected_chain {
            anomalies.push("hash chain link does not verify".to_string());
        }
        if link.is_some_and(|link| entry.record.timestamp <= link.timestamp) {
            anomalies.push("timestamp is not strictly increasing".to_string());
        }
        for anomaly in anomalies {
            self.cursor.totals.anomalies += 1;
            self.problem(format!(
                "legacy anomaly (kept): process {text} nonce {nonce}: {anomaly}"
            ));
        }
        for mismatch in column_mismatches(&entry, row) {
            self.cursor.totals.mismatches += 1;
            self.problem(format!(
                "column mismatch (the bytes win): process {text} nonce {nonce}: {mismatch}"
            ));
        }
        if needs_assigned_hash(&entry) {
            match assigned {
                Some(AssignedHash::Hash(hash)) => entry.dedupe_hashes = vec![hash],
                Some(AssignedHash::BaseLayer) => {}
                Some(AssignedHash::Unknown(why)) => {
                    self.cursor.totals.uncovered += 1;
                    self.problem(format!(
                        "no dedupe hash (not covered): process {text} nonce {nonce}: assigned \
                         transaction {}: {why}",
                        b64::encode(&entry.record.message_id)
                    ));
                }
                None => self.cursor.totals.uncovered += 1,
            }
        }
        if let Some(body) = &entry.body {
            let style = if entry.record.kind == EntryKind::Process {
                MessageStyle::Process
            } else {
                MessageStyle::Message
            };
            self.keep_data(&pid, body, style, &row.stored_data);
        }
        entry.dup = dup;
        entry.upload = self.options.reupload;
        entry.record.sequence = self.next_sequence();
        self.note_signer(entry.record.timestamp, checked.signer);
        let totals = &mut self.cursor.totals;
        totals.entries += 1;
        totals.signatures += checked.signatures;
        totals.bytes += entry.item_bytes() as u64;
        if let Some(current) = &mut self.current {
            current.link = Some(Link {
                slot: Slot { nonce, dup },
                assignment_id: entry.record.assignment_id,
                hash_chain: entry.record.hash_chain,
                timestamp: entry.record.timestamp,
            });
        }
        self.commit.entries.push(entry);
    }

    /// Keeps the `data` value the source's JSON column holds for the client item `bytes` of
    /// `process` where it differs from what the bytes render in `style` (PROTOCOL 9.2,
    /// guidance 2): the reference served that value, and so will `su serve`.
    fn keep_data(
        &mut self,
        process: &Id,
        bytes: &[u8],
        style: MessageStyle,
        stored: &Option<DataOverride>,
    ) {
        let Some(stored) = stored else {
            return;
        };
        let Ok(item) = DataItem::parse(bytes) else {
            return;
        };
        if render::rendered_data(item.data, style) != *stored {
            self.commit
                .data_overrides
                .push((*process, item.id(), stored.clone()));
        }
    }

    /// Writes what is pending: a plain unsynced batch, or, when a checkpoint is due (or
    /// `last`), a synced batch carrying the cursor and the signer.
    fn flush(&mut self, last: bool) -> Result<(), ImportFailure> {
        let pending = (self.commit.entries.len() + self.commit.legacy_processes.len()) as u64;
        let unsaved = self.since_checkpoint + pending;
        let due = last
            || unsaved >= self.options.checkpoint_entries
            || (unsaved > 0 && self.last_checkpoint.elapsed() >= self.options.checkpoint_interval);
        // Small processes gather into one batch until a page's worth is pending.
        if !due && pending < self.options.page as u64 {
            return Ok(());
        }
        self.commit.sync = due;
        let cursor = due.then(|| self.cursor.encode());
        let signer = self.cursor.signer.map(|(_, address)| address);
        self.store.write_imported(
            &self.commit,
            cursor
                .as_deref()
                .map(|cursor| (&self.key[..], cursor, signer.as_ref())),
        )?;
        self.commit.entries.clear();
        self.commit.legacy_processes.clear();
        self.commit.data_overrides.clear();
        self.since_checkpoint = unsaved;
        if due {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        }
        Ok(())
    }
}

/// Whether the entry is an assignment of an existing transaction with no dedupe hash yet.
fn needs_assigned_hash(entry: &StagedEntry) -> bool {
    entry.record.kind == EntryKind::AssignmentOnly && entry.dedupe_hashes.is_empty()
}

/// The source's columns that disagree with the entry's bytes.
fn column_mismatches(entry: &StagedEntry, row: &SourceRow) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(nonce) = row.nonce
        && u64::try_from(nonce).ok() != Some(entry.nonce)
    {
        found.push(format!("nonce column {nonce}, Nonce tag {}", entry.nonce));
    }
    if let Some(timestamp) = row.timestamp
        && u64::try_from(timestamp).ok() != Some(entry.record.timestamp)
    {
        found.push(format!(
            "timestamp column {timestamp}, Timestamp tag {}",
            entry.record.timestamp
        ));
    }
    if let Some(chain) = &row.hash_chain
        && b64::decode_id(chain) != Some(entry.record.hash_chain)
    {
        found.push(format!(
            "hash_chain column {chain}, Hash-Chain tag {}",
            b64::encode(&entry.record.hash_chain)
        ));
    }
    if let Some(assignment) = &row.assignment_id
        && b64::decode_id(assignment) != Some(entry.record.assignment_id)
    {
        found.push(format!(
            "assignment_id column {assignment}, assignment {}",
            b64::encode(&entry.record.assignment_id)
        ));
    }
    found
}
