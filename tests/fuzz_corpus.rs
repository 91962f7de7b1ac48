//! The fuzz corpus as a regression test. Every committed input of `fuzz/corpus/<target>/`, and
//! every fixed crash kept in `fuzz/regressions/<target>/`, runs through the checks of its
//! fuzz target (`fuzz/src/checks.rs`, the very functions libFuzzer calls) against the main
//! crate's modules, without libFuzzer, so the plain test suite keeps them fixed.

// `checks.rs` reaches the modules it checks through its parent: here the crate root.
#[path = "../fuzz/src/checks.rs"]
mod checks;
mod http {
    pub use ao_su::http::{query, route};
}

use ao_su::ans104::{self, DataItem, ItemDraft, SignatureType, encode_bundle, verify};
use ao_su::reads;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression input of `target` through `check`; names each input
/// that panics.
fn replay(target: &str, check: fn(&[u8])) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no inputs");
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let bytes = std::fs::read(path).expect("a readable input");
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: inputs that panic: {failed:?}");
}

#[test]
fn item_corpus() {
    replay("item", checks::item);
}

#[test]
fn tags_corpus() {
    replay("tags", checks::tags);
}

#[test]
fn bundle_corpus() {
    replay("bundle", checks::bundle);
}

#[test]
fn query_corpus() {
    replay("query", checks::query);
}

#[test]
fn route_corpus() {
    replay("route", checks::route);
}

fn draft(signature_type: SignatureType, owner: Vec<u8>) -> ItemDraft {
    ItemDraft {
        signature_type,
        owner,
        target: Some([4; 32]),
        anchor: Some([5; 32]),
        tags: vec![
            ("Data-Protocol".into(), "ao".into()),
            ("Type".into(), "Message".into()),
            ("From-Process".into(), "p".into()),
        ],
        data: b"seed".to_vec(),
    }
}

fn ed25519_item(signature_type: SignatureType) -> Vec<u8> {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[7; 32]);
    let draft = draft(signature_type, key.verifying_key().to_bytes().to_vec());
    let signature = key.sign(&draft.signing_message());
    draft.finish(&signature.to_bytes())
}

fn ethereum_item() -> Vec<u8> {
    draft(SignatureType::ETHEREUM, Vec::new()).finish_ethereum(&[9; 32])
}

/// The hand-made seeds: an item of each signature type the SU verifies but RSA (the fixtures
/// hold real RSA items), and a small bundle of them.
fn hand_made_items() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("ed25519", ed25519_item(SignatureType::ED25519)),
        ("solana", ed25519_item(SignatureType::SOLANA)),
        ("ethereum", ethereum_item()),
    ]
}

fn hand_made_bundle() -> Vec<u8> {
    let items = hand_made_items();
    let entries: Vec<(&[u8], [u8; 32])> = items
        .iter()
        .map(|(_, bytes)| {
            let id = DataItem::parse(bytes).expect("parses").id();
            (&bytes[..], id)
        })
        .collect();
    encode_bundle(&entries)
}

#[test]
fn hand_made_seeds_verify_and_pass_the_checks() {
    for (name, bytes) in hand_made_items() {
        let item = DataItem::parse_within_limits(&bytes).expect("parses");
        assert_eq!(verify::verify(&item), Ok(()), "{name}");
        // For the Ethereum item this includes refusing its malleated twin.
        checks::item(&bytes);
    }
    checks::bundle(&hand_made_bundle());
}

/// Writes the hand-made seeds into `fuzz/corpus/`: `tools/fuzz.sh seed` runs it once, before
/// the corpus is fuzzed and minimized.
#[test]
#[ignore = "writes into fuzz/corpus; run by tools/fuzz.sh seed"]
fn write_hand_made_seeds() {
    let corpus = fuzz_dir().join("corpus");
    for (name, bytes) in hand_made_items() {
        let dir = corpus.join("item");
        std::fs::create_dir_all(&dir).expect("creates the corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("writes");
    }
    let dir = corpus.join("bundle");
    std::fs::create_dir_all(&dir).expect("creates the corpus directory");
    std::fs::write(dir.join("seed-hand-made"), hand_made_bundle()).expect("writes");
}
