//! `su verify [--process ID]`: walk the store and check every schedule.

use crate::ans104::{DataItem, b64, verify as signature};
use crate::domain::{self, Id};
use crate::store::records::{EntryKind, EntryRecord};
use crate::store::{ItemReader, OpenMode, Store, StoreError};
use anyhow::{Context, bail};
use argh::FromArgs;

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
}

fn inconsistent(message: &str) -> CheckError {
    CheckError::Inconsistent(message.to_string())
}

/// Loads an item, parses it, and checks that its id and signature verify.
fn load_verified(read: &ItemReader<'_>, id: &Id, what: &str) -> Result<Vec<u8>, CheckError> {
    let bytes = read(id)?.ok_or_else(|| inconsistent(&format!("{what} bytes missing")))?;
    let item =
        DataItem::parse(&bytes).map_err(|_| inconsistent(&format!("{what} does not parse")))?;
    if item.id() != *id || signature::verify(&item).is_err() {
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
    let scanned = store.scan_entries(process, 0, u64::MAX, |nonce, record, read| {
        let located = |error: CheckError| match error {
            CheckError::Inconsistent(message) => {
                CheckError::Inconsistent(format!("process {pid} nonce {nonce}: {message}"))
            }
            other => other,
        };
        let expected_nonce = report.entries;
        check_entry(
            store,
            process,
            &pid,
            (expected_nonce, nonce),
            &record,
            read,
            previous,
        )
        .map_err(located)?;
        report.signatures += 1 + u64::from(record.kind.has_body());
        report.entries += 1;
        previous = Some((record.assignment_id, record.hash_chain, record.timestamp));
        Ok::<bool, CheckError>(true)
    });
    match scanned {
        Ok(()) => {}
        Err(CheckError::Inconsistent(message)) => bail!(message),
        Err(CheckError::Store(error)) => return Err(error.into()),
    }
    let indexed = store.time_index_len(process)?;
    if indexed != report.entries {
        bail!(
            "process {pid}: {indexed} timestamp index keys for {} entries",
            report.entries
        );
    }
    Ok(report)
}

/// The checks of one entry: `(expected, found)` nonce, and the previous entry's assignment
/// id, chain and timestamp.
fn check_entry(
    store: &Store,
    process: &Id,
    pid: &str,
    (expected_nonce, nonce): (u64, u64),
    record: &EntryRecord,
    read: &ItemReader<'_>,
    previous: Option<(Id, [u8; 32], u64)>,
) -> Result<(), CheckError> {
    if nonce != expected_nonce {
        return Err(inconsistent(&format!(
            "expected nonce {expected_nonce} (gap)"
        )));
    }
    let assignment_bytes = load_verified(read, &record.assignment_id, "assignment")?;
    let assignment = DataItem::parse(&assignment_bytes)
        .map_err(|_| inconsistent("assignment does not parse"))?;
    let expected_chain = match &previous {
        None => domain::seed_hash_chain(process),
        Some((assignment_id, chain, _)) => domain::next_hash_chain(assignment_id, chain),
    };
    let chain_tag = assignment.tag("Hash-Chain").and_then(b64::decode_id);
    if chain_tag != Some(expected_chain) || record.hash_chain != expected_chain {
        return Err(inconsistent("hash chain link does not verify"));
    }
    if tag_u64(&assignment, "Nonce") != Some(nonce) || assignment.tag("Process") != Some(pid) {
        return Err(inconsistent(
            "assignment Nonce or Process tag disagrees with the index",
        ));
    }
    if tag_u64(&assignment, "Timestamp") != Some(record.timestamp)
        || previous.is_some_and(|(_, _, timestamp)| record.timestamp <= timestamp)
    {
        return Err(inconsistent(
            "timestamp is not strictly increasing or disagrees with the index",
        ));
    }
    if record.kind.has_body() {
        load_verified(read, &record.message_id, "message")?;
    }
    let message_tag = assignment.tag("Message").and_then(b64::decode_id);
    let expected_message = (record.kind != EntryKind::Process).then_some(record.message_id);
    if message_tag != expected_message {
        return Err(inconsistent(
            "assignment Message tag disagrees with the index",
        ));
    }
    if !store.entry_indexed(process, nonce, record)? {
        return Err(inconsistent("an index key of this entry is missing"));
    }
    Ok(())
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
    let (mut entries, mut signatures) = (0, 0);
    for process in &processes {
        let report = verify_process(&store, process)?;
        println!(
            "{} entries={} signatures={} ok",
            b64::encode(process),
            report.entries,
            report.signatures
        );
        entries += report.entries;
        signatures += report.signatures;
    }
    println!(
        "verified {} processes, {entries} entries, {signatures} signatures: ok",
        processes.len()
    );
    Ok(())
}
