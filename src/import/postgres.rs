//! The reference's Postgres store (PROTOCOL 9.1): `processes` and `messages`, every era of
//! the schema; item bytes from the `bundle` column or, for a `USE_DISK` store, from its
//! RocksDB byte store (9.3), which the reference reads first.

use super::cursor::RowKey;
use super::source::{Source, SourceError, SourceRow};
use crate::store::records::DataOverride;
use postgres::{Client, NoTls};
use rocksdb::DB;
use std::path::Path;

/// The source kind recorded in the cursor.
pub const KIND: u8 = 1;

pub struct PostgresSource {
    client: Client,
    identity: String,
    /// The `USE_DISK` byte store, opened read-only (its values are in blob files).
    disk: Option<DB>,
    /// Whether `processes` has the AOP-6 columns (migration 20240904145702) and `messages` its
    /// `assignment_id` (20240327163751): a database of an older era lacks them.
    has_assignment_id: bool,
    /// Wrappers read from the byte store rather than the `bundle` column.
    pub from_disk: u64,
}

impl PostgresSource {
    pub fn connect(url: &str, disk_dir: Option<&Path>) -> Result<Self, SourceError> {
        let mut client = Client::connect(url, NoTls)?;
        let has_assignment_id = client
            .query_opt(
                "SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'messages' AND column_name = 'assignment_id'",
                &[],
            )?
            .is_some();
        let disk = match disk_dir {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(SourceError::Other(format!(
                        "byte store {} is not a directory",
                        dir.display()
                    )));
                }
                Some(DB::open_for_read_only(
                    &rocksdb::Options::default(),
                    dir,
                    false,
                )?)
            }
            None => None,
        };
        Ok(Self {
            client,
            identity: without_credentials(url),
            disk,
            has_assignment_id,
            from_disk: 0,
        })
    }

    /// The byte store's copy of a message row's wrapper (PROTOCOL 9.3 key).
    fn disk_wrapper(
        &mut self,
        process: &str,
        timestamp: i64,
        message_id: &str,
        assignment_id: Option<&str>,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let mut key = format!("message___{process}___{timestamp}___{message_id}");
        if let Some(assignment) = assignment_id {
            key.push_str("___");
            key.push_str(assignment);
        }
        let found = super::rocksdb::read_blob_values(disk, &[key.as_bytes()])?
            .pop()
            .flatten();
        if found.is_some() {
            self.from_disk += 1;
        }
        Ok(found)
    }
}

/// The database URL without user, password or parameters (a key=value connection string
/// loses its `user` and `password` pairs).
pub fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        return format!("{scheme}://{host}{path}");
    }
    url.split_whitespace()
        .filter(|pair| !pair.starts_with("password=") && !pair.starts_with("user="))
        .collect::<Vec<_>>()
        .join(" ")
}

impl PostgresSource {
    /// The smallest nonce of the process above `above` (or at all).
    fn next_nonce(
        &mut self,
        process: &str,
        above: Option<i64>,
    ) -> Result<Option<i64>, SourceError> {
        let above = above.map_or(i32::MIN, clamp_i32);
        let row = self.client.query_one(
            "SELECT min(nonce) FROM messages WHERE process_id = $1 AND nonce > $2",
            &[&process, &above],
        )?;
        Ok(row.get::<_, Option<i32>>(0).map(i64::from))
    }
}

/// A JSON `data` value from its `jsonb_typeof` and its text: a string or `null` (no such key,
/// or any other type, keeps nothing).
fn stored_data(kind: Option<String>, text: Option<String>) -> Option<DataOverride> {
    match (kind.as_deref(), text) {
        (Some("null"), _) => Some(DataOverride::Null),
        (Some("string"), Some(text)) => Some(DataOverride::Text(text)),
        _ => None,
    }
}

fn clamp_i32(value: i64) -> i32 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

impl Source for PostgresSource {
    fn kind(&self) -> u8 {
        KIND
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn total_entries(&mut self) -> Result<Option<u64>, SourceError> {
        let row = self.client.query_one(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM processes)",
            &[],
        )?;
        Ok(Some(row.get::<_, i64>(0).max(0) as u64))
    }

    fn processes_after(
        &mut self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<String>, SourceError> {
        let rows = self.client.query(
            "SELECT process_id FROM processes WHERE process_id COLLATE \"C\" > $1 \
             ORDER BY process_id COLLATE \"C\" LIMIT $2",
            &[&after.unwrap_or(""), &(max as i64)],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The process's wrapper, and the `data` of its `process_data` (the flat document of
    /// before 2024-09-04, or its `process` record since), which `GET /processes/{id}` served.
    fn process(&mut self, process: &str) -> Result<Option<SourceRow>, SourceError> {
        let row = self.client.query_opt(
            "SELECT bundle, jsonb_typeof(data), data #>> '{}' FROM (SELECT bundle, \
             CASE WHEN process_data ? 'process' THEN process_data->'process'->'data' \
             ELSE process_data->'data' END AS data \
             FROM processes WHERE process_id = $1) AS process",
            &[&process],
        )?;
        Ok(row.map(|row| SourceRow {
            wrapper: row.get(0),
            stored_data: stored_data(row.get(1), row.get(2)),
            ..SourceRow::default()
        }))
    }

    /// The byte store's dedupe records (`deephash___<process>___<b64u hash>`); a pure
    /// Postgres store has none.
    fn dedupe_hashes(&mut self, process: &str) -> Result<Vec<[u8; 48]>, SourceError> {
        let Some(disk) = &self.disk else {
            return Ok(Vec::new());
        };
        let prefix = format!("deephash___{process}___");
        let keys = disk.iterator(rocksdb::IteratorMode::From(
            prefix.as_bytes(),
            rocksdb::Direction::Forward,
        ));
        super::rocksdb::recorded_hashes(keys, &prefix, process)
    }

    fn entries_after(
        &mut self,
        process: &str,
        after: Option<RowKey>,
        max: usize,
    ) -> Result<Vec<SourceRow>, SourceError> {
        let assignment = if self.has_assignment_id {
            "assignment_id"
        } else {
            "NULL::varchar"
        };
        // Only an era-M1 row (no assignment_id) keeps its message's `data` at the top of
        // `message_data`; the CASE spares Postgres reading that column for every other row.
        let m1 = if self.has_assignment_id {
            "assignment_id IS NULL"
        } else {
            "TRUE"
        };
        // A window of nonces per page, found through the (process_id, nonce) index, so a
        // page costs its own rows whatever the process's length; the row comparison skips
        // what the last page returned of the window's first nonce (duplicates).
        let query = format!(
            "SELECT row_id, nonce, timestamp, bundle, hash_chain, message_id, {assignment}, \
             CASE WHEN {m1} THEN jsonb_typeof(message_data->'data') END, \
             CASE WHEN {m1} THEN message_data->>'data' END \
             FROM messages WHERE process_id = $1 AND nonce >= $2 AND nonce < $3 \
             AND (nonce::bigint, timestamp, row_id::bigint) > ($4, $5, $6) \
             ORDER BY nonce, timestamp, row_id"
        );
        let (mut floor, after) = match after {
            Some(after) => (Some(after.nonce), after),
            None => (
                None,
                RowKey {
                    nonce: i64::MIN,
                    timestamp: i64::MIN,
                    row: i64::MIN,
                },
            ),
        };
        let span = max.max(1) as i64;
        let rows = loop {
            let start = match floor {
                Some(start) => start,
                None => match self.next_nonce(process, None)? {
                    Some(first) => first,
                    None => return Ok(Vec::new()),
                },
            };
            let end = start.saturating_add(span);
            let rows = self.client.query(
                &query,
                &[
                    &process,
                    &clamp_i32(start),
                    &clamp_i32(end),
                    &after.nonce,
                    &after.timestamp,
                    &after.row,
                ],
            )?;
            if !rows.is_empty() {
                break rows;
            }
            // Nothing left in this window: jump over the gap to the next nonce there is.
            match self.next_nonce(process, Some(end - 1))? {
                Some(next) => floor = Some(next),
                None => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let row_id: i32 = row.get(0);
            let nonce: i32 = row.get(1);
            let timestamp: i64 = row.get(2);
            let message_id: String = row.get(5);
            let assignment_id: Option<String> = row.get(6);
            let wrapper = match self.disk_wrapper(
                process,
                timestamp,
                &message_id,
                assignment_id.as_deref(),
            )? {
                Some(bytes) => bytes,
                None => row.get(3),
            };
            out.push(SourceRow {
                key: Some(RowKey {
                    nonce: i64::from(nonce),
                    timestamp,
                    row: i64::from(row_id),
                }),
                wrapper,
                nonce: Some(i64::from(nonce)),
                timestamp: Some(timestamp),
                hash_chain: Some(row.get(4)),
                assignment_id,
                stored_data: stored_data(row.get(7), row.get(8)),
                missing: None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn the_identity_keeps_no_credentials() {
        assert_eq!(
            without_credentials("postgres://su:secret@db.local:5432/su?sslmode=disable"),
            "postgres://db.local:5432/su"
        );
        assert_eq!(
            without_credentials("postgresql://127.0.0.1/su"),
            "postgresql://127.0.0.1/su"
        );
        assert_eq!(
            without_credentials("host=db user=su password=x dbname=su"),
            "host=db dbname=su"
        );
    }
}
