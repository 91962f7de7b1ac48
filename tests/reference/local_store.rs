//! The reference's RocksDB-only store (`USE_LOCAL_STORE`, PROTOCOL 9.4) in two temporary
//! directories: the file database (wrappers by assignment id, blob files as the reference
//! configures them) and the index database (its six column families, each with the
//! reference's prefix extractor). Rows are keyed as the reference's `migrate_to_local` and
//! its write path key them: M1 entries and P1 processes under their wrapper's id.

use super::{MessageRow, ProcessRow, ReferenceStore};
use ao_su::ans104::{Bundle, DataItem, b64};
use rocksdb::{DB, Options, SliceTransform};
use std::path::{Path, PathBuf};

const FAMILIES: [&str; 6] = [
    "process",
    "process_ordering",
    "message",
    "message_ordering",
    "deep_hash",
    "deep_hash_version",
];

/// A key's prefix up to and including its second `:` (none without one), as the
/// reference's index extracts it.
fn up_to_second_colon(key: &[u8]) -> &[u8] {
    let mut colons = key
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b':')
        .map(|(at, _)| at);
    match (colons.next(), colons.next()) {
        (Some(_), Some(second)) => &key[..=second],
        _ => &[],
    }
}

pub struct LocalStore {
    dirs: tempfile::TempDir,
    files: Option<DB>,
    index: Option<DB>,
}

impl LocalStore {
    pub fn create() -> Self {
        let dirs = tempfile::tempdir().unwrap();
        let mut file_options = Options::default();
        file_options.create_if_missing(true);
        file_options.set_enable_blob_files(true);
        file_options.set_blob_file_size(5 << 30);
        file_options.set_min_blob_size(1024);
        let files = DB::open(&file_options, dirs.path().join("sudata")).unwrap();
        let mut index_options = Options::default();
        index_options.create_if_missing(true);
        index_options.create_missing_column_families(true);
        let families = FAMILIES.iter().map(|name| {
            let mut options = Options::default();
            options.set_prefix_extractor(SliceTransform::create(
                "up_to_id_extractor",
                up_to_second_colon,
                None,
            ));
            (name.to_string(), options)
        });
        let index =
            DB::open_cf_with_opts(&index_options, dirs.path().join("suindex"), families).unwrap();
        // What a finished `migrate_to_local` leaves behind; the importer ignores it.
        files.put("last_message_row_id", "0").unwrap();
        files.put("last_process_row_id", "0").unwrap();
        Self {
            dirs,
            files: Some(files),
            index: Some(index),
        }
    }

    pub fn file_db(&self) -> PathBuf {
        self.dirs.path().join("sudata")
    }

    pub fn index_db(&self) -> PathBuf {
        self.dirs.path().join("suindex")
    }

    /// `--file-db DIR --index-db DIR` for `su import-rocksdb`.
    pub fn args(&self) -> Vec<String> {
        let path = |dir: &Path| dir.to_str().unwrap().to_string();
        vec![
            "--file-db".into(),
            path(&self.file_db()),
            "--index-db".into(),
            path(&self.index_db()),
        ]
    }

    fn files(&self) -> &DB {
        self.files.as_ref().expect("the store is open")
    }

    fn put_index(&self, family: &str, key: String, value: &str) {
        let index = self.index.as_ref().expect("the store is open");
        let handle = index.cf_handle(family).unwrap();
        index.put_cf(handle, key, value).unwrap();
    }

    /// Removes a file-DB key (a wrapper the index names but the file DB lost).
    pub fn delete_file_key(&self, key: &str) {
        assert!(self.files().get(key).unwrap().is_some(), "{key}");
        self.files().delete(key).unwrap();
    }

    /// A dedupe record the reference's recalculation pass (PROTOCOL 4.6.3) made.
    pub fn put_deep_hash(&self, process: &str, hash: &[u8; 48]) {
        let key = format!("deep_hash:{process}:{}", b64::encode(hash));
        self.put_index("deep_hash", key, process);
    }

    /// Flushes both databases into SST and blob files and closes them, as a stopped
    /// reference leaves them.
    pub fn close(&mut self) {
        if let Some(files) = self.files.take() {
            files.flush().unwrap();
        }
        if let Some(index) = self.index.take() {
            for family in FAMILIES {
                index.flush_cf(index.cf_handle(family).unwrap()).unwrap();
            }
        }
    }
}

impl ReferenceStore for LocalStore {
    fn insert_process(&mut self, row: &ProcessRow) {
        let wrapper = DataItem::parse(&row.bundle).unwrap();
        let bundle = Bundle::parse(wrapper.data).unwrap();
        // P2: the assignment's id and Timestamp; P1: the wrapper's.
        let signed_by_su = match bundle.items.as_slice() {
            [assignment, _] => assignment,
            _ => &wrapper,
        };
        let assignment = b64::encode(&signed_by_su.id());
        let timestamp: u64 = signed_by_su.tag("Timestamp").unwrap().parse().unwrap();
        let process = &row.process;
        self.put_index(
            "process",
            format!("process:{process}:{assignment}"),
            &assignment,
        );
        self.put_index(
            "process_ordering",
            format!(
                "process_ordering:{process}:{:010}:{:010}:{timestamp:015}:{assignment}",
                0, 0
            ),
            &assignment,
        );
        self.files()
            .put(format!("process_assignment:{assignment}"), &row.bundle)
            .unwrap();
    }

    fn insert_message(&mut self, row: &MessageRow) {
        // M1 rows have no assignment id: the wrapper plays the assignment.
        let assignment = row
            .assignment_id
            .clone()
            .unwrap_or_else(|| b64::encode(&DataItem::parse(&row.bundle).unwrap().id()));
        let (process, nonce, timestamp) = (&row.process, row.nonce, row.timestamp);
        self.put_index(
            "message",
            format!("message:{}:{assignment}", row.message_id),
            &assignment,
        );
        self.put_index(
            "message_ordering",
            format!(
                "message_ordering:{process}:{:010}:{nonce:010}:{timestamp:015}:{assignment}",
                0
            ),
            &assignment,
        );
        if let Some(hash) = &row.deep_hash {
            self.put_index("deep_hash", format!("deep_hash:{process}:{hash}"), process);
        }
        self.files()
            .put(format!("message_assignment:{assignment}"), &row.bundle)
            .unwrap();
    }
}
