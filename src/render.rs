//! Renders stored items as the reference's JSON, byte for byte (PROTOCOL 2.5 and 5.3).
//! Pure: takes parsed items, appends compact JSON to a buffer.

use crate::ans104::{DataItem, Tag, b64};

/// How the `message` half of a node is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStyle {
    /// A user message: lossy UTF-8 data, `""` for a missing target.
    Message,
    /// The process item of a nonce-0 node: data `null` unless UTF-8, `null` missing target.
    Process,
}

/// How the `assignment` half of a node is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentStyle {
    /// An SU Assignment (eras M2–M4, P2): `show-anchor` applies, missing target is `""`.
    Assignment,
    /// An era-M1 wrapper playing the assignment: no `show-anchor`, missing target is `null`.
    LegacyWrapper,
}

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec does not fail");
}

fn b64_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut text = String::with_capacity(bytes.len() * 4 / 3 + 4);
    b64::encode_into(bytes, &mut text);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

/// `{"address": b64u(SHA256(owner)), "key": b64u(owner)}`.
pub fn owner(out: &mut Vec<u8>, item: &DataItem<'_>) {
    out.extend_from_slice(b"{\"address\":");
    b64_string(out, &item.owner_address());
    out.extend_from_slice(b",\"key\":");
    b64_string(out, item.owner);
    out.push(b'}');
}

/// `[{"name":…,"value":…},…]` in item order.
pub fn tags(out: &mut Vec<u8>, tags: &[Tag<'_>]) {
    out.push(b'[');
    for (index, tag) in tags.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        string(out, tag.name);
        out.extend_from_slice(b",\"value\":");
        string(out, tag.value);
        out.push(b'}');
    }
    out.push(b']');
}

fn utf8_or_null(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes
        .filter(|b| !b.is_empty())
        .and_then(|b| std::str::from_utf8(b).ok())
    {
        Some(text) => string(out, text),
        None => null(out),
    }
}

fn data(out: &mut Vec<u8>, item: &DataItem<'_>, style: MessageStyle) {
    match style {
        MessageStyle::Message => string(out, &String::from_utf8_lossy(item.data)),
        MessageStyle::Process => match std::str::from_utf8(item.data) {
            Ok(text) => string(out, text),
            Err(_) => null(out),
        },
    }
}

/// The `message` object of a node.
pub fn message(out: &mut Vec<u8>, item: &DataItem<'_>, style: MessageStyle) {
    out.extend_from_slice(b"{\"id\":");
    b64_string(out, &item.id());
    out.extend_from_slice(b",\"owner\":");
    owner(out, item);
    out.extend_from_slice(b",\"data\":");
    data(out, item, style);
    out.extend_from_slice(b",\"tags\":");
    tags(out, &item.tags);
    out.extend_from_slice(b",\"signature\":");
    b64_string(out, item.signature);
    out.extend_from_slice(b",\"anchor\":");
    utf8_or_null(out, item.anchor);
    out.extend_from_slice(b",\"target\":");
    match (item.target, style) {
        (Some(target), _) => b64_string(out, target),
        (None, MessageStyle::Message) => out.extend_from_slice(b"\"\""),
        (None, MessageStyle::Process) => null(out),
    }
    out.push(b'}');
}

/// The `assignment` object of a node.
pub fn assignment(
    out: &mut Vec<u8>,
    item: &DataItem<'_>,
    style: AssignmentStyle,
    show_anchor: bool,
) {
    out.extend_from_slice(b"{\"id\":");
    b64_string(out, &item.id());
    out.extend_from_slice(b",\"owner\":");
    owner(out, item);
    out.extend_from_slice(b",\"tags\":");
    tags(out, &item.tags);
    out.extend_from_slice(b",\"signature\":");
    b64_string(out, item.signature);
    out.extend_from_slice(b",\"anchor\":");
    let anchor = item.anchor.filter(|a| !a.is_empty());
    match (anchor, style, show_anchor) {
        (Some(anchor), AssignmentStyle::Assignment, true) => match std::str::from_utf8(anchor) {
            Ok(text) => string(out, text),
            Err(_) => b64_string(out, anchor),
        },
        _ => utf8_or_null(out, anchor),
    }
    out.extend_from_slice(b",\"target\":");
    match (item.target, style) {
        (Some(target), _) => b64_string(out, target),
        (None, AssignmentStyle::Assignment) => out.extend_from_slice(b"\"\""),
        (None, AssignmentStyle::LegacyWrapper) => null(out),
    }
    out.push(b'}');
}

/// What one schedule entry renders from.
pub struct NodeParts<'a, 'b> {
    pub assignment: &'b DataItem<'a>,
    pub assignment_style: AssignmentStyle,
    pub message: Option<(&'b DataItem<'a>, MessageStyle)>,
}

/// `{"message": …, "assignment": …}`.
pub fn node(out: &mut Vec<u8>, parts: &NodeParts<'_, '_>, show_anchor: bool) {
    out.extend_from_slice(b"{\"message\":");
    match parts.message {
        Some((item, style)) => message(out, item, style),
        None => null(out),
    }
    out.extend_from_slice(b",\"assignment\":");
    assignment(out, parts.assignment, parts.assignment_style, show_anchor);
    out.push(b'}');
}

/// The `/processes/{id}` record, built from the process item and its schedule tags.
pub fn process_record(out: &mut Vec<u8>, process: &DataItem<'_>, block: &str, timestamp: u64) {
    out.extend_from_slice(b"{\"process_id\":");
    b64_string(out, &process.id());
    out.extend_from_slice(b",\"block\":");
    string(out, block);
    out.extend_from_slice(b",\"owner\":");
    owner(out, process);
    out.extend_from_slice(b",\"tags\":");
    tags(out, &process.tags);
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(timestamp.to_string().as_bytes());
    out.extend_from_slice(b",\"data\":");
    match std::str::from_utf8(process.data) {
        Ok(text) => string(out, text),
        Err(_) => null(out),
    }
    out.extend_from_slice(b",\"anchor\":");
    utf8_or_null(out, process.anchor);
    out.extend_from_slice(b",\"signature\":");
    b64_string(out, process.signature);
    out.extend_from_slice(b",\"target\":");
    match process.target {
        Some(target) => b64_string(out, target),
        None => null(out),
    }
    out.push(b'}');
}

/// An edge: `{"node": …, "cursor": "…"}`.
pub fn edge(out: &mut Vec<u8>, parts: &NodeParts<'_, '_>, show_anchor: bool, cursor: u64) {
    out.extend_from_slice(b"{\"node\":");
    node(out, parts, show_anchor);
    out.extend_from_slice(b",\"cursor\":\"");
    out.extend_from_slice(cursor.to_string().as_bytes());
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_the_reference() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\u{8}\t\n\u{c}\r\u{1}/é\u{2028}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0001/é\u{2028}\""
        );
    }
}
