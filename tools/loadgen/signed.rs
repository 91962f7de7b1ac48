//! `--prefill-signed`: fills a store offline with schedules that verify end to end: every
//! Process item RSA-signed by a client wallet, every Message ed25519-signed (cheap to make),
//! every Assignment RSA-signed by the store's own wallet with a real hash chain, exactly as
//! `su serve` would have written them. For benchmarks that verify what they read (a standby's
//! catch-up); `su verify` accepts the result.
//!
//! Assignments of one process chain on each other's ids, so a process is signed in order;
//! processes are signed in parallel on every core, and one writer thread numbers the entries
//! and writes them in unsynced batches (a sync at the end).

use ao_su::ans104::{ItemDraft, SignatureType, b64};
use ao_su::domain::{self, AssignmentFields};
use ao_su::store::records::{EntryKind, EntryRecord};
use ao_su::store::{Commit, OpenMode, StagedEntry, Store};
use ao_su::wallet::{SigningSalt, Wallet};
use ed25519_dalek::{Signer, SigningKey};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const BLOCK_HEIGHT: u64 = 1_500_000;
const FIRST_TIMESTAMP: u64 = 1_700_000_000_000;
const BATCH: usize = 10_000;

/// Fills `dir` (which must hold an empty store) with `entries` entries over `processes`
/// processes, signing on `threads` threads.
pub fn prefill(dir: &Path, processes: usize, entries: u64, threads: usize) -> anyhow::Result<()> {
    let store = Store::open(dir, OpenMode::ReadWrite)?;
    anyhow::ensure!(
        store.last_sequence()? == 0,
        "--prefill-signed needs an empty store; {} holds entries",
        dir.display()
    );
    let wallet_path = dir.join("wallet.json");
    if !wallet_path.exists() {
        Wallet::write_new(&wallet_path, &Wallet::generate()?)?;
    }
    // `su serve`'s default salt (SU_SIGNING_SALT=32).
    let su = Arc::new(Wallet::load(&wallet_path, SigningSalt::Digest)?);
    store.put_signer_address(&su.address())?;
    let client = Arc::new(Wallet::from_jwk(&Wallet::generate()?, SigningSalt::Max)?);
    let key = Arc::new(SigningKey::from_bytes(&[42; 32]));

    let processes = processes.max(1);
    let per_process = (entries / processes as u64).max(1);
    let total = per_process * processes as u64;
    let (sender, receiver) = crossbeam_channel::bounded::<StagedEntry>(4 * BATCH);
    let next_process = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let signers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (su, client, key, sender, next_process) = (
                su.clone(),
                client.clone(),
                key.clone(),
                sender.clone(),
                next_process.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<()> {
                loop {
                    let index = next_process.fetch_add(1, Ordering::Relaxed);
                    if index >= processes {
                        return Ok(());
                    }
                    sign_process(&su, &client, &key, index, per_process, &sender)?;
                }
            })
        })
        .collect();
    drop(sender);

    let mut sequence = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_report = Instant::now();
    for mut entry in receiver {
        sequence += 1;
        entry.record.sequence = sequence;
        batch.push(entry);
        if batch.len() == BATCH {
            store.write(&Commit {
                entries: std::mem::take(&mut batch),
                sync: false,
                ..Default::default()
            })?;
            if last_report.elapsed().as_secs() >= 10 {
                last_report = Instant::now();
                let rate = sequence as f64 / started.elapsed().as_secs_f64();
                println!(
                    "prefill-signed: {sequence}/{total} entries, {rate:.0}/s, ETA {:.0} s",
                    (total - sequence) as f64 / rate
                );
            }
        }
    }
    store.write(&Commit {
        entries: batch,
        sync: true,
        ..Default::default()
    })?;
    for signer in signers {
        signer
            .join()
            .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
    }
    store.compact()?;
    println!(
        "prefill-signed: {sequence} entries over {processes} processes in {:.1} s (compacted); signer {}",
        started.elapsed().as_secs_f64(),
        su.address_b64()
    );
    Ok(())
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Signs one process's whole schedule, in nonce order, and hands each entry to the writer.
fn sign_process(
    su: &Wallet,
    client: &Wallet,
    key: &SigningKey,
    index: usize,
    per_process: u64,
    sender: &crossbeam_channel::Sender<StagedEntry>,
) -> anyhow::Result<()> {
    let scheduler = su.address_b64();
    let mut draft = client.draft(
        tags(&[
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Process"),
            ("Module", "ISShJH1ij-hPPt9St5UFFr_8Ys3Kj5cyg7zrMGt7H9s"),
            ("Scheduler", &scheduler),
            ("Name", &format!("prefill-{index}")),
        ]),
        format!("process {index}").into_bytes(),
    );
    draft.anchor = Some(anchor(index as u64, u64::MAX));
    let (process_bytes, process) = client.sign(&draft)?;
    let owner = key.verifying_key().to_bytes().to_vec();
    let target = b64::encode(&process);
    let mut previous: Option<([u8; 32], [u8; 32])> = None;
    for nonce in 0..per_process {
        let (kind, message_id, body) = if nonce == 0 {
            (EntryKind::Process, process, process_bytes.clone())
        } else {
            let draft = ItemDraft {
                signature_type: SignatureType::ED25519,
                owner: owner.clone(),
                target: Some(process),
                anchor: Some(anchor(index as u64, nonce)),
                tags: tags(&[
                    ("Data-Protocol", "ao"),
                    ("Variant", "ao.TN.1"),
                    ("Type", "Message"),
                    ("Action", "Eval"),
                ]),
                data: format!("message {nonce} to {target}").into_bytes(),
            };
            let signature = key.sign(&draft.signing_message()).to_bytes();
            let bytes = draft.finish(&signature);
            let id = ao_su::ans104::item::sha256(&signature);
            (EntryKind::Message, id, bytes)
        };
        let hash_chain = match previous {
            None => domain::seed_hash_chain(&process),
            Some((assignment, chain)) => domain::next_hash_chain(&assignment, &chain),
        };
        let timestamp = FIRST_TIMESTAMP + nonce;
        let fields = AssignmentFields {
            process,
            nonce,
            hash_chain,
            block_height: BLOCK_HEIGHT,
            timestamp,
            message: (nonce > 0).then_some(message_id),
            exclude: Vec::new(),
        };
        let (assignment, assignment_id) =
            su.sign(&su.draft(domain::assignment_tags(&fields), Vec::new()))?;
        previous = Some((assignment_id, hash_chain));
        let entry = StagedEntry {
            process,
            nonce,
            record: EntryRecord {
                kind,
                timestamp,
                sequence: 0,
                assignment_id,
                message_id,
                hash_chain,
                style: Default::default(),
                origin: Default::default(),
            },
            assignment,
            body: Some(body),
            dedupe_hashes: Vec::new(),
            dup: 0,
            upload: false,
        };
        if sender.send(entry).is_err() {
            anyhow::bail!("the writer stopped");
        }
    }
    Ok(())
}

/// A unique anchor per (process, nonce), so every message has its own id.
fn anchor(process: u64, nonce: u64) -> [u8; 32] {
    let mut anchor = [0u8; 32];
    anchor[..8].copy_from_slice(&process.to_be_bytes());
    anchor[8..16].copy_from_slice(&nonce.to_be_bytes());
    anchor
}

/// `--verify-ceiling`: how many entries per second the standby's signature pass alone checks
/// on `threads` threads, over the first `entries` entries of the store in `dir` (read into
/// memory first, so only verification is timed). The catch-up rate of `su sync` is quoted
/// against this.
pub fn ceiling(dir: &Path, entries: usize, threads: usize) -> anyhow::Result<()> {
    let store = Store::open(dir, OpenMode::ReadOnly)?;
    let signer = store
        .signer_address()?
        .ok_or_else(|| anyhow::anyhow!("{} records no signer", dir.display()))?;
    let mut changes = Vec::with_capacity(entries);
    while changes.len() < entries {
        let after = changes.len() as u64;
        let page = store.log_after_bounded(after, 1000, 16 << 20)?;
        if page.is_empty() {
            break;
        }
        changes.extend(page);
    }
    changes.truncate(entries);
    let started = Instant::now();
    let checks = ao_su::replication::verify::check_signatures(&changes, &signer, threads);
    let elapsed = started.elapsed().as_secs_f64();
    let failed = checks.iter().filter(|check| check.is_err()).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} entries did not verify",
        checks.len()
    );
    println!(
        "verify-ceiling: {} entries on {threads} threads in {elapsed:.2} s: {:.0} entries/s",
        checks.len(),
        checks.len() as f64 / elapsed
    );
    Ok(())
}
