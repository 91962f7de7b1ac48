//! Fuzz target `bundle`: the checks live in `fuzz/src/checks.rs`, shared with the regression
//! test `tests/fuzz_corpus.rs` that replays the committed corpus without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| ao_su_fuzz::checks::bundle(bytes));
