//! Turns a stored reference wrapper of any era (PROTOCOL 1.6.2 and 1.6.3) into what the store
//! keeps: an entry (M1–M4, P2) or a legacy process (P1), with its bytes, nonce, chain and
//! timestamp as the reference recorded them; and checks what can be checked from the bytes
//! alone (signatures, dedupe hashes of pushed messages).

use crate::ans104::dedupe::{TagOrder, item_dedupe_hash};
use crate::ans104::{Bundle, DataItem, b64, verify};
use crate::domain::Id;
use crate::store::records::{DedupeHash, EntryKind, EntryRecord, Origin, RenderStyle};
use crate::store::{LegacyProcess, StagedEntry};

/// Why a wrapper cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("wrapper is not a data item: {0}")]
    Wrapper(String),
    #[error("wrapper data is not a bundle: {0}")]
    Bundle(String),
    #[error("bundle holds {0} items; expected 1 or 2")]
    ItemCount(usize),
    #[error("assignment lacks a valid {0} tag")]
    Tag(&'static str),
    #[error("process bundle holds {0} items; expected 1 or 2 (Invalid Process Bundle)")]
    ProcessItemCount(usize),
    #[error("era-M1 wrapper bundle holds {0} items; expected 1")]
    LegacyItemCount(usize),
}

fn tag<'a>(item: &DataItem<'a>, name: &'static str) -> Result<&'a str, ImportError> {
    item.tag(name).ok_or(ImportError::Tag(name))
}

/// Converts the data of a stored wrapper (an inner bundle) into an entry.
pub fn entry_from_inner_bundle(bundle_bytes: &[u8]) -> Result<StagedEntry, ImportError> {
    unpack_inner_bundle(bundle_bytes).map(|unpacked| unpacked.entry)
}

/// Converts a whole stored wrapper item (whose data is the inner bundle).
pub fn entry_from_wrapper(wrapper_bytes: &[u8]) -> Result<StagedEntry, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    entry_from_inner_bundle(wrapper.data)
}

/// A stored wrapper taken apart: what the store keeps of it, and the SU's and the client's
/// items, still borrowed from the wrapper's bytes, for `check` (so each is parsed once).
struct Unpacked<'a, T> {
    entry: T,
    /// The assignment, or the wrapper itself where it plays the assignment (M1, P1).
    su_item: DataItem<'a>,
    /// The message or process, if there is one.
    client_item: Option<DataItem<'a>>,
}

fn unpack_inner_bundle(bundle_bytes: &[u8]) -> Result<Unpacked<'_, StagedEntry>, ImportError> {
    let bundle = Bundle::parse(bundle_bytes).map_err(|e| ImportError::Bundle(e.to_string()))?;
    let count = bundle.items.len();
    let mut items = bundle.items.into_iter().zip(bundle.ids);
    let (Some((assignment, assignment_id)), body, None) =
        (items.next(), items.next(), items.next())
    else {
        return Err(ImportError::ItemCount(count));
    };
    let process =
        b64::decode_id(tag(&assignment, "Process")?).ok_or(ImportError::Tag("Process"))?;
    let nonce = tag(&assignment, "Nonce")?
        .parse()
        .map_err(|_| ImportError::Tag("Nonce"))?;
    let timestamp = tag(&assignment, "Timestamp")?
        .parse()
        .map_err(|_| ImportError::Tag("Timestamp"))?;
    let hash_chain =
        b64::decode_id(tag(&assignment, "Hash-Chain")?).ok_or(ImportError::Tag("Hash-Chain"))?;
    let (kind, message_id) = match &body {
        Some((_, id)) if *id == process => (EntryKind::Process, process),
        Some((_, id)) => (EntryKind::Message, *id),
        None => {
            let message =
                b64::decode_id(tag(&assignment, "Message")?).ok_or(ImportError::Tag("Message"))?;
            (EntryKind::AssignmentOnly, message)
        }
    };
    let body = body.map(|(item, _)| item);
    Ok(Unpacked {
        entry: StagedEntry {
            process,
            nonce,
            record: EntryRecord {
                kind,
                timestamp,
                sequence: 0,
                assignment_id,
                message_id,
                hash_chain,
                style: RenderStyle::Standard,
                origin: Origin::Imported,
            },
            dup: 0,
            assignment: assignment.raw().to_vec(),
            body: body.as_ref().map(|item| item.raw().to_vec()),
            dedupe_hashes: Vec::new(),
            upload: false,
        },
        su_item: assignment,
        client_item: body,
    })
}

/// What one stored wrapper becomes (its sequence and duplicate rank are set by the importer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Entry(StagedEntry),
    Legacy(LegacyProcess),
}

impl Parsed {
    /// The process it belongs to.
    pub fn process(&self) -> Id {
        match self {
            Self::Entry(entry) => entry.process,
            Self::Legacy(legacy) => legacy.process,
        }
    }
}

/// Parses a stored message wrapper: era M1 if the wrapper itself carries `Epoch` (the wrapper
/// plays the assignment and its bundle holds the message), else M2–M4.
pub fn parse_message_wrapper(wrapper_bytes: &[u8]) -> Result<StagedEntry, ImportError> {
    unpack_message_wrapper(wrapper_bytes).map(|unpacked| unpacked.entry)
}

/// `parse_message_wrapper`, then `check` on the items it parsed.
pub fn parse_and_check_message_wrapper(
    wrapper_bytes: &[u8],
    signatures: bool,
) -> Result<(StagedEntry, Checked), ImportError> {
    let unpacked = unpack_message_wrapper(wrapper_bytes)?;
    let pushed_candidate = unpacked.entry.record.kind == EntryKind::Message;
    let (checked, dedupe) = check(
        &unpacked.su_item,
        unpacked.client_item.as_ref(),
        pushed_candidate,
        signatures,
    );
    let mut entry = unpacked.entry;
    if let Some(hash) = dedupe {
        entry.dedupe_hashes = vec![hash];
    }
    Ok((entry, checked))
}

fn unpack_message_wrapper(wrapper_bytes: &[u8]) -> Result<Unpacked<'_, StagedEntry>, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    if wrapper.tag("Epoch").is_none() {
        return unpack_inner_bundle(wrapper.data);
    }
    let bundle = Bundle::parse(wrapper.data).map_err(|e| ImportError::Bundle(e.to_string()))?;
    let item_count = bundle.items.len();
    let (Ok([message]), [message_id]) = (
        <[DataItem; 1]>::try_from(bundle.items),
        bundle.ids.as_slice(),
    ) else {
        return Err(ImportError::LegacyItemCount(item_count));
    };
    let process = b64::decode_id(tag(&wrapper, "Process")?).ok_or(ImportError::Tag("Process"))?;
    let nonce = tag(&wrapper, "Nonce")?
        .parse()
        .map_err(|_| ImportError::Tag("Nonce"))?;
    let timestamp = tag(&wrapper, "Timestamp")?
        .parse()
        .map_err(|_| ImportError::Tag("Timestamp"))?;
    let hash_chain =
        b64::decode_id(tag(&wrapper, "Hash-Chain")?).ok_or(ImportError::Tag("Hash-Chain"))?;
    Ok(Unpacked {
        entry: StagedEntry {
            process,
            nonce,
            record: EntryRecord {
                kind: EntryKind::Message,
                timestamp,
                sequence: 0,
                assignment_id: wrapper.id(),
                message_id: *message_id,
                hash_chain,
                style: RenderStyle::LegacyWrapper,
                origin: Origin::Imported,
            },
            dup: 0,
            assignment: wrapper_bytes.to_vec(),
            body: Some(message.raw().to_vec()),
            dedupe_hashes: Vec::new(),
            upload: false,
        },
        su_item: wrapper,
        client_item: Some(message),
    })
}

/// Parses a stored process wrapper: P2 (`[assignment, process]`, an entry at nonce 0) or P1
/// (`[process]`, a legacy process whose wrapper carries Block-Height and Timestamp).
pub fn parse_process_wrapper(wrapper_bytes: &[u8]) -> Result<Parsed, ImportError> {
    unpack_process_wrapper(wrapper_bytes).map(|unpacked| unpacked.entry)
}

/// `parse_process_wrapper`, then `check` on the items it parsed.
pub fn parse_and_check_process_wrapper(
    wrapper_bytes: &[u8],
    signatures: bool,
) -> Result<(Parsed, Checked), ImportError> {
    let unpacked = unpack_process_wrapper(wrapper_bytes)?;
    let (checked, _) = check(
        &unpacked.su_item,
        unpacked.client_item.as_ref(),
        false,
        signatures,
    );
    Ok((unpacked.entry, checked))
}

fn unpack_process_wrapper(wrapper_bytes: &[u8]) -> Result<Unpacked<'_, Parsed>, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    let bundle = Bundle::parse(wrapper.data).map_err(|e| ImportError::Bundle(e.to_string()))?;
    match bundle.items.len() {
        2 => {
            let unpacked = unpack_inner_bundle(wrapper.data)?;
            Ok(Unpacked {
                entry: Parsed::Entry(unpacked.entry),
                su_item: unpacked.su_item,
                client_item: unpacked.client_item,
            })
        }
        1 => {
            let timestamp = tag(&wrapper, "Timestamp")?
                .parse()
                .map_err(|_| ImportError::Tag("Timestamp"))?;
            let process = bundle.items.into_iter().next();
            let process_id = bundle.ids[0];
            Ok(Unpacked {
                entry: Parsed::Legacy(LegacyProcess {
                    process: process_id,
                    sequence: 0,
                    timestamp,
                    item: process
                        .as_ref()
                        .map_or_else(Vec::new, |item| item.raw().to_vec()),
                    wrapper_id: wrapper.id(),
                    wrapper: wrapper_bytes.to_vec(),
                }),
                su_item: wrapper,
                client_item: process,
            })
        }
        other => Err(ImportError::ProcessItemCount(other)),
    }
}

/// What checking one parsed wrapper found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The address of the SU that signed it (the assignment's, or the wrapper's for M1/P1).
    pub signer: Id,
    /// Signatures verified (0 with signature checks off).
    pub signatures: u64,
    /// Why it does not verify, if it does not.
    pub failure: Option<String>,
}

/// Verifies the signatures of the items the store keeps of a wrapper (the SU's assignment or
/// legacy wrapper, and the client item), and finds the ordered dedupe hash of a pushed
/// message (one with a `From-Process` tag, PROTOCOL 4.6.2) for an entry that may be one.
fn check(
    su_item: &DataItem<'_>,
    client_item: Option<&DataItem<'_>>,
    pushed_candidate: bool,
    signatures: bool,
) -> (Checked, Option<DedupeHash>) {
    let mut checked = Checked {
        signer: su_item.owner_address(),
        ..Checked::default()
    };
    let dedupe = client_item
        .filter(|item| pushed_candidate && item.tag("From-Process").is_some())
        .map(|item| item_dedupe_hash(item, TagOrder::Sorted));
    if signatures {
        for (item, what) in [(Some(su_item), "assignment"), (client_item, "item")] {
            let Some(item) = item else { continue };
            if let Err(error) = verify::verify(item) {
                checked.failure = Some(format!(
                    "{what} {} signature does not verify: {error}",
                    b64::encode(&item.id())
                ));
                return (checked, None);
            }
            checked.signatures += 1;
        }
    }
    (checked, dedupe)
}
