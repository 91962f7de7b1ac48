//! The router's rows: the placement table (`routes`: which SU holds a process) and the SUs it
//! has ever been told of (`meta/router_sus`). Both are a cache of what the SUs hold; layouts
//! in `schema/rocksdb.md`.
#![deny(clippy::little_endian_bytes)]

use super::{Store, StoreError, cf};
use crate::domain::Id;

const ROUTER_SUS_KEY: &[u8] = b"router_sus";

/// Whether the SU was seen holding the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteState {
    /// Placed by this router; the SU has not been seen holding it yet.
    Tentative = 0,
    /// The SU answered that it holds the process.
    Confirmed = 1,
}

/// One `routes` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRecord {
    pub state: RouteState,
    /// When the state was last set, Unix ms.
    pub set_ms: u64,
    /// The SU's base URL, as the scheduler list writes it.
    pub su: String,
}

impl RouteRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.su.len());
        out.push(self.state as u8);
        out.extend_from_slice(&self.set_ms.to_be_bytes());
        out.extend_from_slice(self.su.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let state = match *bytes.first()? {
            0 => RouteState::Tentative,
            1 => RouteState::Confirmed,
            _ => return None,
        };
        let set_ms = u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?);
        let su = std::str::from_utf8(bytes.get(9..)?).ok()?.to_string();
        Some(Self { state, set_ms, su })
    }
}

impl Store {
    /// The SU a process is routed to, if this router knows it.
    pub fn route(&self, process: &Id) -> Result<Option<RouteRecord>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::ROUTES), process)?;
        value
            .map(|bytes| RouteRecord::decode(&bytes).ok_or(StoreError::Corrupt { what: "route" }))
            .transpose()
    }

    /// Records where a process lives. Not synced: the table is a cache the SUs can rebuild.
    pub fn put_route(&self, process: &Id, record: &RouteRecord) -> Result<(), StoreError> {
        let db = self.db()?;
        db.put_cf(cf(&db, cf::ROUTES), process, record.encode())?;
        Ok(())
    }

    /// Forgets a route (a tentative placement no SU holds).
    pub fn delete_route(&self, process: &Id) -> Result<(), StoreError> {
        let db = self.db()?;
        db.delete_cf(cf(&db, cf::ROUTES), process)?;
        Ok(())
    }

    /// Writes many routes in one batch (benchmarks, bulk rebuilds). Not synced.
    pub fn put_routes<'a>(
        &self,
        routes: impl IntoIterator<Item = (&'a Id, &'a RouteRecord)>,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let handle = cf(&db, cf::ROUTES);
        let mut batch = rocksdb::WriteBatch::default();
        for (process, record) in routes {
            batch.put_cf(handle, process, record.encode());
        }
        db.write(batch)?;
        Ok(())
    }

    /// Every SU URL this router was ever told of (`meta/router_sus`), in the order learnt.
    pub fn router_sus(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db()?;
        let Some(bytes) = db.get_cf(cf(&db, cf::META), ROUTER_SUS_KEY)? else {
            return Ok(Vec::new());
        };
        let text =
            std::str::from_utf8(&bytes).map_err(|_| StoreError::Corrupt { what: "router_sus" })?;
        Ok(text
            .split('\n')
            .filter(|url| !url.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Replaces `meta/router_sus` (synced: it is how a removed SU stays remembered).
    pub fn put_router_sus(&self, urls: &[String]) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(cf(&db, cf::META), ROUTER_SUS_KEY, urls.join("\n"));
        db.write_opt(batch, &options)?;
        Ok(())
    }

    /// How many processes this store hosts: RocksDB's key estimate of `processes`, which is
    /// exact while no process row was written twice (`su` writes each once).
    pub fn process_count(&self) -> u64 {
        let Ok(db) = self.db() else { return 0 };
        db.cf_handle(cf::PROCESSES)
            .and_then(|handle| {
                db.property_int_value_cf(handle, "rocksdb.estimate-num-keys")
                    .ok()
                    .flatten()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_records_round_trip() {
        let record = RouteRecord {
            state: RouteState::Confirmed,
            set_ms: 1_755_708_950_818,
            su: "https://su101.example.net".into(),
        };
        let bytes = record.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(RouteRecord::decode(&bytes), Some(record));
        assert_eq!(RouteRecord::decode(&[2, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(RouteRecord::decode(&[0, 1]), None);
    }

    #[test]
    fn routes_and_known_sus_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), super::super::OpenMode::ReadWrite).unwrap();
        let process = [7u8; 32];
        assert_eq!(store.route(&process).unwrap(), None);
        let record = RouteRecord {
            state: RouteState::Tentative,
            set_ms: 5,
            su: "http://a".into(),
        };
        store.put_route(&process, &record).unwrap();
        assert_eq!(store.route(&process).unwrap(), Some(record));
        store.delete_route(&process).unwrap();
        assert_eq!(store.route(&process).unwrap(), None);
        assert!(store.router_sus().unwrap().is_empty());
        let sus = vec!["http://a".to_string(), "http://b".to_string()];
        store.put_router_sus(&sus).unwrap();
        assert_eq!(store.router_sus().unwrap(), sus);
        assert_eq!(store.process_count(), 0);
    }
}
