//! Turns a stored reference wrapper (eras M2–M4 and P2: a bundle of `[assignment, item]` or
//! `[assignment]`) into a store entry, keeping its bytes, nonce, chain and timestamp as they
//! are. The base of `import-postgres`; today it loads the golden fixtures.

use crate::ans104::{Bundle, DataItem, b64};
use crate::store::StagedEntry;
use crate::store::records::{EntryKind, EntryRecord, Origin, RenderStyle};

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
