//! The reference's RocksDB-only store (`USE_LOCAL_STORE`, PROTOCOL 9.4): the index database
//! lists processes (`process` CF) and each one's entries (`message_ordering` CF, in epoch,
//! nonce, timestamp order), and the file database holds the wrappers by assignment id.  Both are
//! opened read-only; nothing here writes to them.

use super::cursor::RowKey;
use super::source::{Source, SourceError, SourceRow};
use crate::ans104::b64;
use ::rocksdb::{DB, Direction, IteratorMode, Options, ReadOptions};
use std::path::Path;

/// The source kind recorded in the cursor.
pub const KIND: u8 = 2;

/// The index column families the importer reads; `deep_hash` may be absent.
const PROCESS_CF: &str = "process";
const ORDERING_CF: &str = "message_ordering";
const DEEP_HASH_CF: &str = "deep_hash";

/// The importer's `RowKey.nonce` while no key of the process has parsed yet: positions count
/// from the start of the process.
const FROM_START: i64 = -1;

pub struct RocksDbSource {
    /// `SU_FILE_DB_DIR`: wrappers under `process_assignment:<aid>` and `message_assignment:<aid>`.
    files: DB,
    /// `SU_INDEX_DB_DIR`: the index column families.
    index: DB,
    identity: String,
}

/// Reads the values of `keys` from a reference database whose values live in blob files (the
/// file DB of 9.4, the byte store of 9.3: `min_blob_size` 1024), opened read-only. Through
/// an iterator: RocksDB's read-only `get` answers "not found" for a value in a blob file
/// (it does not resolve blob references), and a secondary instance, which does, crashes
/// reading one (its version set keeps a reference to a temporary session id).
pub(super) fn read_blob_values(
    db: &DB,
    keys: &[&[u8]],
) -> Result<Vec<Option<Vec<u8>>>, ::rocksdb::Error> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&at| keys[at]);
    let mut values = vec![None; keys.len()];
    let mut iterator = db.raw_iterator();
    for at in order {
        iterator.seek(keys[at]);
        iterator.status()?;
        if iterator.key() == Some(keys[at]) {
            values[at] = iterator.value().map(<[u8]>::to_vec);
        }
    }
    Ok(values)
}

impl RocksDbSource {
    /// Opens both databases read-only (a running reference may hold them; the import then
    /// reads them as they were when opened).
    pub fn open(file_db: &Path, index_db: &Path) -> Result<Self, SourceError> {
        for (dir, what) in [(file_db, "file DB"), (index_db, "index DB")] {
            if !dir.is_dir() {
                return Err(SourceError::Other(format!(
                    "the {what} {} is not a directory",
                    dir.display()
                )));
            }
        }
        let options = Options::default();
        let families = DB::list_cf(&options, index_db)?;
        for needed in [PROCESS_CF, ORDERING_CF] {
            if !families.iter().any(|name| name == needed) {
                return Err(SourceError::Other(format!(
                    "{} is not a reference index DB: it has no `{needed}` column family \
                     (it has: {})",
                    index_db.display(),
                    families.join(", ")
                )));
            }
        }
        // The index first: the reference writes index keys before the file key, so a file DB
        // opened later holds the wrapper of every key a live reference had indexed.
        let index = DB::open_cf_for_read_only(&options, index_db, &families, false)?;
        let files = DB::open_for_read_only(&options, file_db, false)?;
        let canonical = |dir: &Path| {
            dir.canonicalize().map_or_else(
                |_| dir.display().to_string(),
                |dir| dir.display().to_string(),
            )
        };
        Ok(Self {
            files,
            index,
            identity: format!(
                "file-db={} index-db={}",
                canonical(file_db),
                canonical(index_db)
            ),
        })
    }

    fn family(&self, name: &'static str) -> Result<&::rocksdb::ColumnFamily, SourceError> {
        self.index
            .cf_handle(name)
            .ok_or_else(|| SourceError::Other(format!("the index DB lost its `{name}` CF")))
    }

    /// Read options bounded to keys starting with `prefix` (which ends with `:`): the
    /// bound is the prefix with its last `:` raised to `;`.
    fn bounded(prefix: &str) -> ReadOptions {
        let mut upper = prefix.as_bytes().to_vec();
        if let Some(last) = upper.last_mut() {
            *last = b';';
        }
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(upper);
        read
    }

    /// The wrapper under each file-DB key, or why there is none.
    fn wrappers(&self, file_keys: &[String]) -> Result<Vec<Result<Vec<u8>, String>>, SourceError> {
        let keys: Vec<&[u8]> = file_keys.iter().map(String::as_bytes).collect();
        Ok(read_blob_values(&self.files, &keys)?
            .into_iter()
            .zip(file_keys)
            .map(|(found, key)| {
                found.ok_or_else(|| format!("its wrapper {key} is missing from the file DB"))
            })
            .collect())
    }
}

/// One `message_ordering` key's place: `<epoch:10>:<nonce:10>:<timestamp:15>:` after the
/// process prefix (PROTOCOL 9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    epoch: u32,
    nonce: i64,
    timestamp: i64,
}

impl Place {
    /// Parses the part of a key after `message_ordering:<pid>:`; exact widths and digits
    /// only, so the place formats back to the same text.
    fn parse(rest: &[u8]) -> Option<Self> {
        let mut parts = rest.splitn(4, |&byte| byte == b':');
        let mut number = |width: usize| {
            let part = parts.next()?;
            if part.len() != width || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse::<u64>().ok()
        };
        let epoch = u32::try_from(number(10)?)
            .ok()
            .filter(|&epoch| epoch <= i32::MAX as u32)?;
        let nonce = i64::try_from(number(10)?).ok()?;
        let timestamp = i64::try_from(number(15)?).ok()?;
        parts.next()?;
        Some(Self {
            epoch,
            nonce,
            timestamp,
        })
    }

    fn prefix(&self, process: &str) -> String {
        format!(
            "message_ordering:{process}:{:010}:{:010}:{:015}:",
            self.epoch, self.nonce, self.timestamp
        )
    }
}

/// Where a page starts: the first key at or after a place's prefix (or the process's start),
/// then `skip` keys on. The importer's `RowKey` carries it: nonce and timestamp of the place
/// (`FROM_START` before any key parsed), and in `row` the epoch above the key's rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    place: Option<Place>,
    rank: u32,
}

impl Position {
    fn row_key(&self) -> RowKey {
        match self.place {
            None => RowKey {
                nonce: FROM_START,
                timestamp: FROM_START,
                row: i64::from(self.rank),
            },
            Some(place) => RowKey {
                nonce: place.nonce,
                timestamp: place.timestamp,
                row: (i64::from(place.epoch) << 32) | i64::from(self.rank),
            },
        }
    }

    fn from_row_key(key: RowKey) -> Self {
        let rank = (key.row & i64::from(u32::MAX)) as u32;
        if key.nonce == FROM_START {
            return Self { place: None, rank };
        }
        Self {
            place: Some(Place {
                epoch: (key.row >> 32) as u32,
                nonce: key.nonce,
                timestamp: key.timestamp,
            }),
            rank,
        }
    }
}

/// A process id in a `process:<pid>:<aid>` key (text up to the second `:`).
fn process_of(key: &[u8]) -> String {
    let rest = key.strip_prefix(b"process:").unwrap_or(key);
    let end = rest
        .iter()
        .position(|&byte| byte == b':')
        .unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

impl Source for RocksDbSource {
    fn kind(&self) -> u8 {
        KIND
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn total_entries(&mut self) -> Result<Option<u64>, SourceError> {
        // RocksDB's estimate: counting would read the whole index once more.
        let mut total = 0;
        for name in [PROCESS_CF, ORDERING_CF] {
            let family = self.family(name)?;
            total += self
                .index
                .property_int_value_cf(family, "rocksdb.estimate-num-keys")?
                .unwrap_or(0);
        }
        Ok(Some(total))
    }

    fn processes_after(
        &mut self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<String>, SourceError> {
        let family = self.family(PROCESS_CF)?;
        // `;` follows `:`, so the seek passes every key of `after` itself.
        let start = after.map_or_else(|| "process:".to_string(), |id| format!("process:{id};"));
        let iterator = self.index.iterator_cf_opt(
            family,
            Self::bounded("process:"),
            IteratorMode::From(start.as_bytes(), Direction::Forward),
        );
        let mut found: Vec<String> = Vec::new();
        for item in iterator {
            let (key, _) = item?;
            let process = process_of(&key);
            if found.last() == Some(&process) {
                continue;
            }
            if found.len() == max {
                break;
            }
            found.push(process);
        }
        Ok(found)
    }

    fn process(&mut self, process: &str) -> Result<Option<SourceRow>, SourceError> {
        // As the reference reads it: the first `process:<pid>:` key names the assignment.
        let family = self.family(PROCESS_CF)?;
        let prefix = format!("process:{process}:");
        let mut iterator = self.index.iterator_cf_opt(
            family,
            Self::bounded(&prefix),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        let Some(item) = iterator.next() else {
            return Ok(None);
        };
        let (_, assignment) = item?;
        let assignment = String::from_utf8_lossy(&assignment).into_owned();
        let file_key = format!("process_assignment:{assignment}");
        let found = read_blob_values(&self.files, &[file_key.as_bytes()])?
            .pop()
            .flatten();
        let row = match found {
            Some(wrapper) => SourceRow {
                wrapper,
                ..SourceRow::default()
            },
            None => SourceRow {
                missing: Some(format!("{file_key} is missing from the file DB")),
                ..SourceRow::default()
            },
        };
        Ok(Some(row))
    }

    fn entries_after(
        &mut self,
        process: &str,
        after: Option<RowKey>,
        max: usize,
    ) -> Result<Vec<SourceRow>, SourceError> {
        let family = self.family(ORDERING_CF)?;
        let process_prefix = format!("message_ordering:{process}:");
        // A page resumes at its position's place and steps over the keys up to and
        // including the position; `rank` is the next key's, counted from that place.
        let (seek, mut position, mut skip) = match after.map(Position::from_row_key) {
            None => (
                process_prefix.clone(),
                Position {
                    place: None,
                    rank: 0,
                },
                0,
            ),
            Some(resumed) => {
                let seek = resumed
                    .place
                    .map_or_else(|| process_prefix.clone(), |place| place.prefix(process));
                (seek, resumed, u64::from(resumed.rank) + 1)
            }
        };
        let mut rank = skip;
        let iterator = self.index.iterator_cf_opt(
            family,
            Self::bounded(&process_prefix),
            IteratorMode::From(seek.as_bytes(), Direction::Forward),
        );
        let mut keys = Vec::new();
        for item in iterator {
            let (key, assignment) = item?;
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if keys.len() == max.max(1) {
                break;
            }
            let place = key
                .strip_prefix(process_prefix.as_bytes())
                .and_then(Place::parse);
            match place {
                Some(place) if position.place != Some(place) => {
                    position.place = Some(place);
                    rank = 0;
                }
                _ => {}
            }
            position.rank = u32::try_from(rank).map_err(|_| {
                SourceError::Other(format!(
                    "process {process}: more than {} index keys at one place",
                    u32::MAX
                ))
            })?;
            rank += 1;
            keys.push((key, assignment, place, position.row_key()));
        }
        let file_keys: Vec<String> = keys
            .iter()
            .map(|(_, assignment, _, _)| {
                format!("message_assignment:{}", String::from_utf8_lossy(assignment))
            })
            .collect();
        let wrappers = self.wrappers(&file_keys)?;
        Ok(keys
            .into_iter()
            .zip(wrappers)
            .map(|((key, assignment, place, row_key), wrapper)| {
                let mut row = SourceRow {
                    key: Some(row_key),
                    nonce: place.map(|place| place.nonce),
                    timestamp: place.map(|place| place.timestamp),
                    assignment_id: Some(String::from_utf8_lossy(&assignment).into_owned()),
                    ..SourceRow::default()
                };
                match (place, wrapper) {
                    (None, _) => {
                        row.missing = Some(format!(
                            "its index key {} does not parse (PROTOCOL 9.4)",
                            String::from_utf8_lossy(&key)
                        ));
                    }
                    (Some(_), Ok(wrapper)) => row.wrapper = wrapper,
                    (Some(_), Err(missing)) => row.missing = Some(missing),
                }
                row
            })
            .collect())
    }

    fn dedupe_hashes(&mut self, process: &str) -> Result<Vec<[u8; 48]>, SourceError> {
        let Some(family) = self.index.cf_handle(DEEP_HASH_CF) else {
            return Ok(Vec::new());
        };
        let prefix = format!("deep_hash:{process}:");
        let keys = self.index.iterator_cf_opt(
            family,
            ReadOptions::default(),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        recorded_hashes(keys, &prefix, process)
    }
}

/// The dedupe records of one process that the reference keeps as keys `prefix ‖ b64u hash`
/// (the local store's `deep_hash` CF, the byte store's `deephash___` keys), read from `keys`
/// until the first key without the prefix. A record that is not a 48-byte hash is logged and
/// left out.
pub(super) fn recorded_hashes(
    keys: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    prefix: &str,
    process: &str,
) -> Result<Vec<[u8; 48]>, SourceError> {
    let mut hashes = Vec::new();
    for item in keys {
        let (key, _) = item?;
        let Some(text) = key.strip_prefix(prefix.as_bytes()) else {
            break;
        };
        let decoded = std::str::from_utf8(text)
            .ok()
            .and_then(b64::decode)
            .and_then(|bytes| <[u8; 48]>::try_from(bytes).ok());
        match decoded {
            Some(hash) => hashes.push(hash),
            None => tracing::warn!(
                process,
                key = %String::from_utf8_lossy(&key),
                "a dedupe record that is not a 48-byte hash is ignored"
            ),
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_parses_only_in_the_reference_format() {
        let place = Place::parse(b"0000000000:0000000007:001700000000123:aid").unwrap();
        assert_eq!(
            place,
            Place {
                epoch: 0,
                nonce: 7,
                timestamp: 1_700_000_000_123
            }
        );
        assert_eq!(
            place.prefix("P"),
            "message_ordering:P:0000000000:0000000007:001700000000123:"
        );
        for bad in [
            &b"0000000000:0000000007:001700000000123"[..],
            b"000000000:0000000007:001700000000123:aid",
            b"0000000000:-000000007:001700000000123:aid",
            b"0000000000:0000000007:1700000000123:aid",
            b"9999999999:0000000007:001700000000123:aid",
        ] {
            assert_eq!(Place::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_position_round_trips_through_the_cursor_key() {
        for position in [
            Position {
                place: None,
                rank: 3,
            },
            Position {
                place: Some(Place {
                    epoch: 0,
                    nonce: 9,
                    timestamp: 5,
                }),
                rank: 0,
            },
            Position {
                place: Some(Place {
                    epoch: i32::MAX as u32,
                    nonce: 9,
                    timestamp: 5,
                }),
                rank: u32::MAX,
            },
        ] {
            assert_eq!(Position::from_row_key(position.row_key()), position);
        }
    }

    #[test]
    fn the_process_is_the_text_up_to_the_second_colon() {
        assert_eq!(process_of(b"process:abc:def"), "abc");
        assert_eq!(process_of(b"process:abc"), "abc");
    }
}
