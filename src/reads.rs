//! The read model: schedule pages, single nodes, latest and process records, rendered from
//! stored bytes. Runs on blocking threads; reads go straight to the store, never to shards.
//! Every read renders into memory it has reserved (`budget`): a node is measured before it
//! is rendered, and a page ends early rather than pass its own limit or the shared one.

mod budget;
mod page_mode;

pub use budget::{ReadBudget, Reservation};
pub use page_mode::PageMode;

use crate::ans104::{DataItem, b64};
use crate::domain::Id;
use crate::render::{self, AssignmentStyle, Measure, MessageStyle, NodeParts};
use crate::store::records::{
    DataOverride, EntryKind, EntryRecord, IdRole, ProcessKind, RenderStyle,
};
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
    /// The shared read budget has no room for the first node, which takes this many bytes;
    /// nothing is held. The caller waits for that much and asks again.
    #[error("the SU is busy with other reads; retry shortly")]
    NeedsMemory(usize),
}

/// A page request, validated by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub mode: PageMode,
    pub limit: usize,
    pub show_anchor: bool,
    /// Rendered bytes the page may hold (`MAX_READ_MEMORY`); its first edge always fits.
    pub max_read_bytes: usize,
}

fn load(read: &ItemReader<'_>, id: &Id) -> Result<Vec<u8>, ReadError> {
    read(id)?.ok_or_else(|| ReadError::BrokenItem(b64::encode(id)))
}

fn parse<'a>(bytes: &'a [u8], id: &Id) -> Result<DataItem<'a>, ReadError> {
    DataItem::parse(bytes).map_err(|_| ReadError::BrokenItem(b64::encode(id)))
}

/// An entry's stored items, loaded for rendering.
struct Loaded {
    assignment: Vec<u8>,
    body: Option<Vec<u8>>,
}

impl Loaded {
    fn read(record: &EntryRecord, read: &ItemReader<'_>) -> Result<Self, ReadError> {
        let assignment = load(read, &record.assignment_id)?;
        let body = match record.kind {
            EntryKind::AssignmentOnly => None,
            EntryKind::Message | EntryKind::Process => Some(load(read, &record.message_id)?),
        };
        Ok(Self { assignment, body })
    }

    fn len(&self) -> usize {
        self.assignment.len() + self.body.as_ref().map_or(0, Vec::len)
    }
}

/// Nodes whose items take at most this many bytes skip the measuring pass: their rendered
/// size is bounded by `SMALL_BOUND_FACTOR` bytes per stored byte, plus 1 KiB of keys (a tag
/// of two empty strings is 2 stored bytes and 23 rendered ones; any other byte renders as
/// at most 6, the `\u00XX` escape of a control character).
const SMALL_NODE_ITEM_BYTES: usize = 4096;
const SMALL_BOUND_FACTOR: usize = 12;

/// A node's rendered size: exact for large nodes, an upper bound for small ones.
struct NodeSize {
    bytes: usize,
    exact: bool,
}

fn node_size(
    parts: &NodeParts<'_, '_>,
    loaded: &Loaded,
    show_anchor: bool,
    cursor: Option<u64>,
) -> NodeSize {
    let stored = loaded.len() + parts.kept_data.map_or(0, DataOverride::extra_bytes);
    if stored <= SMALL_NODE_ITEM_BYTES {
        return NodeSize {
            bytes: SMALL_BOUND_FACTOR * stored + 1024,
            exact: false,
        };
    }
    let mut measure = Measure::default();
    match cursor {
        Some(cursor) => render::edge(&mut measure, parts, show_anchor, cursor),
        None => render::node(&mut measure, parts, show_anchor),
    }
    NodeSize {
        bytes: measure.0,
        exact: true,
    }
}

/// A buffer of rendered JSON whose capacity, and the items being rendered into it, are
/// covered by a reservation.
struct Rendering<'r> {
    out: Vec<u8>,
    reservation: &'r mut Reservation,
    /// Past this capacity, grow by doubling no more: `MAX_READ_MEMORY` plus a small node.
    growth_cap: usize,
}

impl<'r> Rendering<'r> {
    fn new(reservation: &'r mut Reservation, max_bytes: usize) -> Self {
        Self {
            out: Vec::new(),
            reservation,
            growth_cap: max_bytes.saturating_add(SMALL_BOUND_FACTOR * SMALL_NODE_ITEM_BYTES),
        }
    }

    /// Reserves room for `rendered` more bytes plus `stored` bytes of items being read, and
    /// makes the buffer that large. When the budget has no room, nothing changes and the
    /// error is what the reservation would have to hold.
    fn make_room(&mut self, rendered: usize, stored: usize) -> Result<(), usize> {
        let target = self.out.len() + rendered;
        let capacity = if target <= self.out.capacity() {
            self.out.capacity()
        } else if rendered > SMALL_BOUND_FACTOR * SMALL_NODE_ITEM_BYTES {
            target
        } else {
            target
                .max((2 * self.out.capacity()).min(self.growth_cap))
                .max(4096)
        };
        // Growing may copy the buffer: the old one is held until the new one is filled.
        let copying = if capacity > self.out.capacity() {
            self.out.capacity()
        } else {
            0
        };
        let needed = capacity + copying + stored;
        if !self.reservation.try_cover(needed) {
            return Err(needed);
        }
        self.out.reserve_exact(capacity - self.out.len());
        Ok(())
    }

    /// After a node: hold only what the buffer takes.
    fn settle(&mut self) {
        self.reservation.shrink_to(self.out.capacity());
    }

    fn finish(mut self) -> Vec<u8> {
        self.settle();
        self.out
    }
}

/// How one node goes into a rendering.
struct NodePlan {
    show_anchor: bool,
    /// An edge with this cursor; `None`: a bare node.
    cursor: Option<u64>,
    /// The read has no node yet: a node the budget cannot cover is `NeedsMemory`.
    first: bool,
    /// Write a `,` before the node.
    separator: bool,
    /// Bytes that will follow the node (`]}` of a page), reserved with it.
    suffix: usize,
    /// Rendered bytes the page has left; a node known to be larger is left out.
    room_left: Option<usize>,
}

/// Loads an entry's items and appends its node (or edge) to `rendering`, once the budget
/// covers it. `Ok(false)`: it was left out (too large for the page, or no room in the
/// shared budget), and the rendering is unchanged.
fn write_entry(
    rendering: &mut Rendering<'_>,
    record: &EntryRecord,
    read: &ItemReader<'_>,
    kept_data: Option<&DataOverride>,
    plan: &NodePlan,
) -> Result<bool, ReadError> {
    let loaded = Loaded::read(record, read)?;
    let assignment = parse(&loaded.assignment, &record.assignment_id)?;
    let body = match &loaded.body {
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
        kept_data,
    };
    let size = node_size(&parts, &loaded, plan.show_anchor, plan.cursor);
    let rendered = size.bytes + usize::from(plan.separator);
    // An exact size past the page's limit ends the page; a small node's bound does not (a
    // page passes its limit by less than one small node at most).
    if !plan.first && size.exact && plan.room_left.is_some_and(|left| rendered > left) {
        return Ok(false);
    }
    if let Err(needed) = rendering.make_room(rendered + plan.suffix, loaded.len()) {
        if plan.first {
            return Err(ReadError::NeedsMemory(needed));
        }
        return Ok(false);
    }
    if plan.separator {
        rendering.out.push(b',');
    }
    match plan.cursor {
        Some(cursor) => render::edge(&mut rendering.out, &parts, plan.show_anchor, cursor),
        None => render::node(&mut rendering.out, &parts, plan.show_anchor),
    }
    drop(loaded);
    rendering.settle();
    Ok(true)
}

/// The `data` value an import kept for the entry's body in `process`, if any: a Process
/// item's (every rendering of it), or an era-M1 message's (single reads only, as the
/// reference rendered those from its JSON columns and pages from the bytes).
fn kept_data(
    store: &Store,
    process: &Id,
    record: &EntryRecord,
) -> Result<Option<DataOverride>, ReadError> {
    if !record.kind.has_body() {
        return Ok(None);
    }
    Ok(store.data_override(process, &record.message_id)?)
}

/// A single node of `process` in a buffer of its own, read live, with the `data` value an
/// import kept for its item, if any.
fn single_node(
    store: &Store,
    process: &Id,
    record: &EntryRecord,
    show_anchor: bool,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
    let kept = kept_data(store, process, record)?;
    let mut rendering = Rendering::new(reservation, 0);
    let plan = NodePlan {
        show_anchor,
        cursor: None,
        first: true,
        separator: false,
        suffix: 0,
        room_left: None,
    };
    write_entry(
        &mut rendering,
        record,
        &read_live(store),
        kept.as_ref(),
        &plan,
    )?;
    Ok(rendering.finish())
}

/// In a page, only the process node's `data` can be a kept value.
fn process_kept_data(
    store: &Store,
    process: &Id,
    record: &EntryRecord,
) -> Result<Option<DataOverride>, ReadError> {
    if record.kind != EntryKind::Process {
        return Ok(None);
    }
    kept_data(store, process, record)
}

fn read_live(store: &Store) -> impl Fn(&Id) -> Result<Option<Vec<u8>>, StoreError> + '_ {
    move |id| store.item(id)
}

/// Whether this SU hosts the process.
pub fn is_process(store: &Store, process: &Id) -> Result<bool, ReadError> {
    Ok(store.process(process)?.is_some())
}

/// `GET /{process}`: one page of the schedule, outside any shared budget (tools, tests).
pub fn page(store: &Store, process: &Id, request: &PageRequest) -> Result<Vec<u8>, ReadError> {
    page_within(store, process, request, &mut Reservation::unlimited())
}

/// `GET /{process}`: one page of the schedule, rendered into memory `reservation` covers.
/// The page ends before an edge that would take it past `max_read_bytes`, or that the shared
/// budget cannot cover, with `has_next_page: true`; its first edge is always there (when the
/// budget cannot cover even that, the answer is `NeedsMemory`).
pub fn page_within(
    store: &Store,
    process: &Id,
    request: &PageRequest,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
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
    // end, so the flag is patched in place (one memmove, never a second page buffer). Each
    // edge reserves the two closing bytes too, so closing never grows the buffer.
    const PREFIX: &[u8] = b"{\"page_info\":{\"has_next_page\":false},\"edges\":[";
    const SUFFIX: &[u8] = b"]}";
    let flag_at = PREFIX.len() - b"false},\"edges\":[".len();
    let max_bytes = request.max_read_bytes;
    let mut rendering = Rendering::new(reservation, max_bytes);
    rendering
        .make_room(PREFIX.len() + SUFFIX.len(), 0)
        .map_err(ReadError::NeedsMemory)?;
    rendering.out.extend_from_slice(PREFIX);
    let mut n_edges = 0usize;
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
                let used = rendering.out.len() - PREFIX.len();
                if n_edges >= request.limit || (n_edges > 0 && used >= max_bytes) {
                    has_next = true;
                    return Ok(false);
                }
                let plan = NodePlan {
                    show_anchor: request.show_anchor,
                    cursor: Some(cursor_of(slot.nonce, &record)),
                    first: n_edges == 0,
                    separator: n_edges > 0,
                    suffix: SUFFIX.len(),
                    room_left: Some(max_bytes.saturating_sub(used)),
                };
                let kept = process_kept_data(store, process, &record)?;
                if !write_entry(&mut rendering, &record, read, kept.as_ref(), &plan)? {
                    has_next = true;
                    return Ok(false);
                }
                n_edges += 1;
                Ok(true)
            },
        )?;
    }
    let mut edges = rendering.finish();
    edges.extend_from_slice(SUFFIX);
    if has_next {
        edges.splice(flag_at..flag_at + 5, *b"true");
    }
    Ok(edges)
}

/// `GET /{process}/stream`: the entries after nonce `after` (from nonce 0 when `None`), each
/// rendered alone as the edge a nonce-mode page holds (cursor: its nonce), in nonce order.
/// Stops after `max_edges` edges, or once they hold `max_bytes` (the first always comes).
pub fn edges_after(
    store: &Store,
    process: &Id,
    after: Option<u64>,
    max_edges: usize,
    max_bytes: usize,
    show_anchor: bool,
) -> Result<Vec<(u64, Vec<u8>)>, ReadError> {
    let Some(first) = after.map_or(Some(0), |after| after.checked_add(1)) else {
        return Ok(Vec::new());
    };
    let mut edges: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut held = 0usize;
    store.scan_entries(
        process,
        first,
        u64::MAX,
        |slot, record, read| -> Result<bool, ReadError> {
            if edges.len() >= max_edges || (!edges.is_empty() && held >= max_bytes) {
                return Ok(false);
            }
            let mut reservation = Reservation::unlimited();
            let mut rendering = Rendering::new(&mut reservation, 0);
            let plan = NodePlan {
                show_anchor,
                cursor: Some(slot.nonce),
                first: true,
                separator: false,
                suffix: 0,
                room_left: None,
            };
            let kept = process_kept_data(store, process, &record)?;
            write_entry(&mut rendering, &record, read, kept.as_ref(), &plan)?;
            let edge = rendering.finish();
            held += edge.len();
            edges.push((slot.nonce, edge));
            Ok(true)
        },
    )?;
    Ok(edges)
}

/// `GET /{id}?process-id=`, outside any shared budget (tools, tests).
pub fn node_by_id(
    store: &Store,
    id: &Id,
    process: Option<&Id>,
    show_anchor: bool,
) -> Result<Option<Vec<u8>>, ReadError> {
    node_by_id_within(
        store,
        id,
        process,
        show_anchor,
        &mut Reservation::unlimited(),
    )
}

/// Where the entries naming `id` as a body or as an Assignment can be: read from the item
/// itself, so the lookup never walks the rows of the transactions assigned under that id
/// (there may be any number, in any process). An Assignment (or an era-M1 wrapper) names its
/// slot in its `Process` and `Nonce` tags; a body sits in the schedule of the process its
/// item targets, or in its own for a Process. Each candidate is one seek in `by_id`.
struct Candidate {
    process: Id,
    nonces: std::ops::RangeInclusive<u64>,
    role: IdRole,
}

fn candidates(id: &Id, item: &DataItem<'_>) -> Vec<Candidate> {
    let mut found = Vec::with_capacity(2);
    let process_tag = item.tag("Process").and_then(b64::decode_id);
    let nonce_tag = item
        .tag("Nonce")
        .and_then(|value| value.parse::<u64>().ok());
    if let (Some(process), Some(nonce)) = (process_tag, nonce_tag) {
        found.push(Candidate {
            process,
            nonces: nonce..=nonce,
            role: IdRole::Assignment,
        });
    }
    let body_process = match item.target {
        Some(target) => target.try_into().ok(),
        None => Some(*id),
    };
    if let Some(process) = body_process {
        found.push(Candidate {
            process,
            nonces: 0..=u64::MAX,
            role: IdRole::Body,
        });
    }
    found
}

/// `GET /{id}?process-id=`: the oldest entry that has `id` as its body or its Assignment
/// (in that process when given), rendered into memory `reservation` covers. The work is a
/// point read of the item and at most two bounded seeks, however often `id` was assigned.
pub fn node_by_id_within(
    store: &Store,
    id: &Id,
    process: Option<&Id>,
    show_anchor: bool,
    reservation: &mut Reservation,
) -> Result<Option<Vec<u8>>, ReadError> {
    // Only entries with a body or an Assignment are found here, and both store their item
    // under this id: no item, no such entry.
    let Some(candidates) = store.with_item(id, |bytes| {
        DataItem::parse(bytes).map(|item| candidates(id, &item))
    })?
    else {
        return Ok(None);
    };
    let candidates = candidates.map_err(|_| ReadError::BrokenItem(b64::encode(id)))?;
    let mut oldest: Option<crate::store::IdHit> = None;
    for candidate in candidates {
        if process.is_some_and(|scope| *scope != candidate.process) {
            continue;
        }
        let hit = store.find_id_in(id, &candidate.process, candidate.nonces, |role| {
            role == candidate.role
        })?;
        if let Some(hit) = hit {
            // Across processes the oldest time wins, then the lowest slot.
            if oldest
                .as_ref()
                .is_none_or(|best| (hit.timestamp, hit.slot) < (best.timestamp, best.slot))
            {
                oldest = Some(hit);
            }
        }
    }
    let Some(hit) = oldest else {
        return Ok(None);
    };
    let Some(record) = store.entry_at(&hit.process, hit.slot)? else {
        return Ok(None);
    };
    single_node(store, &hit.process, &record, show_anchor, reservation).map(Some)
}

/// `GET /{process}/latest`, outside any shared budget (tools, tests).
pub fn latest(store: &Store, process: &Id, show_anchor: bool) -> Result<Vec<u8>, ReadError> {
    latest_within(store, process, show_anchor, &mut Reservation::unlimited())
}

/// `GET /{process}/latest`: the highest nonce; the process node when that is all there is.
pub fn latest_within(
    store: &Store,
    process: &Id,
    show_anchor: bool,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
    let Some((_, record)) = store.last_entry(process)? else {
        return Err(ReadError::LatestNotAvailable);
    };
    single_node(store, process, &record, show_anchor, reservation)
}

/// `GET /processes/{id}`, outside any shared budget (tools, tests).
pub fn process_record(store: &Store, process: &Id) -> Result<Vec<u8>, ReadError> {
    process_record_within(store, process, &mut Reservation::unlimited())
}

/// `GET /processes/{id}`: the process record.
pub fn process_record_within(
    store: &Store,
    process: &Id,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
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
    let kept = store.data_override(process, process)?;
    let mut measure = Measure::default();
    render::process_record(&mut measure, &process_item, block, timestamp, kept.as_ref());
    let stored = assignment_bytes.len() + process_bytes.len();
    let mut rendering = Rendering::new(reservation, 0);
    rendering
        .make_room(measure.0, stored)
        .map_err(ReadError::NeedsMemory)?;
    render::process_record(
        &mut rendering.out,
        &process_item,
        block,
        timestamp,
        kept.as_ref(),
    );
    drop(process_bytes);
    Ok(rendering.finish())
}
