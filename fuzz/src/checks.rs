//! The checks of the fuzz targets, one function per target. Each takes arbitrary bytes, must
//! not panic, and asserts the cheap invariants of its parser: round trips where an encoder
//! exists, limits respected, the streaming header check agreeing with the full parse.
//!
//! Shared by the libFuzzer targets (`fuzz/fuzz_targets/`) and the main crate's regression
//! test (`tests/fuzz_corpus.rs`), which replays the committed corpus through these same
//! functions. The parent module provides `ans104`, `http::{query, route}` and `reads`: the
//! fuzz crate's own copies of the main crate's source files, or the main crate's modules.

use super::ans104::bundle::{Bundle, encode_bundle};
use super::ans104::dedupe::{self, DedupeInput, TagOrder};
use super::ans104::item::{
    DataItem, ParseError, SignatureType, declared_tag_counts, header_complete, sha256,
};
use super::ans104::limits::{self, LimitError};
use super::ans104::verify::{self, VerifyError};
use super::ans104::{b64, tags};
use super::http::query::{Query, QueryError};
use super::http::route::{Route, route as route_of};
use super::reads::PageMode;
use hyper::Method;
use std::collections::HashMap;

/// `DataItem::parse` and `parse_within_limits` (what `POST /` runs), the streaming header
/// check that judges the tag counts before the body is in, and the signature verifier.
pub fn item(bytes: &[u8]) {
    let declared = declared_tag_counts(bytes);
    let parsed = DataItem::parse(bytes);
    let within = DataItem::parse_within_limits(bytes);
    if let Ok(item) = &parsed {
        parsed_item(bytes, item);
        assert_eq!(
            declared,
            Some((item.tag_count, item.raw_tags.len() as u64)),
            "the header check reads other counts than the parse"
        );
        assert!(header_complete(bytes));
    }
    // The streaming check: a prefix that already tells the counts tells the final ones.
    for len in [bytes.len() / 2, bytes.len().saturating_sub(1)] {
        let prefix = &bytes[..len];
        if let Some(counts) = declared_tag_counts(prefix) {
            assert_eq!(Some(counts), declared, "prefix of {len} bytes");
            assert!(header_complete(prefix));
        }
    }
    // The limits refuse from the declared counts, and change nothing else.
    match declared.map(|(count, len)| limits::check_header(count, len)) {
        Some(Err(limit)) => assert_eq!(
            within.as_ref().err(),
            Some(&ParseError::Limits(limit)),
            "counts over the limits must be refused from the header"
        ),
        _ => assert_eq!(
            parsed.as_ref().map(fields),
            within.as_ref().map(fields),
            "within the limits both parses agree"
        ),
    }
    if let Ok(item) = &within {
        assert!(item.tag_count <= limits::MAX_TAGS);
        assert!(item.raw_tags.len() as u64 <= limits::MAX_TAG_BYTES);
        assert!(item.tags.len() as u64 <= limits::MAX_TAGS);
        verify_dispatch(item);
        // What `POST /` does next: the per-tag limits, then the dedupe hashes.
        if limits::check_tags(item.tags.iter().map(|tag| (tag.name, tag.value))).is_ok() {
            let (sorted, as_given) = dedupe::item_dedupe_hashes(item);
            assert_eq!(
                sorted,
                dedupe::item_dedupe_hash(item, TagOrder::Sorted),
                "the one-pass hashes differ from the single ones"
            );
            assert_eq!(as_given, dedupe::item_dedupe_hash(item, TagOrder::AsGiven));
        }
    }
    // A stored wrapper's data is a bundle.
    if let Ok(item) = &parsed {
        bundle(item.data);
    }
}

/// The fields of a parsed item, comparable.
type Fields<'a> = (
    SignatureType,
    &'a [u8],
    &'a [u8],
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    u64,
    &'a [u8],
    Vec<(&'a str, &'a str)>,
    &'a [u8],
);

fn fields<'a>(item: &DataItem<'a>) -> Fields<'a> {
    (
        item.signature_type,
        item.signature,
        item.owner,
        item.target,
        item.anchor,
        item.tag_count,
        item.raw_tags,
        item.tags.iter().map(|tag| (tag.name, tag.value)).collect(),
        item.data,
    )
}

/// What holds for every item that parses.
fn parsed_item(bytes: &[u8], item: &DataItem<'_>) {
    assert_eq!(item.to_bytes(), bytes, "parse → encode is not the identity");
    assert_eq!(item.raw(), bytes);
    let (signature_len, owner_len) = item
        .signature_type
        .lengths()
        .expect("a parsed item has a known signature type");
    assert_eq!(item.signature.len(), signature_len);
    assert_eq!(item.owner.len(), owner_len);
    assert!(item.target.is_none_or(|target| target.len() == 32));
    assert!(item.anchor.is_none_or(|anchor| anchor.len() == 32));
    assert_eq!(item.tags.len() as u64, item.tag_count);
    assert_eq!(item.id(), sha256(item.signature));
    assert_eq!(item.owner_address(), sha256(item.owner));
    // The decoded tags re-encode canonically and decode back to themselves.
    let pairs: Vec<(&str, &str)> = item.tags.iter().map(|tag| (tag.name, tag.value)).collect();
    let canonical = tags::encode(&pairs);
    assert!(canonical.len() <= item.raw_tags.len());
    let again = tags::decode(&canonical, item.tag_count).expect("canonical tags decode");
    assert_eq!(again, item.tags);
}

/// `verify::verify` dispatches on the signature type: the four kinds the SU checks either
/// verify or fail as themselves, every other type is `Unsupported`; a verified Ethereum
/// signature is canonical, and its malleated twin is refused.
fn verify_dispatch(item: &DataItem<'_>) {
    let result = verify::verify(item);
    match item.signature_type {
        SignatureType::ARWEAVE | SignatureType::ED25519 | SignatureType::SOLANA => {
            assert!(
                matches!(result, Ok(()) | Err(VerifyError::Failed)),
                "{result:?}"
            );
        }
        SignatureType::ETHEREUM => {
            assert!(
                !matches!(
                    result,
                    Err(VerifyError::Failed | VerifyError::Unsupported(_))
                ),
                "{result:?}"
            );
            if result.is_ok() {
                ethereum_twin_is_refused(item);
            }
        }
        SignatureType(other) => assert_eq!(result, Err(VerifyError::Unsupported(other))),
    }
}

fn ethereum_twin_is_refused(item: &DataItem<'_>) {
    use k256::ecdsa::Signature;
    let (rs, v) = item.signature.split_at(64);
    let signature = Signature::from_slice(rs).expect("a verified signature decodes");
    assert!(
        signature.normalize_s().is_none(),
        "a high-S signature verified"
    );
    let (r, s) = signature.split_scalars();
    let twin = Signature::from_scalars(r, -*s).expect("n - s is a scalar");
    let mut twin_signature = twin.to_bytes().to_vec();
    twin_signature.push(if v[0] == 27 { 28 } else { 27 });
    let mut bytes = item.raw().to_vec();
    bytes[2..2 + 65].copy_from_slice(&twin_signature);
    let twin_item = DataItem::parse_within_limits(&bytes).expect("the twin parses");
    assert_eq!(
        verify::verify(&twin_item),
        Err(VerifyError::EthereumHighS),
        "the malleated twin of a valid signature verified"
    );
}

/// `tags::decode` with a declared count (the first byte, or with its top bit set the next
/// eight bytes as the header's `u64`), and what is computed from decoded tags: the limits
/// and the dedupe hash.
pub fn tags(bytes: &[u8]) {
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let (declared, raw) = if first & 0x80 == 0 {
        (u64::from(first), rest)
    } else if let Some((count, raw)) = rest.split_first_chunk::<8>() {
        (u64::from_le_bytes(*count), raw)
    } else {
        return;
    };
    let Ok(decoded) = tags::decode(raw, declared) else {
        return;
    };
    assert_eq!(decoded.len() as u64, declared);
    assert!(
        decoded.len() <= raw.len() / 2,
        "a record takes at least two bytes"
    );
    let pairs: Vec<(&str, &str)> = decoded.iter().map(|tag| (tag.name, tag.value)).collect();
    let canonical = tags::encode(&pairs);
    assert!(
        canonical.len() <= raw.len(),
        "the canonical encoding is never longer"
    );
    assert_eq!(tags::decode(&canonical, declared), Ok(decoded));
    // The limits the SU's own drafts obey, against their definition.
    match limits::check_draft_tags(&pairs) {
        Ok(()) => {
            assert!(pairs.len() as u64 <= limits::MAX_TAGS);
            assert!(canonical.len() as u64 <= limits::MAX_TAG_BYTES);
            assert!(pairs.iter().all(|(name, value)| !name.is_empty()
                && name.len() <= limits::MAX_TAG_NAME
                && value.len() <= limits::MAX_TAG_VALUE));
        }
        Err(LimitError::TooManyTags(count)) => assert!(count > limits::MAX_TAGS),
        Err(LimitError::TagBytes(len)) => assert!(len > limits::MAX_TAG_BYTES),
        Err(_) => assert!(limits::check_tags(pairs.iter().copied()).is_err()),
    }
    // The sorted dedupe hash does not depend on the order of the tags.
    let reversed: Vec<(&str, &str)> = pairs.iter().rev().copied().collect();
    let hash = |tags: &[(&str, &str)]| {
        let input = DedupeInput {
            target: &[],
            anchor: &[],
            tags,
            data: b"d",
        };
        dedupe::dedupe_hash(&input, TagOrder::Sorted)
    };
    assert_eq!(hash(&pairs), hash(&reversed));
}

/// `Bundle::parse`: a bundle that parses re-encodes to its bytes, and every item in it
/// round-trips.
pub fn bundle(bytes: &[u8]) {
    let Ok(parsed) = Bundle::parse(bytes) else {
        return;
    };
    assert!(parsed.items.len() <= bytes.len().saturating_sub(32) / 64);
    let entries: Vec<(&[u8], [u8; 32])> = parsed
        .items
        .iter()
        .map(|item| (item.raw(), item.id()))
        .collect();
    assert_eq!(
        encode_bundle(&entries),
        bytes,
        "parse → encode is not the identity"
    );
    for item in &parsed.items {
        parsed_item(item.raw(), item);
    }
}

/// The query string of every read and write (`Query`): first occurrence wins, the process
/// id, and the paging parameters against a model of their rules.
pub fn query(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let query = Query::parse(Some(text));
    let mut first: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(bytes).take(64) {
        first
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    for (name, value) in &first {
        assert_eq!(query.get(name), Some(value.as_str()), "{name}");
        assert!(query.has(name));
    }
    if let Some(id) = query.process_id() {
        assert!(!id.is_empty());
        assert!(query.get("process-id") == Some(id) || query.get("proc-id") == Some(id));
        if let Some(raw) = b64::decode_id(id) {
            assert_eq!(b64::encode(&raw), id, "a non-canonical id decodes");
        }
    }
    for (default_limit, max_limit) in [(100, 5000), (1, 1), (5000, 100)] {
        page(&query, default_limit, max_limit);
    }
}

/// The model of `Query::page`: what each parameter's text means.
fn page(query: &Query, default_limit: usize, max_limit: usize) {
    let integer = |name: &str| match query.get(name) {
        None | Some("") => Ok(None),
        Some(value) => value.parse::<i64>().map(Some).map_err(|_| value),
    };
    match query.page(default_limit, max_limit) {
        Ok((mode, limit)) => {
            match integer("limit") {
                Ok(None) => assert_eq!(limit, default_limit),
                Ok(Some(asked)) => {
                    assert!(asked >= 1);
                    assert_eq!(limit as u64, (asked as u64).min(max_limit as u64));
                }
                Err(value) => panic!("limit {value:?} accepted"),
            }
            let nonce = query.has("from-nonce") || query.has("to-nonce");
            let (from_name, to_name, from, to) = match mode {
                PageMode::Nonce { from, to } => ("from-nonce", "to-nonce", from, to),
                PageMode::Timestamp { from, to } => ("from", "to", from, to),
            };
            assert_eq!(nonce, matches!(mode, PageMode::Nonce { .. }));
            let from_asked = integer(from_name).expect("an accepted from is an integer");
            assert_eq!(from, from_asked.and_then(|v| u64::try_from(v).ok()));
            let to_asked = integer(to_name).expect("an accepted to is an integer");
            assert!(to_asked.is_none_or(|v| v >= 0));
            assert_eq!(to, to_asked.map(|v| v as u64));
        }
        Err(QueryError::NotInteger { name, value }) => {
            assert_eq!(query.get(name), Some(value.as_str()));
            assert!(value.parse::<i64>().is_err());
        }
        Err(QueryError::LimitTooSmall(limit)) => {
            assert!(limit <= 0);
            assert_eq!(integer("limit"), Ok(Some(limit)));
        }
        Err(QueryError::Negative(name)) => {
            assert!(matches!(integer(name), Ok(Some(v)) if v < 0));
        }
    }
}

const METHODS: usize = 9;

fn method(selector: u8) -> Method {
    match usize::from(selector) % METHODS {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::OPTIONS,
        3 => Method::HEAD,
        4 => Method::PUT,
        5 => Method::DELETE,
        6 => Method::PATCH,
        7 => Method::CONNECT,
        _ => Method::TRACE,
    }
}

/// The path a route is served at.
fn path_of(route: &Route) -> Option<String> {
    Some(match route {
        Route::Info | Route::Write => "/".into(),
        Route::Timestamp => "/timestamp".into(),
        Route::Health => "/health".into(),
        Route::Metrics => "/metrics".into(),
        Route::Feed => "/~su/log".into(),
        Route::ProcessCount => "/~su/process-count".into(),
        Route::ById(id) => format!("/{id}"),
        Route::Process(id) => format!("/processes/{id}"),
        Route::Latest(id) => format!("/{id}/latest"),
        Route::Stream(id) => format!("/{id}/stream"),
        Route::Preflight | Route::NotFound => return None,
    })
}

/// `route::route`: the first byte picks the method, the rest is the path. Every route but
/// the preflight and not-found ones has one path, which routes back to it.
pub fn route(bytes: &[u8]) {
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = method(selector);
    let found = route_of(&method, path);
    if method == Method::OPTIONS {
        assert_eq!(found, Route::Preflight);
        return;
    }
    match &found {
        Route::ById(id) | Route::Process(id) | Route::Latest(id) | Route::Stream(id) => {
            assert_eq!(method, Method::GET);
            assert!(!id.is_empty() && !id.contains('/'), "{id:?}");
            if let Some(raw) = b64::decode_id(id) {
                assert_eq!(&b64::encode(&raw), id, "a non-canonical id decodes");
            }
        }
        Route::Write => assert_eq!(method, Method::POST),
        Route::Info
        | Route::Timestamp
        | Route::Health
        | Route::Metrics
        | Route::Feed
        | Route::ProcessCount => {
            assert_eq!(method, Method::GET);
        }
        Route::Preflight => panic!("a preflight without OPTIONS"),
        Route::NotFound => {}
    }
    if let Some(canonical) = path_of(&found) {
        assert_eq!(
            path.strip_prefix('/').unwrap_or(path),
            &canonical[1..],
            "another path reaches {found:?}"
        );
        assert_eq!(route_of(&method, &canonical), found);
    }
}
