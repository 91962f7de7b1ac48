//! Turns a stored reference wrapper of any era (PROTOCOL 1.6.2 and 1.6.3) into what the store
//! keeps: an entry (M1–M4, P2) or a legacy process (P1), with its bytes, nonce, chain and
//! timestamp as the reference recorded them; and checks what can be checked from the bytes
//! alone (signatures, dedupe hashes of pushed messages).

use crate::ans104::dedupe::{TagOrder, item_dedupe_hash};
use crate::ans104::{Bundle, DataItem, b64, verify};
use crate::domain::Id;
use crate::store::records::{EntryKind, EntryRecord, Origin, RenderStyle};
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
    let bundle = Bundle::parse(bundle_bytes).map_err(|e| ImportError::Bundle(e.to_string()))?;
    let (assignment, body) = match bundle.items.as_slice() {
        [assignment] => (assignment, None),
        [assignment, body] => (assignment, Some(body)),
        other => return Err(ImportError::ItemCount(other.len())),
    };
    let process = b64::decode_id(tag(assignment, "Process")?).ok_or(ImportError::Tag("Process"))?;
    let nonce = tag(assignment, "Nonce")?
        .parse()
        .map_err(|_| ImportError::Tag("Nonce"))?;
    let timestamp = tag(assignment, "Timestamp")?
        .parse()
        .map_err(|_| ImportError::Tag("Timestamp"))?;
    let hash_chain =
        b64::decode_id(tag(assignment, "Hash-Chain")?).ok_or(ImportError::Tag("Hash-Chain"))?;
    let (kind, message_id) = match body {
        Some(body) if body.id() == process => (EntryKind::Process, process),
        Some(body) => (EntryKind::Message, body.id()),
        None => {
            let message =
                b64::decode_id(tag(assignment, "Message")?).ok_or(ImportError::Tag("Message"))?;
            (EntryKind::AssignmentOnly, message)
        }
    };
    Ok(StagedEntry {
        process,
        nonce,
        record: EntryRecord {
            kind,
            timestamp,
            sequence: 0,
            assignment_id: assignment.id(),
            message_id,
            hash_chain,
            style: RenderStyle::Standard,
            origin: Origin::Imported,
        },
        dup: 0,
        assignment: assignment.raw().to_vec(),
        body: body.map(|item| item.raw().to_vec()),
        dedupe_hashes: Vec::new(),
        upload: false,
    })
}

/// Converts a whole stored wrapper item (whose data is the inner bundle).
pub fn entry_from_wrapper(wrapper_bytes: &[u8]) -> Result<StagedEntry, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    entry_from_inner_bundle(wrapper.data)
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

    /// The bytes the store keeps of it.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Entry(entry) => entry.assignment.len() + entry.body.as_ref().map_or(0, Vec::len),
            Self::Legacy(legacy) => legacy.item.len() + legacy.wrapper.len(),
        }
    }
}

/// Parses a stored message wrapper: era M1 if the wrapper itself carries `Epoch` (the wrapper
/// plays the assignment and its bundle holds the message), else M2–M4.
pub fn parse_message_wrapper(wrapper_bytes: &[u8]) -> Result<StagedEntry, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    if wrapper.tag("Epoch").is_none() {
        return entry_from_inner_bundle(wrapper.data);
    }
    let bundle = Bundle::parse(wrapper.data).map_err(|e| ImportError::Bundle(e.to_string()))?;
    let [message] = bundle.items.as_slice() else {
        return Err(ImportError::LegacyItemCount(bundle.items.len()));
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
    Ok(StagedEntry {
        process,
        nonce,
        record: EntryRecord {
            kind: EntryKind::Message,
            timestamp,
            sequence: 0,
            assignment_id: wrapper.id(),
            message_id: message.id(),
            hash_chain,
            style: RenderStyle::LegacyWrapper,
            origin: Origin::Imported,
        },
        dup: 0,
        assignment: wrapper_bytes.to_vec(),
        body: Some(message.raw().to_vec()),
        dedupe_hashes: Vec::new(),
        upload: false,
    })
}

/// Parses a stored process wrapper: P2 (`[assignment, process]`, an entry at nonce 0) or P1
/// (`[process]`, a legacy process whose wrapper carries Block-Height and Timestamp).
pub fn parse_process_wrapper(wrapper_bytes: &[u8]) -> Result<Parsed, ImportError> {
    let wrapper =
        DataItem::parse(wrapper_bytes).map_err(|e| ImportError::Wrapper(e.to_string()))?;
    let bundle = Bundle::parse(wrapper.data).map_err(|e| ImportError::Bundle(e.to_string()))?;
    match bundle.items.as_slice() {
        [_, _] => entry_from_inner_bundle(wrapper.data).map(Parsed::Entry),
        [process] => {
            let timestamp = tag(&wrapper, "Timestamp")?
                .parse()
                .map_err(|_| ImportError::Tag("Timestamp"))?;
            Ok(Parsed::Legacy(LegacyProcess {
                process: process.id(),
                sequence: 0,
                timestamp,
                item: process.raw().to_vec(),
                wrapper_id: wrapper.id(),
                wrapper: wrapper_bytes.to_vec(),
            }))
        }
        other => Err(ImportError::ProcessItemCount(other.len())),
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

/// Verifies the signatures of the items the store keeps of `parsed` (the SU's assignment or
/// legacy wrapper, and the client item), and records the ordered dedupe hash of a pushed
/// message (one with a `From-Process` tag, PROTOCOL 4.6.2) on the entry.
pub fn check(parsed: &mut Parsed, signatures: bool) -> Checked {
    let mut checked = Checked::default();
    let (su_item, client_item) = match &*parsed {
        Parsed::Entry(entry) => (&entry.assignment, entry.body.as_ref()),
        Parsed::Legacy(legacy) => (&legacy.wrapper, Some(&legacy.item)),
    };
    let pushed_candidate =
        matches!(&*parsed, Parsed::Entry(entry) if entry.record.kind == EntryKind::Message);
    let mut dedupe = None;
    for (bytes, what) in [(Some(su_item), "assignment"), (client_item, "item")] {
        let Some(bytes) = bytes else { continue };
        let item = match DataItem::parse(bytes) {
            Ok(item) => item,
            Err(error) => {
                checked.failure = Some(format!("{what} does not parse: {error}"));
                return checked;
            }
        };
        if what == "assignment" {
            checked.signer = item.owner_address();
        } else if pushed_candidate && item.tag("From-Process").is_some() {
            dedupe = Some(item_dedupe_hash(&item, TagOrder::Sorted));
        }
        if signatures {
            if let Err(error) = verify::verify(&item) {
                checked.failure = Some(format!(
                    "{what} {} signature does not verify: {error}",
                    b64::encode(&item.id())
                ));
                return checked;
            }
            checked.signatures += 1;
        }
    }
    if let (Parsed::Entry(entry), Some(hash)) = (parsed, dedupe) {
        entry.dedupe_hashes = vec![hash];
    }
    checked
}
