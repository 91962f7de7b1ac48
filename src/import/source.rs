//! What an importer reads from: a reference SU's processes in id order, and each one's stored
//! wrappers in (nonce, timestamp) order, in pages. Each source (Postgres, the RocksDB-only
//! store, a running SU) implements `Source`; the pipeline does the rest.

use super::cursor::RowKey;
use crate::store::records::DataOverride;

/// One stored wrapper and the columns the source keeps beside it (cross-checked against the
/// bytes; absent where the source has no such column).
#[derive(Debug, Clone, Default)]
pub struct SourceRow {
    pub key: Option<RowKey>,
    pub wrapper: Vec<u8>,
    pub nonce: Option<i64>,
    pub timestamp: Option<i64>,
    pub hash_chain: Option<String>,
    pub assignment_id: Option<String>,
    /// The `data` value the source's JSON column holds for the row's client item (the
    /// reference's Postgres store: a process's `process_data`, an era-M1 row's
    /// `message_data`), which the reference served on single reads; none elsewhere.
    pub stored_data: Option<DataOverride>,
    /// The source lists this row but cannot give its wrapper (e.g. its bytes are missing):
    /// why, for the report; the row is not imported.
    pub missing: Option<String>,
}

/// Why a source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("database: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("byte store: {0}")]
    RocksDb(#[from] rocksdb::Error),
    #[error("source SU: {0}")]
    Su(#[from] super::su::SuError),
    #[error("{0}")]
    Other(String),
}

/// A reference SU's history, read in the importer's order.
pub trait Source: Send {
    /// A tag for the cursor: a resumed import must read the same kind of source.
    fn kind(&self) -> u8;
    /// What names this source across runs (no credentials): its checkpoint row's key is the
    /// kind and the SHA-256 of this.
    fn identity(&self) -> String;
    /// How many entries there are in all (for the progress bar), if cheap to know.
    fn total_entries(&mut self) -> Result<Option<u64>, SourceError>;
    /// Process ids (43-character text) after `after`, in byte order, at most `max`.
    fn processes_after(
        &mut self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<String>, SourceError>;
    /// The process's own stored wrapper (P1 or P2), if the source has one.
    fn process(&mut self, process: &str) -> Result<Option<SourceRow>, SourceError>;
    /// The process's entry wrappers after `after`, in (nonce, timestamp, tie-break) order: about
    /// `max` of them (a source may page by windows of nonces); an empty page means no more.
    fn entries_after(
        &mut self,
        process: &str,
        after: Option<RowKey>,
        max: usize,
    ) -> Result<Vec<SourceRow>, SourceError>;
    /// The ordered dedupe hashes (raw SHA-384, PROTOCOL 4.6.2) the source recorded for the
    /// process, where it keeps such records (the byte store's `deephash___` keys, the local
    /// store's `deep_hash` column family); none by default.
    fn dedupe_hashes(&mut self, _process: &str) -> Result<Vec<[u8; 48]>, SourceError> {
        Ok(Vec::new())
    }
}

/// What the reader thread hands the pipeline, in order.
#[derive(Debug)]
pub enum Event {
    /// A process begins; `row` is its own wrapper (None: resumed after it, or it has none);
    /// `recorded` the dedupe hashes the source keeps for it (`Source::dedupe_hashes`).
    Process {
        id: String,
        row: Option<Box<SourceRow>>,
        recorded: Vec<[u8; 48]>,
    },
    /// The next page of the current process's entries.
    Rows(Vec<SourceRow>),
    /// The current process has no more entries.
    ProcessEnd,
}
