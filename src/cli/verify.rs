//! `su verify [--process ID]`: walk the store and check every schedule.

use crate::ans104::verify::{self as signature, SaltHint};
use crate::ans104::{DataItem, b64};
use crate::domain::{self, Id};
use crate::store::keys::Slot;
use crate::store::records::{DedupeHash, EntryKind, EntryRecord, Origin, RenderStyle};
use crate::store::{ItemReader, OpenMode, Store, StoreError};
use anyhow::{Context, bail};
use argh::FromArgs;
use std::collections::HashSet;

/// Check every process: contiguous nonces, hash chain, signatures, stored bytes.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify")]
pub struct Args {
    /// check only this process
    #[argh(option)]
    pub process: Option<String>,
}

/// What one process's check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProcessReport {
    pub entries: u64,
    pub signatures: u64,
    /// Duplicate or missing nonces in imported history (DECISIONS 9): reported, not damage.
    pub legacy_anomalies: Vec<String>,
}

/// How an entry's nonce follows the previous entry's.
fn nonce_step(
    previous: Option<Slot>,
    slot: Slot,
    origin: Origin,
) -> Result<Option<String>, CheckError> {
    let expected = previous.map_or(0, |previous| previous.nonce + 1);
    if slot.nonce == expected && slot.dup == 0 {
        return Ok(None);
    }
    if origin == Origin::Scheduled {
        return Err(inconsistent(&format!("expected nonce {expected} (gap)")));
    }
    Ok(Some(if slot.dup > 0 {
        format!("duplicate nonce {} (copy {})", slot.nonce, slot.dup)
    } else {
        format!(
            "missing nonces {expected}..{}",
            slot.nonce.saturating_sub(1)
        )
    }))
}

fn tag_u64(item: &DataItem<'_>, name: &str) -> Option<u64> {
    item.tag(name).and_then(|value| value.parse().ok())
}

/// Why a check stopped: the store failed, or the data is inconsistent.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Inconsistent(String),
    /// The entry does not link to the one before it (hash chain or timestamp order).
    #[error("{0}")]
    Link(String),
}

fn inconsistent(message: &str) -> CheckError {
    CheckError::Inconsistent(message.to_string())
}

/// RSA-PSS salt hints for one process's walk: its assignments share one signer, and its
/// messages mostly one kind of client.
#[derive(Default)]
struct Hints {
    assignment: SaltHint,
    message: SaltHint,
}

/// Loads an item, parses it, and checks that its id and signature verify.
fn load_verified(
    read: &ItemReader<'_>,
    id: &Id,
    what: &str,
    hint: &mut SaltHint,
) -> Result<Vec<u8>, CheckError> {
    let bytes = read(id)?.ok_or_else(|| inconsistent(&format!("{what} bytes missing")))?;
    let item =
        DataItem::parse(&bytes).map_err(|_| inconsistent(&format!("{what} does not parse")))?;
    if item.id() != *id || signature::verify_hinted(&item, hint).is_err() {
        return Err(inconsistent(&format!(
            "{what} signature or id does not verify"
        )));
    }
    Ok(bytes)
}

/// Checks one process; the error names the first inconsistency.
pub fn verify_process(store: &Store, process: &Id) -> anyhow::Result<ProcessReport> {
    let pid = b64::encode(process);
    let mut report = ProcessReport::default();
    let mut previous: Option<(Id, [u8; 32], u64)> = None;
    let mut previous_slot: Option<Slot> = None;
    let mut listed: HashSet<DedupeHash> = HashSet::new();
    let mut hints = Hints::default();
    let scanned = store.scan_entries(process, 0, u64::MAX, |slot, record, read| {
        let nonce = slot.nonce;
        let located = |error: CheckError| match error {
            CheckError::Inconsistent(message) | CheckError::Link(message) => {
                CheckError::Inconsistent(format!("process {pid} nonce {nonce}: {message}"))
            }
            other => other,
        };
        if let Some(anomaly) = nonce_step(previous_slot, slot, record.origin).map_err(located)? {
            report
                .legacy_anomalies
                .push(format!("process {pid}: {anomaly}"));
        }
        match check_entry(
            store, process, &pid, slot, &record, read, previous, &mut hints,
        ) {
            // Imported history is kept as the reference recorded it: a broken link there (a
            // fork at a duplicate nonce, a gap) is listed, not damage.
            Err(CheckError::Link(message)) if record.origin == Origin::Imported => report
                .legacy_anomalies
                .push(format!("process {pid} nonce {nonce}: {message}")),
            checked => checked.map_err(located)?,
        }
        listed.extend(check_dedupe_rows(store, process, slot, &record).map_err(located)?);
        report.signatures += 1 + u64::from(record.kind.has_body());
        report.entries += 1;
        previous = Some((record.assignment_id, record.hash_chain, record.timestamp));
        previous_slot = Some(slot);
        Ok::<bool, CheckError>(true)
    });
    match scanned {
        Ok(()) => {}
        Err(CheckError::Inconsistent(message) | CheckError::Link(message)) => bail!(message),
        Err(CheckError::Store(error)) => return Err(error.into()),
    }
    let indexed = store.time_index_len(process)?;
    if indexed != report.entries {
        bail!(
            "process {pid}: {indexed} timestamp index keys for {} entries",
            report.entries
        );
    }
    // From layout version 2 on, every dedupe row is listed by the entry that recorded it (a
    // version-1 store, read before its upgrade, lists none).
    if store.schema_version()? >= 2 {
        let unlisted = store
            .dedupe_hashes(process)?
            .into_iter()
            .filter(|hash| !listed.contains(hash))
            .count();
        if unlisted > 0 {
            bail!("process {pid}: {unlisted} dedupe rows are listed by no entry");
        }
    }
    Ok(report)
}

/// The entry's dedupe hashes, each of which must have its `dedupe` row, and its `log` row.
fn check_dedupe_rows(
    store: &Store,
    process: &Id,
    slot: Slot,
    record: &EntryRecord,
) -> Result<Vec<DedupeHash>, CheckError> {
    if !store.log_names(record.sequence, process, slot)? {
        return Err(inconsistent(
            "the log row of its sequence names another entry",
        ));
    }
    let stored = store
        .stored_entry(process, slot)?
        .ok_or_else(|| inconsistent("entry vanished during the scan"))?;
    for hash in &stored.dedupe_hashes {
        if !store.has_dedupe(process, hash)? {
            return Err(inconsistent("a dedupe hash it lists has no dedupe row"));
        }
    }
    Ok(stored.dedupe_hashes)
}

/// The checks of one entry at `slot`, given the previous entry's assignment id, chain and
/// timestamp: its items and their signatures, its tags against the index, its index keys, and
/// last its link to the previous entry (`CheckError::Link`).
#[allow(clippy::too_many_arguments)] // one entry's whole context; a struct would only rename it
fn check_entry(
    store: &Store,
    process: &Id,
    pid: &str,
    slot: Slot,
    record: &EntryRecord,
    read: &ItemReader<'_>,
    previous: Option<(Id, [u8; 32], u64)>,
    hints: &mut Hints,
) -> Result<(), CheckError> {
    let nonce = slot.nonce;
    let assignment_bytes = load_verified(
        read,
        &record.assignment_id,
        "assignment",
        &mut hints.assignment,
    )?;
    let assignment = DataItem::parse(&assignment_bytes)
        .map_err(|_| inconsistent("assignment does not parse"))?;
    if tag_u64(&assignment, "Nonce") != Some(nonce) || assignment.tag("Process") != Some(pid) {
        return Err(inconsistent(
            "assignment Nonce or Process tag disagrees with the index",
        ));
    }
    if tag_u64(&assignment, "Timestamp") != Some(record.timestamp) {
        return Err(inconsistent(
            "assignment Timestamp disagrees with the index",
        ));
    }
    if record.kind.has_body() {
        load_verified(read, &record.message_id, "message", &mut hints.message)?;
    }
    let message_tag = assignment.tag("Message").and_then(b64::decode_id);
    let expected_message = (record.kind != EntryKind::Process).then_some(record.message_id);
    // An era-M1 wrapper names no Message: its bundle holds the message itself.
    if record.style == RenderStyle::Standard && message_tag != expected_message {
        return Err(inconsistent(
            "assignment Message tag disagrees with the index",
        ));
    }
    if !store.entry_indexed(process, slot, record)? {
        return Err(inconsistent("an index key of this entry is missing"));
    }
    let expected_chain = match &previous {
        None => domain::seed_hash_chain(process),
        Some((assignment_id, chain, _)) => domain::next_hash_chain(assignment_id, chain),
    };
    let chain_tag = assignment.tag("Hash-Chain").and_then(b64::decode_id);
    if chain_tag != Some(expected_chain) || record.hash_chain != expected_chain {
        return Err(CheckError::Link(
            "hash chain link does not verify".to_string(),
        ));
    }
    if previous.is_some_and(|(_, _, timestamp)| record.timestamp <= timestamp) {
        return Err(CheckError::Link(
            "timestamp is not strictly increasing".to_string(),
        ));
    }
    Ok(())
}

/// Checks the processes on one thread per core (processes are independent; one process is
/// walked in order by one thread). Reports come back in the order of `processes`; after a
/// failure the processes not started yet are skipped (`None`).
fn verify_in_parallel(
    store: &Store,
    processes: &[Id],
) -> Vec<Option<anyhow::Result<ProcessReport>>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let reports: Mutex<Vec<Option<anyhow::Result<ProcessReport>>>> =
        Mutex::new((0..processes.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(processes.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= processes.len() || failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let report = verify_process(store, &processes[index]);
                    if report.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut reports) = reports.lock() {
                        reports[index] = Some(report);
                    }
                }
            });
        }
    });
    reports
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn run(config: &crate::config::Config, args: Args) -> anyhow::Result<()> {
    let store = Store::open(&config.store.data_dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening the store at {}", config.store.data_dir.display()))?;
    let processes = match &args.process {
        Some(text) => vec![b64::decode_id(text).context("--process must be a 43-character id")?],
        None => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = store.processes_after(after.as_ref(), 10_000)?;
                let Some(last) = page.last().copied() else {
                    break;
                };
                all.extend(page);
                after = Some(last);
            }
            all
        }
    };
    let reports = verify_in_parallel(&store, &processes);
    let (mut entries, mut signatures, mut anomalies) = (0, 0, 0);
    for (process, report) in processes.iter().zip(reports) {
        // A process skipped because another failed has no report; the failure follows.
        let Some(report) = report else { continue };
        let report = report?;
        println!(
            "{} entries={} signatures={} legacy_anomalies={} ok",
            b64::encode(process),
            report.entries,
            report.signatures,
            report.legacy_anomalies.len()
        );
        for anomaly in &report.legacy_anomalies {
            println!("legacy anomaly (imported history, not damage): {anomaly}");
        }
        entries += report.entries;
        signatures += report.signatures;
        anomalies += report.legacy_anomalies.len();
    }
    println!(
        "verified {} processes, {entries} entries, {signatures} signatures, {anomalies} legacy anomalies: ok",
        processes.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(nonce: u64, dup: u16) -> Slot {
        Slot { nonce, dup }
    }

    #[test]
    fn gaps_written_by_su_are_damage_and_imported_ones_are_anomalies() {
        assert_eq!(
            nonce_step(None, slot(0, 0), Origin::Scheduled).unwrap(),
            None
        );
        assert_eq!(
            nonce_step(Some(slot(4, 0)), slot(5, 0), Origin::Scheduled).unwrap(),
            None
        );
        for (previous, next) in [
            (Some(slot(4, 0)), slot(6, 0)),
            (Some(slot(4, 0)), slot(4, 1)),
            (None, slot(1, 0)),
        ] {
            assert!(matches!(
                nonce_step(previous, next, Origin::Scheduled),
                Err(CheckError::Inconsistent(_))
            ));
        }
        assert_eq!(
            nonce_step(Some(slot(4, 0)), slot(7, 0), Origin::Imported).unwrap(),
            Some("missing nonces 5..6".to_string())
        );
        assert_eq!(
            nonce_step(Some(slot(4, 0)), slot(4, 1), Origin::Imported).unwrap(),
            Some("duplicate nonce 4 (copy 1)".to_string())
        );
        assert_eq!(
            nonce_step(Some(slot(4, 1)), slot(5, 0), Origin::Imported).unwrap(),
            None
        );
    }
}
