//! Renders stored items as the reference's JSON, byte for byte (PROTOCOL 2.5 and 5.3).
//! Pure: takes parsed items, appends compact JSON to a buffer.

use crate::ans104::{DataItem, Tag, b64};
use crate::store::records::DataOverride;
use std::io;

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

/// Where rendered JSON goes: a buffer (`Vec<u8>`), or `Measure`, which only counts, so a
/// read can learn what a node will take before it holds it.
pub trait Sink: io::Write {
    /// Appends raw bytes.
    fn put(&mut self, bytes: &[u8]);

    /// Appends the unpadded base64url text of `bytes`.
    fn put_b64(&mut self, bytes: &[u8]) {
        let mut text = String::with_capacity(bytes.len() * 4 / 3 + 4);
        b64::encode_into(bytes, &mut text);
        self.put(text.as_bytes());
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that counts the bytes it is given and keeps none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measure(pub usize);

impl io::Write for Measure {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for Measure {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn put_b64(&mut self, bytes: &[u8]) {
        self.0 += (bytes.len() * 4).div_ceil(3);
    }
}

/// A JSON formatter that leaves out the quotes around strings, so that the escaped
/// fragments of one string can be written one after the other.
struct Unquoted;

impl serde_json::ser::Formatter for Unquoted {
    fn begin_string<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        Ok(())
    }
}

/// Appends `s`, escaped, without the quotes.
fn fragment<W: Sink>(out: &mut W, s: &str) {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, Unquoted);
    serde::Serialize::serialize(s, &mut serializer)
        .expect("a sink never fails and a str always serializes");
}

/// Appends `s` as a JSON string literal.
pub fn string<W: Sink>(out: &mut W, s: &str) {
    out.put(b"\"");
    fragment(out, s);
    out.put(b"\"");
}

/// Appends the lossy UTF-8 text of `bytes` as a JSON string literal: each invalid sequence
/// becomes U+FFFD, as `String::from_utf8_lossy` does, without building that string.
fn lossy_string<W: Sink>(out: &mut W, bytes: &[u8]) {
    out.put(b"\"");
    for chunk in bytes.utf8_chunks() {
        fragment(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.put("\u{FFFD}".as_bytes());
        }
    }
    out.put(b"\"");
}

fn b64_string<W: Sink>(out: &mut W, bytes: &[u8]) {
    out.put(b"\"");
    out.put_b64(bytes);
    out.put(b"\"");
}

fn null<W: Sink>(out: &mut W) {
    out.put(b"null");
}

/// `{"address": b64u(SHA256(owner)), "key": b64u(owner)}`.
pub fn owner<W: Sink>(out: &mut W, item: &DataItem<'_>) {
    out.put(b"{\"address\":");
    b64_string(out, &item.owner_address());
    out.put(b",\"key\":");
    b64_string(out, item.owner);
    out.put(b"}");
}

/// `[{"name":…,"value":…},…]` in item order.
pub fn tags<W: Sink>(out: &mut W, tags: &[Tag<'_>]) {
    out.put(b"[");
    for (index, tag) in tags.iter().enumerate() {
        if index > 0 {
            out.put(b",");
        }
        out.put(b"{\"name\":");
        string(out, tag.name);
        out.put(b",\"value\":");
        string(out, tag.value);
        out.put(b"}");
    }
    out.put(b"]");
}

fn utf8_or_null<W: Sink>(out: &mut W, bytes: Option<&[u8]>) {
    match bytes
        .filter(|b| !b.is_empty())
        .and_then(|b| std::str::from_utf8(b).ok())
    {
        Some(text) => string(out, text),
        None => null(out),
    }
}

fn data<W: Sink>(
    out: &mut W,
    item: &DataItem<'_>,
    style: MessageStyle,
    kept: Option<&DataOverride>,
) {
    if let Some(kept) = kept {
        return kept_data(out, kept);
    }
    match style {
        MessageStyle::Message => lossy_string(out, item.data),
        MessageStyle::Process => match std::str::from_utf8(item.data) {
            Ok(text) => string(out, text),
            Err(_) => null(out),
        },
    }
}

/// A `data` value kept from the reference's JSON columns, in place of the bytes' rendering.
fn kept_data<W: Sink>(out: &mut W, kept: &DataOverride) {
    match kept {
        DataOverride::Null => null(out),
        DataOverride::Text(text) => string(out, text),
    }
}

/// The `data` value `style` renders from `bytes`, as a value (the importer compares it with
/// what the reference's JSON columns hold).
pub fn rendered_data(bytes: &[u8], style: MessageStyle) -> DataOverride {
    match style {
        MessageStyle::Message => DataOverride::Text(String::from_utf8_lossy(bytes).into_owned()),
        MessageStyle::Process => match std::str::from_utf8(bytes) {
            Ok(text) => DataOverride::Text(text.to_string()),
            Err(_) => DataOverride::Null,
        },
    }
}

/// The `message` object of a node; `kept` replaces the `data` the bytes would render.
pub fn message<W: Sink>(
    out: &mut W,
    item: &DataItem<'_>,
    style: MessageStyle,
    kept: Option<&DataOverride>,
) {
    out.put(b"{\"id\":");
    b64_string(out, &item.id());
    out.put(b",\"owner\":");
    owner(out, item);
    out.put(b",\"data\":");
    data(out, item, style, kept);
    out.put(b",\"tags\":");
    tags(out, &item.tags);
    out.put(b",\"signature\":");
    b64_string(out, item.signature);
    out.put(b",\"anchor\":");
    utf8_or_null(out, item.anchor);
    out.put(b",\"target\":");
    match (item.target, style) {
        (Some(target), _) => b64_string(out, target),
        (None, MessageStyle::Message) => out.put(b"\"\""),
        (None, MessageStyle::Process) => null(out),
    }
    out.put(b"}");
}

/// The `assignment` object of a node.
pub fn assignment<W: Sink>(
    out: &mut W,
    item: &DataItem<'_>,
    style: AssignmentStyle,
    show_anchor: bool,
) {
    out.put(b"{\"id\":");
    b64_string(out, &item.id());
    out.put(b",\"owner\":");
    owner(out, item);
    out.put(b",\"tags\":");
    tags(out, &item.tags);
    out.put(b",\"signature\":");
    b64_string(out, item.signature);
    out.put(b",\"anchor\":");
    let anchor = item.anchor.filter(|a| !a.is_empty());
    match (anchor, style, show_anchor) {
        (Some(anchor), AssignmentStyle::Assignment, true) => match std::str::from_utf8(anchor) {
            Ok(text) => string(out, text),
            Err(_) => b64_string(out, anchor),
        },
        _ => utf8_or_null(out, anchor),
    }
    out.put(b",\"target\":");
    match (item.target, style) {
        (Some(target), _) => b64_string(out, target),
        (None, AssignmentStyle::Assignment) => out.put(b"\"\""),
        (None, AssignmentStyle::LegacyWrapper) => null(out),
    }
    out.put(b"}");
}

/// What one schedule entry renders from.
pub struct NodeParts<'a, 'b> {
    pub assignment: &'b DataItem<'a>,
    pub assignment_style: AssignmentStyle,
    pub message: Option<(&'b DataItem<'a>, MessageStyle)>,
    /// The message's `data` as the reference's JSON columns kept it, if it differs from the
    /// bytes' rendering (`store::records::DataOverride`).
    pub kept_data: Option<&'b DataOverride>,
}

/// `{"message": …, "assignment": …}`.
pub fn node<W: Sink>(out: &mut W, parts: &NodeParts<'_, '_>, show_anchor: bool) {
    out.put(b"{\"message\":");
    match parts.message {
        Some((item, style)) => message(out, item, style, parts.kept_data),
        None => null(out),
    }
    out.put(b",\"assignment\":");
    assignment(out, parts.assignment, parts.assignment_style, show_anchor);
    out.put(b"}");
}

/// The `/processes/{id}` record, built from the process item and its schedule tags; `kept`
/// replaces the `data` the bytes would render.
pub fn process_record<W: Sink>(
    out: &mut W,
    process: &DataItem<'_>,
    block: &str,
    timestamp: u64,
    kept: Option<&DataOverride>,
) {
    out.put(b"{\"process_id\":");
    b64_string(out, &process.id());
    out.put(b",\"block\":");
    string(out, block);
    out.put(b",\"owner\":");
    owner(out, process);
    out.put(b",\"tags\":");
    tags(out, &process.tags);
    out.put(b",\"timestamp\":");
    out.put(timestamp.to_string().as_bytes());
    out.put(b",\"data\":");
    data(out, process, MessageStyle::Process, kept);
    out.put(b",\"anchor\":");
    utf8_or_null(out, process.anchor);
    out.put(b",\"signature\":");
    b64_string(out, process.signature);
    out.put(b",\"target\":");
    match process.target {
        Some(target) => b64_string(out, target),
        None => null(out),
    }
    out.put(b"}");
}

/// An edge: `{"node": …, "cursor": "…"}`.
pub fn edge<W: Sink>(out: &mut W, parts: &NodeParts<'_, '_>, show_anchor: bool, cursor: u64) {
    out.put(b"{\"node\":");
    node(out, parts, show_anchor);
    out.put(b",\"cursor\":\"");
    out.put(cursor.to_string().as_bytes());
    out.put(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ans104::{ItemDraft, SignatureType};

    fn item_bytes(data: Vec<u8>, anchor: Option<[u8; 32]>) -> Vec<u8> {
        let draft = ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: vec![3; 512],
            target: None,
            anchor,
            tags: vec![
                ("Type".into(), "Message".into()),
                ("Quote \"\u{1}".into(), "é\n\u{2028}".into()),
            ],
            data,
        };
        draft.finish_with_placeholder(9).0
    }

    #[test]
    fn lossy_data_matches_the_standard_lossy_decoder() {
        let samples: [&[u8]; 5] = [
            b"",
            b"plain",
            b"\x01\x02ctl\x1f\"\\",
            b"bad \xff\xfe end \xe2\x82",
            "ok é ☃ \u{1d11e}".as_bytes(),
        ];
        for sample in samples {
            let mut ours = Vec::new();
            lossy_string(&mut ours, sample);
            let mut standard = Vec::new();
            string(&mut standard, &String::from_utf8_lossy(sample));
            assert_eq!(ours, standard, "{sample:?}");
        }
    }

    #[test]
    fn measuring_gives_the_rendered_length() {
        let mut control = vec![1u8; 3000];
        control.extend_from_slice(b"\xff\xc3 tail \"quoted\"");
        for data in [Vec::new(), b"x".to_vec(), control] {
            for anchor in [
                None,
                Some([0xfe; 32]),
                Some(*b"0123456789abcdef0123456789abcdef"),
            ] {
                let bytes = item_bytes(data.clone(), anchor);
                let item = DataItem::parse(&bytes).unwrap();
                let kept_values = [
                    None,
                    Some(DataOverride::Null),
                    Some(DataOverride::Text("kept \u{1}\"\u{FFFD}".to_string())),
                ];
                for ((style, message_style), kept) in [
                    (AssignmentStyle::Assignment, MessageStyle::Message),
                    (AssignmentStyle::LegacyWrapper, MessageStyle::Process),
                ]
                .into_iter()
                .flat_map(|styles| kept_values.iter().map(move |kept| (styles, kept)))
                {
                    let parts = NodeParts {
                        assignment: &item,
                        assignment_style: style,
                        message: Some((&item, message_style)),
                        kept_data: kept.as_ref(),
                    };
                    for show_anchor in [false, true] {
                        let mut rendered = Vec::new();
                        edge(&mut rendered, &parts, show_anchor, 1_700_000_000_123);
                        let mut measured = Measure::default();
                        edge(&mut measured, &parts, show_anchor, 1_700_000_000_123);
                        assert_eq!(measured.0, rendered.len());
                        serde_json::from_slice::<serde_json::Value>(&rendered).unwrap();
                    }
                }
                for kept in &kept_values {
                    let mut rendered = Vec::new();
                    process_record(&mut rendered, &item, "000000000001", 5, kept.as_ref());
                    let mut measured = Measure::default();
                    process_record(&mut measured, &item, "000000000001", 5, kept.as_ref());
                    assert_eq!(measured.0, rendered.len());
                }
            }
        }
    }

    #[test]
    fn a_kept_data_value_replaces_what_the_bytes_render() {
        let bytes = item_bytes(b"bytes \xff".to_vec(), None);
        let item = DataItem::parse(&bytes).unwrap();
        let data_of = |style, kept: Option<&DataOverride>| {
            let mut out = Vec::new();
            message(&mut out, &item, style, kept);
            let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
            json["data"].clone()
        };
        assert_eq!(
            data_of(MessageStyle::Message, None),
            serde_json::json!("bytes \u{FFFD}")
        );
        assert_eq!(
            data_of(MessageStyle::Process, None),
            serde_json::Value::Null
        );
        let text = DataOverride::Text("as \"kept\"".to_string());
        assert_eq!(
            data_of(MessageStyle::Process, Some(&text)),
            serde_json::json!("as \"kept\"")
        );
        assert_eq!(
            data_of(MessageStyle::Message, Some(&DataOverride::Null)),
            serde_json::Value::Null
        );
        let mut record = Vec::new();
        process_record(&mut record, &item, "000000000001", 5, Some(&text));
        let json: serde_json::Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(json["data"], serde_json::json!("as \"kept\""));
        assert_eq!(
            rendered_data(item.data, MessageStyle::Message),
            DataOverride::Text("bytes \u{FFFD}".to_string())
        );
        assert_eq!(
            rendered_data(item.data, MessageStyle::Process),
            DataOverride::Null
        );
        assert_eq!(
            rendered_data(b"text", MessageStyle::Process),
            DataOverride::Text("text".to_string())
        );
    }

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
