//! Fuzz target: untrusted bytes through the data-item and bundle parsers and the verifier.
//! Seed corpus: `fuzz/seed.sh` copies the real items and bundles from ../shared/fixtures.
#![no_main]

use ao_su::ans104::{Bundle, DataItem, verify};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(item) = DataItem::parse(bytes) {
        assert_eq!(item.to_bytes(), bytes);
        let _ = verify::verify(&item);
        let _ = Bundle::parse(item.data);
    }
    let _ = Bundle::parse(bytes);
});
