//! Importing a reference SU's history (issue 19): its stored wrappers of every era become
//! store entries and legacy processes, verified as they go, in (nonce, timestamp) order.
//!
//! * `wrapper`: one stored wrapper → an entry or a legacy process, and its checks;
//! * `source`: what a source of history provides (`Source`), read by a reader thread;
//! * `postgres`: the reference's Postgres store, with or without its byte store;
//! * `rocksdb`: the reference's RocksDB-only store (`USE_LOCAL_STORE`, two directories);
//! * `pipeline`: parallel verification, links, duplicate ranks, batches and checkpoints;
//! * `rebuild` and `su`: a running SU's JSON rebuilt into items, and that SU as a source;
//! * `topup`: where an import from a running SU starts (after the store's last entry);
//! * `assigned`: dedupe hashes of assigned transactions, from the gateway;
//! * `cursor`: the checkpoint value in `meta/import_cursor`.

pub mod assigned;
pub mod cursor;
pub mod pipeline;
pub mod postgres;
pub mod rebuild;
pub mod rocksdb;
pub mod source;
pub mod su;
pub mod topup;
pub mod wrapper;

pub use wrapper::{ImportError, entry_from_inner_bundle, entry_from_wrapper};
