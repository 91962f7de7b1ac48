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
/// `data` values the reference's Postgres store served for old rows, where they differ from
/// what the bytes render (`import-postgres` only).
pub const DATA_OVERRIDES: &str = "data_overrides";

/// Every column family, in creation order.
pub const ALL: [&str; 12] = [
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
    DATA_OVERRIDES,
];

/// What a read-write instance is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `su serve` and every other writer: typical items (1–3 KiB) stay in the SSTs, next to
    /// their keys; large data goes to blob files.
    Serve,
    /// An import: every item of `BULK_MIN_BLOB_SIZE` or more goes to blob files, so the
    /// compactions a bulk load sets off move keys, not gigabytes of items.
    Bulk,
}

/// Items at least this large are blobs in the serving profile.
const SERVE_MIN_BLOB_SIZE: u64 = 4096;
/// ... and in the bulk profile (an Assignment is about 1.1 KiB).
const BULK_MIN_BLOB_SIZE: u64 = 512;

/// L0 files that set off a compaction in the bulk profile (the serving profile keeps
/// RocksDB's default, `SERVE_L0_COMPACTION_TRIGGER`).
const BULK_L0_COMPACTION_TRIGGER: i32 = 64;
/// RocksDB's default L0 trigger, which the serving profile keeps: a store handed to `su serve`
/// with more L0 files than this is compacted first (`Store::finish_import`).
pub const SERVE_L0_COMPACTION_TRIGGER: u64 = 4;

/// Options per column family, sharing one block cache. Both profiles open the same CFs and
/// read each other's files: whether a value is a blob is recorded with it.
pub fn descriptors(cache: &Cache, profile: Profile) -> Vec<ColumnFamilyDescriptor> {
    ALL.iter()
        .map(|&name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(cache);
            table.set_bloom_filter(10.0, false);
            let mut options = Options::default();
            options.set_block_based_table_factory(&table);
            match name {
                ITEMS => {
                    options.set_enable_blob_files(true);
                    options.set_min_blob_size(match profile {
                        Profile::Serve => SERVE_MIN_BLOB_SIZE,
                        Profile::Bulk => BULK_MIN_BLOB_SIZE,
                    });
                    options.set_write_buffer_size(16 << 20);
                }
                _ => options.set_write_buffer_size(4 << 20),
            }
            if profile == Profile::Bulk {
                // Keys of a bulk load arrive in random order (ids): each L0 file overlaps all
                // of the last level, so every L0 compaction rewrites that level. Fewer ones
                // rewrite less: the import's `items` and `by_id` compactions wrote 968 MB
                // per million messages at 16 files, half of that at 64 (BENCHMARKS.md). The
                // L0 files left at the end are compacted by `Store::finish_import`.
                options.set_level_zero_file_num_compaction_trigger(BULK_L0_COMPACTION_TRIGGER);
                options.set_level_zero_slowdown_writes_trigger(BULK_L0_COMPACTION_TRIGGER * 2);
                options.set_level_zero_stop_writes_trigger(BULK_L0_COMPACTION_TRIGGER * 3);
                options.set_max_write_buffer_number(3);
                options.set_max_bytes_for_level_base(1 << 30);
                options.set_target_file_size_base(64 << 20);
            }
            ColumnFamilyDescriptor::new(name, options)
        })
        .collect()
}
