//! What a standby checks before it applies a change from its primary: every item's signature
//! and id, that every assignment is signed by the primary's wallet, that every hash-chain link
//! follows from the entry before it (held here, or earlier in the same page), and that nothing
//! contradicts what the standby already holds (a fork). History the primary imported is
//! applied as recorded, legacy anomalies included (DECISIONS 9).

use crate::ans104::verify::{self, SaltHint};
use crate::ans104::{DataItem, b64};
use crate::domain::{self, Id};
use crate::store::records::{EntryRecord, Origin};
use crate::store::{Change, StagedEntry, Store, StoreError};
use std::collections::HashMap;

/// Why a change is refused. `Fork` and `Invalid` stop the standby: it never follows a primary
/// whose history contradicts its own or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "fork at process {process} nonce {nonce}: the primary's assignment {theirs} differs from the one held here ({ours})"
    )]
    Fork {
        process: String,
        nonce: u64,
        theirs: String,
        ours: String,
    },
    #[error("change {sequence} (process {process} nonce {nonce}): {what}")]
    Invalid {
        sequence: u64,
        process: String,
        nonce: u64,
        what: String,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What to do with a verified change.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Apply,
    /// The standby holds exactly this already (a page fetched again after a crash).
    AlreadyHeld,
}

/// Verifies one page: the signatures of its items first, spread over `threads` threads (the
/// costly part: one RSA or curve operation per item), then the chain and fork checks in the
/// page's order. Returns the changes to apply, in order; the first failure in page order is
/// the error, whichever thread found it.
pub fn check_page(
    store: &Store,
    signer: Id,
    changes: Vec<Change>,
    threads: usize,
) -> Result<Vec<Change>, VerifyError> {
    let signatures = check_signatures(&changes, &signer, threads);
    let mut verifier = Verifier::new(store);
    let mut apply = Vec::with_capacity(changes.len());
    for (change, signatures) in changes.into_iter().zip(signatures) {
        if verifier.check(&change, signatures)? == Verdict::Apply {
            apply.push(change);
        }
    }
    Ok(apply)
}

/// What the signature pass found for one change: `Err` names the bad part.
pub type SignatureCheck = Result<(), String>;

/// The signature pass of `check_page` (alone, it measures the verification ceiling in
/// `su-loadgen --verify-ceiling`): each thread takes a contiguous run of the page.
pub fn check_signatures(changes: &[Change], signer: &Id, threads: usize) -> Vec<SignatureCheck> {
    let chunk = changes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = changes
            .chunks(chunk)
            .map(|run| {
                let worker = scope.spawn(move || {
                    let mut hints = Hints::default();
                    run.iter()
                        .map(|change| change_signatures(change, signer, &mut hints))
                        .collect::<Vec<_>>()
                });
                (run.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker.join().unwrap_or_else(|_| {
                    // Verification is panic-free by contract (ans104); should it ever fail,
                    // the run is refused rather than trusted.
                    vec![Err("signature verification panicked".into()); len]
                })
            })
            .collect()
    })
}

/// RSA-PSS salt hints of one thread: the primary signs every assignment with one salt length,
/// and clients mostly with one other.
#[derive(Default)]
struct Hints {
    assignment: SaltHint,
    item: SaltHint,
}

/// The signature checks of one change: an entry the primary scheduled carries an assignment
/// signed by the primary's wallet and, for a message or process, a valid item. Imported
/// history is applied as recorded.
fn change_signatures(change: &Change, signer: &Id, hints: &mut Hints) -> SignatureCheck {
    let Change::Entry(entry) = change else {
        return Ok(());
    };
    if entry.record.origin != Origin::Scheduled {
        return Ok(());
    }
    let assignment = checked_item(
        &entry.assignment,
        &entry.record.assignment_id,
        &mut hints.assignment,
    )
    .map_err(|what| format!("assignment: {what}"))?;
    if assignment.owner_address() != *signer {
        return Err(format!(
            "the assignment is signed by {}, not by the primary's wallet {}",
            b64::encode(&assignment.owner_address()),
            b64::encode(signer)
        ));
    }
    if let Some(body) = &entry.body {
        checked_item(body, &entry.record.message_id, &mut hints.item)
            .map_err(|what| format!("item: {what}"))?;
    }
    Ok(())
}

/// Checks the changes of one page in order, remembering the tips the page itself advances.
struct Verifier<'a> {
    store: &'a Store,
    tips: HashMap<Id, (u64, EntryRecord)>,
}

impl<'a> Verifier<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            tips: HashMap::new(),
        }
    }

    /// `signatures` is what the signature pass found for this change.
    fn check(
        &mut self,
        change: &Change,
        signatures: SignatureCheck,
    ) -> Result<Verdict, VerifyError> {
        match change {
            Change::Entry(entry) => self.check_entry(entry, signatures),
            Change::LegacyProcess(process) => {
                if let Some(held) = self.store.process(&process.process)? {
                    if held == process.record() {
                        return Ok(Verdict::AlreadyHeld);
                    }
                    return Err(VerifyError::Fork {
                        process: b64::encode(&process.process),
                        nonce: 0,
                        theirs: "a legacy process record".into(),
                        ours: "a different record".into(),
                    });
                }
                Ok(Verdict::Apply)
            }
        }
    }

    fn check_entry(
        &mut self,
        entry: &StagedEntry,
        signatures: SignatureCheck,
    ) -> Result<Verdict, VerifyError> {
        let invalid = |what: String| VerifyError::Invalid {
            sequence: entry.record.sequence,
            process: b64::encode(&entry.process),
            nonce: entry.nonce,
            what,
        };
        if let Some(held) = self.store.entry_at(&entry.process, entry.slot())? {
            if held.assignment_id == entry.record.assignment_id {
                return Ok(Verdict::AlreadyHeld);
            }
            return Err(VerifyError::Fork {
                process: b64::encode(&entry.process),
                nonce: entry.nonce,
                theirs: b64::encode(&entry.record.assignment_id),
                ours: b64::encode(&held.assignment_id),
            });
        }
        if entry.record.origin == Origin::Scheduled {
            signatures.map_err(invalid)?;
            if entry.dup != 0 {
                return Err(invalid("a scheduled entry with a duplicate rank".into()));
            }
            let expected = match entry.nonce {
                0 => domain::seed_hash_chain(&entry.process),
                nonce => {
                    let previous = match self.tips.get(&entry.process) {
                        Some((held, record)) if *held == nonce - 1 => Some(*record),
                        _ => self.store.entry(&entry.process, nonce - 1)?,
                    };
                    let previous = previous.ok_or_else(|| {
                        invalid(format!("nonce {} is not held: out of order", nonce - 1))
                    })?;
                    domain::next_hash_chain(&previous.assignment_id, &previous.hash_chain)
                }
            };
            if expected != entry.record.hash_chain {
                return Err(invalid(
                    "the hash chain does not follow from the previous entry".into(),
                ));
            }
        }
        self.tips.insert(entry.process, (entry.nonce, entry.record));
        Ok(Verdict::Apply)
    }
}

/// Parses and verifies an item and checks its id.
fn checked_item<'b>(bytes: &'b [u8], id: &Id, hint: &mut SaltHint) -> Result<DataItem<'b>, String> {
    let item = DataItem::parse(bytes).map_err(|error| error.to_string())?;
    verify::verify_hinted(&item, hint).map_err(|error| error.to_string())?;
    if item.id() != *id {
        return Err(format!(
            "its id is {}, not {}",
            b64::encode(&item.id()),
            b64::encode(id)
        ));
    }
    Ok(item)
}
