//! su: an ao Scheduler Unit on an embedded RocksDB store.
//!
//! Module map: `ans104` (data items, pure) · `wallet` (the SU key) · `domain` (tips, hash
//! chain, assignment tags) · `store` (RocksDB) · `sequencer` (shard threads + committer) ·
//! `reads` and `render` (the read model and its JSON) · `http` (hyper) · `upstream`
//! (gateway, block height) · `outbox` (uploads) · `admin` (the operator socket) · `config` ·
//! `telemetry` · `cli` · `router` (router mode: placements, SU health) · `location` (the
//! Scheduler-Location record kept published).

pub mod admin;
pub mod ans104;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod import;
pub mod live;
pub mod location;
pub mod outbox;
pub mod reads;
pub mod render;
pub mod replication;
pub mod router;
pub mod sequencer;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod wallet;
