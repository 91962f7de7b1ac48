//! ANS-104 hot paths: signing an Assignment with the SU wallet (both salt lengths), parsing
//! plus verifying a client item (salt 32 takes one RSA check, salt 478 two: see
//! `verify_rsa_pss`), and parsing a real bundle when the shared fixture is present.

use ao_su::ans104::{Bundle, DataItem, ItemDraft, verify::verify};
use ao_su::domain::{AssignmentFields, assignment_tags};
use ao_su::wallet::{SigningSalt, Wallet};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const SALTS: [(SigningSalt, &str); 2] = [
    (SigningSalt::Digest, "salt_32"),
    (SigningSalt::Max, "salt_478"),
];

fn assignment_draft(wallet: &Wallet) -> ItemDraft {
    let fields = AssignmentFields {
        process: [7; 32],
        nonce: 12_345,
        hash_chain: [3; 32],
        block_height: 1_736_676,
        timestamp: 1_755_708_950_818,
        message: Some([9; 32]),
        exclude: vec![],
    };
    wallet.draft(assignment_tags(&fields), vec![])
}

fn benches(c: &mut Criterion) {
    let jwk = Wallet::generate().expect("generate a wallet");
    let wallets = SALTS.map(|(salt, name)| (Wallet::from_jwk(&jwk, salt).unwrap(), name));

    let mut group = c.benchmark_group("sign");
    group.sample_size(50); // 100 RSA-4096 signatures do not fit criterion's default 5 s
    for (wallet, name) in &wallets {
        let draft = assignment_draft(wallet);
        group.bench_function(*name, |b| {
            b.iter(|| wallet.sign(black_box(&draft)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify");
    for (wallet, name) in &wallets {
        // A Message-shaped client item of 1 KiB, signed with this salt length.
        let mut draft = wallet.draft(
            vec![
                ("Data-Protocol".into(), "ao".into()),
                ("Variant".into(), "ao.TN.1".into()),
                ("Type".into(), "Message".into()),
                ("Action".into(), "Eval".into()),
            ],
            vec![b'x'; 1024],
        );
        draft.target = Some([7; 32]);
        let (bytes, _) = wallet.sign(&draft).unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let item = DataItem::parse(black_box(&bytes)).unwrap();
                verify(&item).unwrap();
            })
        });
    }
    group.finish();

    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/verbatim/message.bin"
    );
    if let Ok(bytes) = std::fs::read(fixture) {
        c.bench_function("parse/verbatim_bundle", |b| {
            b.iter(|| Bundle::parse(black_box(&bytes)).unwrap().items.len())
        });
    }
}

criterion_group!(ans104, benches);
criterion_main!(ans104);
