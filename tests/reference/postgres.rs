//! The reference's Postgres store in a scratch database of the test server (127.0.0.1:5432,
//! user postgres, trust auth): its migrations applied one at a time
//! (tests/fixtures/reference_postgres), rows written under the schema of their time.

use super::{MessageRow, ProcessRow, ReferenceStore};
use postgres::{Client, NoTls};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub const MIGRATIONS: [&str; 8] = [
    "00000000000000",
    "20231213213153",
    "20240327163751",
    "20240529143054",
    "20240805190651",
    "20240904145702",
    "20241126200327",
    "20250318144400",
];

/// A scratch database, dropped with the value.
pub struct Database {
    pub name: String,
    pub client: Client,
}

impl Database {
    pub fn create(tag: &str) -> Self {
        let name = format!(
            "su_import_{tag}_{}_{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut admin = Client::connect(&format!("{SERVER}/postgres"), NoTls)
            .expect("PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth)");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let client = Client::connect(&format!("{SERVER}/{name}"), NoTls).unwrap();
        Self { name, client }
    }

    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    pub fn migrate_all_from(&mut self, first: usize) {
        for version in &MIGRATIONS[first..] {
            self.migrate(version);
        }
    }
}

impl ReferenceStore for Database {
    /// Applies one migration and records it as Diesel does.
    fn migrate(&mut self, version: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/reference_postgres")
            .join(format!("{version}.sql"));
        let sql = std::fs::read_to_string(&path).unwrap();
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                    version VARCHAR(50) PRIMARY KEY,
                    run_on TIMESTAMP NOT NULL DEFAULT now())",
            )
            .unwrap();
        self.client.batch_execute(&sql).unwrap();
        self.client
            .execute(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .unwrap();
    }

    fn insert_process(&mut self, row: &ProcessRow) {
        let data = row.data.to_string();
        match &row.columns {
            Some((timestamp, chain)) => self.client.execute(
                "INSERT INTO processes (process_id, process_data, bundle, epoch, nonce, hash_chain, timestamp) VALUES ($1,$2::text::jsonb,$3,0,0,$4,$5)",
                &[&row.process, &data, &row.bundle, chain, timestamp],
            ),
            None => self.client.execute(
                "INSERT INTO processes (process_id, process_data, bundle) VALUES ($1,$2::text::jsonb,$3)",
                &[&row.process, &data, &row.bundle],
            ),
        }
        .unwrap();
    }

    fn insert_message(&mut self, row: &MessageRow) {
        let data = row.data.to_string();
        match &row.assignment_id {
            None => self.client.execute(
                "INSERT INTO messages (process_id, message_id, message_data, epoch, nonce, timestamp, bundle, hash_chain) VALUES ($1,$2,$3::text::jsonb,0,$4,$5,$6,$7)",
                &[&row.process, &row.message_id, &data, &row.nonce, &row.timestamp, &row.bundle, &row.hash_chain],
            ),
            Some(assignment) => self.client.execute(
                "INSERT INTO messages (process_id, message_id, message_data, epoch, nonce, timestamp, bundle, hash_chain, assignment_id) VALUES ($1,$2,$3::text::jsonb,0,$4,$5,$6,$7,$8)",
                &[&row.process, &row.message_id, &data, &row.nonce, &row.timestamp, &row.bundle, &row.hash_chain, assignment],
            ),
        }
        .unwrap();
    }

    fn begin(&mut self) {
        self.client.batch_execute("BEGIN").unwrap();
    }

    fn commit(&mut self) {
        self.client.batch_execute("COMMIT").unwrap();
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&format!("{SERVER}/postgres"), NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
