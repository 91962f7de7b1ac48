//! The read model: schedule pages, single nodes, latest and process records, rendered from
//! stored bytes. Runs on blocking threads; reads go straight to the store, never to shards.

use crate::ans104::{DataItem, b64};
use crate::domain::Id;
use crate::render::{self, AssignmentStyle, MessageStyle, NodeParts};
use crate::store::records::{EntryKind, EntryRecord, IdRole, ProcessKind, RenderStyle};
use crate::store::{ItemReader, Store, StoreError};

/// Why a read failed; the messages of the `NotFound` cases are wire strings.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// wire: research/clients.md C12
    #[error("Message or Process not found")]
    MessageOrProcessNotFound,
    #[error("NotFound(\"Process not found\")")]
    ProcessNotFound,
    #[error("Latest message not available")]
    LatestNotAvailable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored item {0} is missing or unreadable")]
    BrokenItem(String),
}

/// Which cursor a page uses and its bounds (`from` exclusive, `to` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMode {
    Timestamp { from: Option<u64>, to: Option<u64> },
    Nonce { from: Option<u64>, to: Option<u64> },
}

/// A page request, validated by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub mode: PageMode,
    pub limit: usize,
    pub show_anchor: bool,
    pub max_read_bytes: usize,
}

fn load(read: &ItemReader<'_>, id: &Id) -> Result<Vec<u8>, ReadError> {
    read(id)?.ok_or_else(|| ReadError::BrokenItem(b64::encode(id)))
}

fn parse<'a>(bytes: &'a [u8], id: &Id) -> Result<DataItem<'a>, ReadError> {
    DataItem::parse(bytes).map_err(|_| ReadError::BrokenItem(b64::encode(id)))
}

/// Loads an entry's items and appends its node (or edge, with a cursor) to `out`.
/// Returns the number of item bytes read.
fn write_entry(
    out: &mut Vec<u8>,
    record: &EntryRecord,
    read: &ItemReader<'_>,
    show_anchor: bool,
    cursor: Option<u64>,
) -> Result<usize, ReadError> {
    let assignment_bytes = load(read, &record.assignment_id)?;
    let assignment = parse(&assignment_bytes, &record.assignment_id)?;
    let body_bytes = match record.kind {
        EntryKind::AssignmentOnly => None,
        EntryKind::Message | EntryKind::Process => Some(load(read, &record.message_id)?),
    };
    let body = match &body_bytes {
        Some(bytes) => Some(parse(bytes, &record.message_id)?),
        None => None,
    };
    let style = if record.kind == EntryKind::Process {
        MessageStyle::Process
    } else {
        MessageStyle::Message
    };
    let assignment_style = match record.style {
        RenderStyle::Standard => AssignmentStyle::Assignment,
        RenderStyle::LegacyWrapper => AssignmentStyle::LegacyWrapper,
    };
    let parts = NodeParts {
        assignment: &assignment,
        assignment_style,
        message: body.as_ref().map(|item| (item, style)),
    };
    match cursor {
        Some(cursor) => render::edge(out, &parts, show_anchor, cursor),
        None => render::node(out, &parts, show_anchor),
    }
    Ok(assignment_bytes.len() + body_bytes.map_or(0, |b| b.len()))
}

fn read_live(store: &Store) -> impl Fn(&Id) -> Result<Option<Vec<u8>>, StoreError> + '_ {
    move |id| store.item(id)
}

/// Whether this SU hosts the process.
pub fn is_process(store: &Store, process: &Id) -> Result<bool, ReadError> {
    Ok(store.process(process)?.is_some())
}

/// `GET /{process}`: one page of the schedule.
pub fn page(store: &Store, process: &Id, request: &PageRequest) -> Result<Vec<u8>, ReadError> {
    let (first, last, skip_process_entry) = match request.mode {
        // A first page starts at nonce 0, which is the process node for AOP-6 processes.
        PageMode::Timestamp { from: None, .. } => (Some(0), u64::MAX, false),
        PageMode::Timestamp {
            from: Some(from), ..
        } => (store.first_nonce_after(process, from)?, u64::MAX, true),
        PageMode::Nonce { from, to } => (
            from.map_or(Some(0), |from| from.checked_add(1)),
            to.unwrap_or(u64::MAX),
            false,
        ),
    };
    let time_limit = match request.mode {
        PageMode::Timestamp { to, .. } => to,
        PageMode::Nonce { .. } => None,
    };
    let cursor_of = |nonce: u64, record: &EntryRecord| match request.mode {
        PageMode::Timestamp { .. } => record.timestamp,
        PageMode::Nonce { .. } => nonce,
    };

    // Edges are rendered straight into the response; `has_next_page` is known only at the
    // end, so the flag is patched in place (one memmove, never a second page buffer).
    const PREFIX: &[u8] = b"{\"page_info\":{\"has_next_page\":false},\"edges\":[";
    let flag_at = PREFIX.len() - b"false},\"edges\":[".len();
    let mut edges = Vec::with_capacity(64 * 1024);
    edges.extend_from_slice(PREFIX);
    let mut n_edges = 0usize;
    let mut read_bytes = 0usize;
    let mut has_next = false;
    if let Some(first) = first {
        store.scan_entries(
            process,
            first,
            last,
            |slot, record, read| -> Result<bool, ReadError> {
                if skip_process_entry && record.kind == EntryKind::Process {
                    return Ok(true);
                }
                // The process node ignores `to`; timestamps grow with the nonce, so the first
                // entry past `to` ends the page.
                if time_limit
                    .is_some_and(|to| record.kind != EntryKind::Process && record.timestamp > to)
                {
                    return Ok(false);
                }
                if n_edges >= request.limit || (n_edges > 0 && read_bytes >= request.max_read_bytes)
                {
                    has_next = true;
                    return Ok(false);
                }
                if n_edges > 0 {
                    edges.push(b',');
                }
                let cursor = Some(cursor_of(slot.nonce, &record));
                read_bytes += write_entry(&mut edges, &record, read, request.show_anchor, cursor)?;
                n_edges += 1;
                Ok(true)
            },
        )?;
    }
    edges.extend_from_slice(b"]}");
    if has_next {
        edges.splice(flag_at..flag_at + 5, *b"true");
    }
    Ok(edges)
}

/// `GET /{id}?process-id=`: the oldest entry of that id (in that process when given).
pub fn node_by_id(
    store: &Store,
    id: &Id,
    process: Option<&Id>,
    show_anchor: bool,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut hits = store.find_id(id, process, 10_000)?;
    hits.retain(|hit| hit.role != IdRole::Assigned);
    // Within one process key order is nonce order; across processes pick the oldest time.
    let Some(hit) = hits.into_iter().min_by_key(|hit| (hit.timestamp, hit.slot)) else {
        return Ok(None);
    };
    let Some(record) = store.entry_at(&hit.process, hit.slot)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(4096);
    write_entry(&mut out, &record, &read_live(store), show_anchor, None)?;
    Ok(Some(out))
}

/// `GET /{process}/latest`: the highest nonce; the process node when that is all there is.
pub fn latest(store: &Store, process: &Id, show_anchor: bool) -> Result<Vec<u8>, ReadError> {
    let Some((_, record)) = store.last_entry(process)? else {
        return Err(ReadError::LatestNotAvailable);
    };
    let mut out = Vec::with_capacity(4096);
    write_entry(&mut out, &record, &read_live(store), show_anchor, None)?;
    Ok(out)
}

/// `GET /processes/{id}`: the process record.
pub fn process_record(store: &Store, process: &Id) -> Result<Vec<u8>, ReadError> {
    let Some(process_record) = store.process(process)? else {
        return Err(ReadError::ProcessNotFound);
    };
    // The item with the process's Block-Height and Timestamp tags: its nonce-0 Assignment
    // (AOP-6), or the reference's wrapper of a legacy process.
    let (tagged_id, fallback_timestamp) = match process_record.kind {
        ProcessKind::Aop6 => {
            let record = store.entry(process, 0)?.ok_or(ReadError::ProcessNotFound)?;
            (record.assignment_id, record.timestamp)
        }
        ProcessKind::Legacy { wrapper_id } => (wrapper_id, process_record.timestamp),
    };
    let assignment_bytes = load(&read_live(store), &tagged_id)?;
    let assignment = parse(&assignment_bytes, &tagged_id)?;
    let process_bytes = load(&read_live(store), process)?;
    let process_item = parse(&process_bytes, process)?;
    let block = assignment.tag("Block-Height").unwrap_or("");
    let timestamp = assignment
        .tag("Timestamp")
        .and_then(|value| value.parse().ok())
        .unwrap_or(fallback_timestamp);
    let mut out = Vec::with_capacity(4096);
    render::process_record(&mut out, &process_item, block, timestamp);
    Ok(out)
}
