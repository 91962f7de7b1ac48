//! Rebuilds ANS-104 data items from the JSON an SU serves (PROTOCOL 5.3 and 3.7): the inverse
//! of `render`. Pure: what the JSON loses (data or anchors that are not UTF-8) is marked as
//! such, a caller may supply the bytes (from a gateway), and only a verifying signature
//! decides that a rebuilt item is the item. The signature type, which the JSON omits, is the
//! one whose lengths match and whose signature verifies.

use crate::ans104::{DataItem, ItemDraft, SignatureType, b64, encode_bundle, verify};
use crate::domain::Id;
use serde::Deserialize;

/// A page of `GET /{process}` (nonce mode).
#[derive(Debug, Clone, Deserialize)]
pub struct PageJson {
    pub page_info: PageInfoJson,
    pub edges: Vec<EdgeJson>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PageInfoJson {
    pub has_next_page: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EdgeJson {
    pub node: NodeJson,
}

/// `{"message": …, "assignment": …}`.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeJson {
    pub message: Option<ItemJson>,
    pub assignment: ItemJson,
}

/// One rendered item: a message, a process, an assignment or an era-M1 wrapper.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemJson {
    pub id: String,
    pub owner: OwnerJson,
    /// Absent for assignments; `null` for a process whose data is not UTF-8.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub tags: Vec<TagJson>,
    pub signature: String,
    #[serde(default)]
    pub anchor: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OwnerJson {
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TagJson {
    pub name: String,
    pub value: String,
}

impl ItemJson {
    /// The value of its first tag of that name.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|tag| tag.name == name)
            .map(|tag| tag.value.as_str())
    }
}

/// How an item was rendered, which says what its JSON may have lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An SU Assignment read with `show-anchor`: nothing is lost; its data is empty.
    Assignment,
    /// An era-M1 wrapper playing the assignment: its anchor is UTF-8-or-null; its data is the
    /// bundle of its message, which the caller rebuilds first.
    LegacyWrapper,
    /// A message: lossy data, UTF-8-or-null anchor.
    Message,
    /// A process item: data `null` unless UTF-8, UTF-8-or-null anchor.
    Process,
}

/// What the JSON says of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known<T> {
    /// Exactly these bytes.
    Exact(T),
    /// Perhaps these bytes; perhaps the JSON lost them (not UTF-8).
    Maybe(T),
    /// The JSON lost them.
    Lost,
}

impl<T: Clone + Default> Known<T> {
    fn guess(&self) -> T {
        match self {
            Self::Exact(value) | Self::Maybe(value) => value.clone(),
            Self::Lost => T::default(),
        }
    }

    fn is_exact(&self) -> bool {
        matches!(self, Self::Exact(_))
    }
}

/// Bytes from elsewhere (a gateway) for what the JSON may have lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    pub anchor: Option<Option<[u8; 32]>>,
    pub data: Option<Vec<u8>>,
}

impl Fetched {
    fn is_empty(&self) -> bool {
        self.anchor.is_none() && self.data.is_none()
    }
}

/// Why an item cannot be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    #[error("its {0} is not valid base64url")]
    Encoding(&'static str),
    #[error("its id is not the SHA-256 of its signature")]
    Id,
    #[error("no signature type has a {signature}-byte signature and a {owner}-byte owner")]
    SignatureType { signature: usize, owner: usize },
    #[error("its anchor is neither 32 bytes of UTF-8 nor the base64url of 32 bytes")]
    Anchor,
    #[error("its {0} is missing")]
    Missing(&'static str),
    #[error("its signature does not verify")]
    DoesNotVerify,
    #[error("rebuilding it panicked")]
    Panicked,
    #[error(
        "its signature does not verify as the JSON shows it, and the JSON may have lost its \
         {0} (not UTF-8); no gateway gave the bytes"
    )]
    Lost(&'static str),
}

/// An item decoded from its JSON, with what the JSON may have lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemParts {
    pub id: Id,
    pub signature: Vec<u8>,
    pub owner: Vec<u8>,
    pub target: Option<[u8; 32]>,
    pub tags: Vec<(String, String)>,
    pub anchor: Known<Option<[u8; 32]>>,
    pub data: Known<Vec<u8>>,
}

fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, RebuildError> {
    b64::decode(text).ok_or(RebuildError::Encoding(field))
}

/// A target: absent when `null` or `""`, else 32 bytes of base64url.
fn decode_target(text: Option<&str>) -> Result<Option<[u8; 32]>, RebuildError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => b64::decode_id(text)
            .map(Some)
            .ok_or(RebuildError::Encoding("target")),
    }
}

/// An anchor shown as UTF-8 text (32 bytes), or, with `show-anchor` on an assignment, as the
/// base64url of 32 bytes that are not UTF-8 (43 characters, so never confused with text).
fn decode_anchor(text: &str, base64_allowed: bool) -> Result<[u8; 32], RebuildError> {
    if let Ok(raw) = <[u8; 32]>::try_from(text.as_bytes()) {
        return Ok(raw);
    }
    if base64_allowed && let Some(raw) = b64::decode_id(text) {
        return Ok(raw);
    }
    Err(RebuildError::Anchor)
}

impl ItemParts {
    /// Decodes an item's JSON as `role` renders it; an era-M1 wrapper's data is set by
    /// `with_data` afterwards.
    pub fn from_json(json: &ItemJson, role: Role) -> Result<Self, RebuildError> {
        let id = b64::decode_id(&json.id).ok_or(RebuildError::Encoding("id"))?;
        let signature = decode(&json.signature, "signature")?;
        if crate::ans104::item::sha256(&signature) != id {
            return Err(RebuildError::Id);
        }
        let owner = decode(&json.owner.key, "owner")?;
        let anchor = match (role, json.anchor.as_deref()) {
            (Role::Assignment, None) => Known::Exact(None),
            (Role::Assignment, Some(text)) => Known::Exact(Some(decode_anchor(text, true)?)),
            (_, None) => Known::Maybe(None),
            (_, Some(text)) => Known::Exact(Some(decode_anchor(text, false)?)),
        };
        let data = match (role, json.data.as_deref()) {
            (Role::Assignment | Role::LegacyWrapper, _) => Known::Exact(Vec::new()),
            (Role::Message, None) => return Err(RebuildError::Missing("data")),
            (Role::Message, Some(text)) if text.contains('\u{FFFD}') => {
                Known::Maybe(text.as_bytes().to_vec())
            }
            (Role::Message | Role::Process, Some(text)) => Known::Exact(text.as_bytes().to_vec()),
            (Role::Process, None) => Known::Lost,
        };
        Ok(Self {
            id,
            signature,
            owner,
            target: decode_target(json.target.as_deref())?,
            tags: json
                .tags
                .iter()
                .map(|tag| (tag.name.clone(), tag.value.clone()))
                .collect(),
            anchor,
            data,
        })
    }

    /// The same item with its data known (an era-M1 wrapper's bundle).
    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.data = Known::Exact(data);
        self
    }

    /// Whether the JSON may have lost its data or anchor.
    pub fn lost(&self) -> Option<&'static str> {
        match (self.data.is_exact(), self.anchor.is_exact()) {
            (true, true) => None,
            (false, true) => Some("data"),
            (true, false) => Some("anchor"),
            (false, false) => Some("data or anchor"),
        }
    }

    /// The signature types whose signature and owner lengths are this item's, in type order.
    fn candidate_types(&self) -> Result<Vec<SignatureType>, RebuildError> {
        let lengths = (self.signature.len(), self.owner.len());
        let types: Vec<_> = (1..=7)
            .map(SignatureType)
            .filter(|kind| kind.lengths() == Some(lengths))
            .collect();
        if types.is_empty() {
            return Err(RebuildError::SignatureType {
                signature: lengths.0,
                owner: lengths.1,
            });
        }
        Ok(types)
    }

    /// The item's bytes with this anchor and data, if its signature then verifies.
    pub fn assemble(&self, anchor: Option<[u8; 32]>, data: &[u8]) -> Result<Vec<u8>, RebuildError> {
        for signature_type in self.candidate_types()? {
            let draft = ItemDraft {
                signature_type,
                owner: self.owner.clone(),
                target: self.target,
                anchor,
                tags: self.tags.clone(),
                data: data.to_vec(),
            };
            let bytes = draft.finish(&self.signature);
            let verifies = DataItem::parse(&bytes)
                .is_ok_and(|item| item.id() == self.id && verify::verify(&item).is_ok());
            if verifies {
                return Ok(bytes);
            }
        }
        Err(RebuildError::DoesNotVerify)
    }

    /// The item, from what the JSON shows and what `fetched` adds: each combination of the
    /// fetched and the shown anchor and data, fetched first, until one verifies.
    pub fn rebuild(&self, fetched: &Fetched) -> Result<Vec<u8>, RebuildError> {
        let mut anchors = Vec::new();
        anchors.extend(fetched.anchor);
        if !anchors.contains(&self.anchor.guess()) {
            anchors.push(self.anchor.guess());
        }
        let shown = self.data.guess();
        let mut datas: Vec<&[u8]> = Vec::new();
        datas.extend(fetched.data.as_deref());
        if !datas.contains(&shown.as_slice()) {
            datas.push(&shown);
        }
        for anchor in &anchors {
            for data in &datas {
                match self.assemble(*anchor, data) {
                    Err(RebuildError::DoesNotVerify) => {}
                    other => return other,
                }
            }
        }
        match self.lost() {
            Some(what) if fetched.is_empty() => Err(RebuildError::Lost(what)),
            _ => Err(RebuildError::DoesNotVerify),
        }
    }
}

/// A schedule node rebuilt: its assignment (or era-M1 wrapper) and its message, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltNode {
    pub assignment: Vec<u8>,
    pub message: Option<Vec<u8>>,
    /// The assignment is an era-M1 wrapper (its data is the bundle of the message).
    pub legacy: bool,
}

/// Which item of a node did not rebuild, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} {id}: {error}")]
pub struct NodeError {
    pub which: &'static str,
    pub id: String,
    pub error: RebuildError,
}

impl NodeError {
    /// Whether bytes from a gateway might still rebuild it.
    pub fn lost(&self) -> bool {
        matches!(self.error, RebuildError::Lost(_))
    }
}

/// Whether an assignment's JSON is an era-M1 wrapper: the wrapper carries the bundle tags
/// (PROTOCOL 1.6.3), which an Assignment never does.
pub fn is_legacy_wrapper(assignment: &ItemJson) -> bool {
    assignment.tag("Bundle-Format").is_some()
}

/// Rebuilds one item; when the JSON may have lost something, asks `fetch` for the bytes
/// once and tries again.
fn rebuild_item(
    json: &ItemJson,
    parts: Result<ItemParts, RebuildError>,
    which: &'static str,
    fetch: &mut dyn FnMut(&ItemParts) -> Fetched,
) -> Result<Vec<u8>, NodeError> {
    let error = |error| NodeError {
        which,
        id: json.id.clone(),
        error,
    };
    let parts = parts.map_err(error)?;
    match parts.rebuild(&Fetched::default()) {
        Err(RebuildError::Lost(what)) => {
            let fetched = fetch(&parts);
            if fetched.is_empty() {
                return Err(error(RebuildError::Lost(what)));
            }
            parts.rebuild(&fetched).map_err(error)
        }
        other => other.map_err(error),
    }
}

/// Rebuilds a node; `message_role` is `Process` for the process node, else `Message`.
/// `fetch` is asked for the bytes of an item whose JSON may have lost some (a gateway), and
/// may answer nothing.
pub fn rebuild_node(
    node: &NodeJson,
    message_role: Role,
    fetch: &mut dyn FnMut(&ItemParts) -> Fetched,
) -> Result<RebuiltNode, NodeError> {
    let message = match &node.message {
        Some(json) => Some(rebuild_item(
            json,
            ItemParts::from_json(json, message_role),
            "message",
            fetch,
        )?),
        None => None,
    };
    let legacy = is_legacy_wrapper(&node.assignment);
    let assignment = if legacy {
        let Some(message) = &message else {
            return Err(NodeError {
                which: "wrapper",
                id: node.assignment.id.clone(),
                error: RebuildError::Missing("message"),
            });
        };
        let bundle = bundle_of(&[message]);
        let parts = ItemParts::from_json(&node.assignment, Role::LegacyWrapper)
            .map(|parts| parts.with_data(bundle));
        rebuild_item(&node.assignment, parts, "wrapper", fetch)?
    } else {
        let parts = ItemParts::from_json(&node.assignment, Role::Assignment);
        rebuild_item(&node.assignment, parts, "assignment", fetch)?
    };
    Ok(RebuiltNode {
        assignment,
        message,
        legacy,
    })
}

/// A bundle of items, each with its id (items that do not parse get a zero id; the bundle
/// is then refused later by whoever checks it).
fn bundle_of(items: &[&Vec<u8>]) -> Vec<u8> {
    let entries: Vec<(&[u8], Id)> = items
        .iter()
        .map(|bytes| {
            let id = DataItem::parse(bytes).map_or([0; 32], |item| item.id());
            (bytes.as_slice(), id)
        })
        .collect();
    encode_bundle(&entries)
}

/// The stored-wrapper shape the import pipeline reads (PROTOCOL 1.6.2): an era-M1 wrapper is
/// itself; otherwise an unsigned carrier whose data is the bundle `[assignment(, item)]`.
/// The carrier is never stored: the pipeline keeps only the items inside it.
pub fn wrapper_of(node: &RebuiltNode) -> Vec<u8> {
    if node.legacy {
        return node.assignment.clone();
    }
    let mut items = vec![&node.assignment];
    items.extend(node.message.as_ref());
    let carrier = ItemDraft {
        signature_type: SignatureType::ED25519,
        owner: vec![0; 32],
        target: None,
        anchor: None,
        tags: vec![
            ("Bundle-Format".to_string(), "binary".to_string()),
            ("Bundle-Version".to_string(), "2.0.0".to_string()),
        ],
        data: bundle_of(&items),
    };
    carrier.finish(&[0; 64])
}

#[cfg(test)]
mod tests;
