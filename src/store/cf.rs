//! The column-family table: every CF name and its options. Nothing else spells a CF name.
//! The byte layouts are documented in `schema/rocksdb.md`.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options};

/// Schema metadata: `schema_version`, the persisted block height.
pub const META: &str = "meta";
/// Raw item bytes by id: client items and SU Assignments, stored once.
pub const ITEMS: &str = "items";
/// Schedule entries by `(process, nonce)`.
pub const ENTRIES: &str = "entries";
/// Timestamp index: `(process, timestamp, nonce)`.
pub const BY_TIME: &str = "by_time";
/// Id index: `(id, process, nonce)` for message, process and assignment ids.
pub const BY_ID: &str = "by_id";
/// Process records by process id.
pub const PROCESSES: &str = "processes";
/// Dedupe records: `(process, ordered dedupe hash)`.
pub const DEDUPE: &str = "dedupe";
/// The global change feed: every stored entry by commit sequence.
pub const LOG: &str = "log";
/// Items waiting to be uploaded, by `(sequence, slot)`.
pub const OUTBOX: &str = "outbox";
/// The router's placement table: which SU holds a process (router mode only).
pub const ROUTES: &str = "routes";
/// Importer checkpoints, by source (import commands only).
pub const CHECKPOINTS: &str = "checkpoints";

/// Every column family, in creation order.
pub const ALL: [&str; 11] = [
    META,
    ITEMS,
    ENTRIES,
    BY_TIME,
    BY_ID,
    PROCESSES,
    DEDUPE,
    LOG,
    OUTBOX,
    ROUTES,
    CHECKPOINTS,
];

/// Options per column family, sharing one block cache.
pub fn descriptors(cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    ALL.iter()
        .map(|&name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(cache);
            table.set_bloom_filter(10.0, false);
            let mut options = Options::default();
            options.set_block_based_table_factory(&table);
            match name {
                ITEMS => {
                    // Large data goes to blob files; typical items (1–3 KiB) stay in the SSTs.
                    options.set_enable_blob_files(true);
                    options.set_min_blob_size(4096);
                    options.set_write_buffer_size(16 << 20);
                }
                _ => options.set_write_buffer_size(4 << 20),
            }
            ColumnFamilyDescriptor::new(name, options)
        })
        .collect()
}
