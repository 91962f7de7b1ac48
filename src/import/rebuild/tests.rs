//! Rebuilding items from the JSON `render` writes: every signature type the SU verifies,
//! lossless and lossy fields, era-M1 wrappers, and the carrier the pipeline reads.

use super::*;
use crate::ans104::ItemDraft;
use crate::import::wrapper::{Parsed, parse_message_wrapper, parse_process_wrapper};
use crate::render::{self, AssignmentStyle, MessageStyle, NodeParts};
use crate::wallet::{SigningSalt, Wallet};
use std::sync::OnceLock;

fn wallet() -> &'static Wallet {
    static WALLET: OnceLock<Wallet> = OnceLock::new();
    WALLET.get_or_init(|| {
        let jwk = Wallet::generate().unwrap();
        Wallet::from_jwk(&jwk, SigningSalt::Max).unwrap()
    })
}

fn draft(tags: &[(&str, &str)], data: &[u8], anchor: Option<[u8; 32]>) -> ItemDraft {
    let mut draft = wallet().draft(
        tags.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        data.to_vec(),
    );
    draft.anchor = anchor;
    draft
}

fn rsa(draft: &ItemDraft) -> Vec<u8> {
    wallet().sign(draft).unwrap().0
}

fn ethereum(draft: ItemDraft) -> Vec<u8> {
    draft.finish_ethereum(&[9; 32])
}

fn ed25519(mut draft: ItemDraft, signature_type: SignatureType) -> Vec<u8> {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[7; 32]);
    draft.signature_type = signature_type;
    draft.owner = key.verifying_key().to_bytes().to_vec();
    let signature = key.sign(&draft.signing_message());
    draft.finish(&signature.to_bytes())
}

const PROCESS: &str = "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo";

fn assignment(nonce: u64, message: Option<&str>) -> Vec<u8> {
    let nonce = nonce.to_string();
    let mut tags = vec![
        ("Process", PROCESS),
        ("Epoch", "0"),
        ("Nonce", nonce.as_str()),
        ("Hash-Chain", "y2sG3xZGRJ8bDKZoVyJpSJBFXHSS2u0QfJzPH0UWRdo"),
        ("Block-Height", "000001526366"),
        ("Timestamp", "1728856585638"),
        ("Data-Protocol", "ao"),
        ("Type", "Assignment"),
        ("Variant", "ao.TN.1"),
    ];
    tags.extend(message.map(|id| ("Message", id)));
    rsa(&draft(&tags, b"", Some([0xfe; 32])))
}

fn message(data: &[u8], anchor: Option<[u8; 32]>) -> ItemDraft {
    let mut draft = draft(&[("Type", "Message"), ("Action", "Eval")], data, anchor);
    draft.target = b64::decode_id(PROCESS);
    draft
}

/// The node JSON `render` writes for these items, with `show-anchor`.
fn node_json(
    assignment: &[u8],
    assignment_style: AssignmentStyle,
    message: Option<(&[u8], MessageStyle)>,
) -> NodeJson {
    let assignment = DataItem::parse(assignment).unwrap();
    let message_item = message.map(|(bytes, style)| (DataItem::parse(bytes).unwrap(), style));
    let parts = NodeParts {
        assignment: &assignment,
        assignment_style,
        message: message_item.as_ref().map(|(item, style)| (item, *style)),
        kept_data: None,
    };
    let mut out = Vec::new();
    render::node(&mut out, &parts, true);
    serde_json::from_slice(&out).unwrap()
}

fn no_gateway(_: &ItemParts) -> Fetched {
    Fetched::default()
}

fn id_of(bytes: &[u8]) -> String {
    b64::encode(&DataItem::parse(bytes).unwrap().id())
}

#[test]
fn a_message_node_rebuilds_byte_for_byte() {
    let body = rsa(&message(
        b"print('hi')",
        Some(*b"00000000000000000000000000000042"),
    ));
    let assignment = assignment(2, Some(&id_of(&body)));
    let json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&body, MessageStyle::Message)),
    );
    let rebuilt = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap();
    assert_eq!(
        rebuilt.assignment, assignment,
        "the random anchor comes back from base64url"
    );
    assert_eq!(rebuilt.message.as_ref(), Some(&body));
    assert!(!rebuilt.legacy);
    let entry = parse_message_wrapper(&wrapper_of(&rebuilt)).unwrap();
    assert_eq!(entry.assignment, assignment);
    assert_eq!(entry.body, Some(body));
    assert_eq!(entry.nonce, 2);
}

#[test]
fn an_assignment_only_node_rebuilds() {
    let assignment = assignment(1, Some("clvz3ehb8NzG9zbW_U_oQ5-1eARbsuErxEdG4twiC-0"));
    let json = node_json(&assignment, AssignmentStyle::Assignment, None);
    let rebuilt = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap();
    assert_eq!(rebuilt.assignment, assignment);
    assert_eq!(rebuilt.message, None);
    let entry = parse_message_wrapper(&wrapper_of(&rebuilt)).unwrap();
    assert_eq!(entry.body, None);
}

#[test]
fn ethereum_and_ed25519_items_find_their_signature_type() {
    let items = [
        ethereum(message(b"from a wallet", None)),
        ed25519(message(b"ed", None), SignatureType::ED25519),
        ed25519(message(b"sol", None), SignatureType::SOLANA),
    ];
    for body in items {
        let assignment = assignment(3, Some(&id_of(&body)));
        let json = node_json(
            &assignment,
            AssignmentStyle::Assignment,
            Some((&body, MessageStyle::Message)),
        );
        let rebuilt = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap();
        assert_eq!(rebuilt.message, Some(body));
    }
}

#[test]
fn data_the_json_lost_comes_from_the_fetcher() {
    let data = b"bytes \xff\xfe that are not UTF-8".to_vec();
    let body = rsa(&message(&data, None));
    let assignment = assignment(4, Some(&id_of(&body)));
    let json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&body, MessageStyle::Message)),
    );
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert!(error.lost(), "{error}");
    assert_eq!(error.which, "message");
    assert_eq!(error.error, RebuildError::Lost("data or anchor"));
    let mut asked = 0;
    let rebuilt = rebuild_node(&json, Role::Message, &mut |parts: &ItemParts| {
        asked += 1;
        assert_eq!(b64::encode(&parts.id), id_of(&body));
        Fetched {
            anchor: None,
            data: Some(data.clone()),
        }
    })
    .unwrap();
    assert_eq!(rebuilt.message, Some(body));
    assert_eq!(asked, 1);
    // A fetcher with the wrong bytes does not make it verify.
    let error = rebuild_node(&json, Role::Message, &mut |_: &ItemParts| Fetched {
        anchor: None,
        data: Some(b"other".to_vec()),
    })
    .unwrap_err();
    assert_eq!(error.error, RebuildError::DoesNotVerify);
}

#[test]
fn a_lost_anchor_comes_from_the_fetcher() {
    let anchor = [0x80; 32];
    let body = ethereum(message(b"ok", Some(anchor)));
    let assignment = assignment(5, Some(&id_of(&body)));
    let json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&body, MessageStyle::Message)),
    );
    assert!(json.message.as_ref().unwrap().anchor.is_none());
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert_eq!(error.error, RebuildError::Lost("anchor"));
    let rebuilt = rebuild_node(&json, Role::Message, &mut |_: &ItemParts| Fetched {
        anchor: Some(Some(anchor)),
        data: None,
    })
    .unwrap();
    assert_eq!(rebuilt.message, Some(body));
}

#[test]
fn data_with_a_genuine_replacement_character_needs_no_fetch() {
    let body = rsa(&message("a \u{FFFD} b".as_bytes(), None));
    let assignment = assignment(6, Some(&id_of(&body)));
    let json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&body, MessageStyle::Message)),
    );
    let rebuilt = rebuild_node(&json, Role::Message, &mut |_: &ItemParts| {
        panic!("nothing was lost")
    })
    .unwrap();
    assert_eq!(rebuilt.message, Some(body));
}

#[test]
fn a_process_node_with_binary_data_rebuilds_from_the_fetcher() {
    let data = vec![0u8, 159, 146, 150];
    let process = rsa(&draft(&[("Type", "Process"), ("Module", "m")], &data, None));
    let assignment = assignment(0, None);
    let json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&process, MessageStyle::Process)),
    );
    assert!(json.message.as_ref().unwrap().data.is_none());
    let error = rebuild_node(&json, Role::Process, &mut no_gateway).unwrap_err();
    assert_eq!(error.error, RebuildError::Lost("data or anchor"));
    let rebuilt = rebuild_node(&json, Role::Process, &mut |_: &ItemParts| Fetched {
        anchor: None,
        data: Some(data.clone()),
    })
    .unwrap();
    assert_eq!(rebuilt.message.as_ref(), Some(&process));
    let Parsed::Entry(entry) = parse_process_wrapper(&wrapper_of(&rebuilt)).unwrap() else {
        panic!("a P2 process is an entry")
    };
    assert_eq!(entry.nonce, 0);
    assert_eq!(entry.body, Some(process));
}

#[test]
fn an_era_m1_wrapper_rebuilds_around_its_message() {
    let body = rsa(&message(b"old", Some(*b"abcdefghijabcdefghijabcdefghij01")));
    let bundle = encode_bundle(&[(&body[..], DataItem::parse(&body).unwrap().id())]);
    let anchor = *b"wrapper-anchor-utf8-0123456789ab";
    let wrapper = rsa(&draft(
        &[
            ("Bundle-Format", "binary"),
            ("Bundle-Version", "2.0.0"),
            ("Process", PROCESS),
            ("Epoch", "0"),
            ("Nonce", "7"),
            ("Hash-Chain", "y2sG3xZGRJ8bDKZoVyJpSJBFXHSS2u0QfJzPH0UWRdo"),
            ("Block-Height", "000001526366"),
            ("Timestamp", "1711500000000"),
        ],
        &bundle,
        Some(anchor),
    ));
    let json = node_json(
        &wrapper,
        AssignmentStyle::LegacyWrapper,
        Some((&body, MessageStyle::Message)),
    );
    assert!(is_legacy_wrapper(&json.assignment));
    let rebuilt = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap();
    assert!(rebuilt.legacy);
    assert_eq!(rebuilt.assignment, wrapper);
    assert_eq!(
        wrapper_of(&rebuilt),
        wrapper,
        "an M1 wrapper is its own carrier"
    );
    let entry = parse_message_wrapper(&wrapper).unwrap();
    assert_eq!(entry.nonce, 7);
}

#[test]
fn malformed_json_values_are_errors() {
    let body = rsa(&message(b"x", None));
    let assignment = assignment(1, Some(&id_of(&body)));
    let mut json = node_json(
        &assignment,
        AssignmentStyle::Assignment,
        Some((&body, MessageStyle::Message)),
    );
    let message = json.message.as_mut().unwrap();
    message.id = b64::encode(&[1; 32]);
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert_eq!(error.error, RebuildError::Id);
    let mut json = node_json(&assignment, AssignmentStyle::Assignment, None);
    json.assignment.anchor = Some("short".to_string());
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert_eq!(error.error, RebuildError::Anchor);
    let mut json = node_json(&assignment, AssignmentStyle::Assignment, None);
    json.assignment.owner.key = b64::encode(&[1; 7]);
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert!(matches!(error.error, RebuildError::SignatureType { .. }));
    let mut json = node_json(&assignment, AssignmentStyle::Assignment, None);
    json.assignment.tags[2].value = "9".to_string();
    let error = rebuild_node(&json, Role::Message, &mut no_gateway).unwrap_err();
    assert_eq!(error.error, RebuildError::DoesNotVerify);
}
