//! `su verify [--process ID]`: walk the store and check every schedule.

use crate::ans104::{DataItem, b64, verify as signature};
use crate::domain::{self, Id};
use crate::store::records::EntryKind;
use crate::store::{OpenMode, Store};
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

/// Checks one process; the error names the first inconsistency.
pub fn verify_process(store: &Store, process: &Id) -> anyhow::Result<ProcessReport> {
    let pid = b64::encode(process);
    let mut report = ProcessReport::default();
    let mut expected_nonce = 0u64;
    let mut previous: Option<(Id, [u8; 32], u64)> = None;
    let mut failure: Option<String> = None;
    store.scan_entries(
        process,
        0,
        u64::MAX,
        |nonce, record, read| -> Result<bool, crate::store::StoreError> {
            let fail = |message: String| Some(format!("process {pid} nonce {nonce}: {message}"));
            if nonce != expected_nonce {
                failure = fail(format!("expected nonce {expected_nonce} (gap)"));
                return Ok(false);
            }
            let Some(assignment_bytes) = read(&record.assignment_id)? else {
                failure = fail("assignment bytes missing".into());
                return Ok(false);
            };
            let Ok(assignment) = DataItem::parse(&assignment_bytes) else {
                failure = fail("assignment does not parse".into());
                return Ok(false);
            };
            if assignment.id() != record.assignment_id || signature::verify(&assignment).is_err() {
                failure = fail("assignment signature or id does not verify".into());
                return Ok(false);
            }
            report.signatures += 1;
            let expected_chain = match &previous {
                None => domain::seed_hash_chain(process),
                Some((assignment_id, chain, _)) => domain::next_hash_chain(assignment_id, chain),
            };
            let chain_tag = assignment.tag("Hash-Chain").and_then(b64::decode_id);
            if chain_tag != Some(expected_chain) || record.hash_chain != expected_chain {
                failure = fail("hash chain link does not verify".into());
                return Ok(false);
            }
            if tag_u64(&assignment, "Nonce") != Some(nonce)
                || assignment.tag("Process") != Some(pid.as_str())
            {
                failure = fail("assignment Nonce or Process tag disagrees with the index".into());
                return Ok(false);
            }
            let timestamp = tag_u64(&assignment, "Timestamp");
            if timestamp != Some(record.timestamp)
                || previous.is_some_and(|(_, _, t)| record.timestamp <= t)
            {
                failure =
                    fail("timestamp is not strictly increasing or disagrees with the index".into());
                return Ok(false);
            }
            if record.kind.has_body() {
                let Some(body_bytes) = read(&record.message_id)? else {
                    failure = fail("message bytes missing".into());
                    return Ok(false);
                };
                let Ok(body) = DataItem::parse(&body_bytes) else {
                    failure = fail("message does not parse".into());
                    return Ok(false);
                };
                if body.id() != record.message_id || signature::verify(&body).is_err() {
                    failure = fail("message signature or id does not verify".into());
                    return Ok(false);
                }
                report.signatures += 1;
            }
            let message_tag = assignment.tag("Message").and_then(b64::decode_id);
            let expected_message = (record.kind != EntryKind::Process).then_some(record.message_id);
            if message_tag != expected_message {
                failure = fail("assignment Message tag disagrees with the index".into());
                return Ok(false);
            }
            if !store.entry_indexed(process, nonce, &record)? {
                failure = fail("an index key of this entry is missing".into());
                return Ok(false);
            }
            previous = Some((record.assignment_id, expected_chain, record.timestamp));
            expected_nonce += 1;
            report.entries += 1;
            Ok(true)
        },
    )?;
    if let Some(message) = failure {
        bail!(message);
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

pub fn run(config: &crate::config::Config, args: Args) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening the store at {}", config.data_dir.display()))?;
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
