//! `su import-postgres` against a real PostgreSQL (127.0.0.1:5432, user postgres, trust
//! auth). Each test creates its own database, applies the reference's migrations one at a
//! time (tests/fixtures/reference_postgres), writes the rows of each era under the schema of
//! its time, runs the real `su` binary, and drops the database.

mod support;

use ao_su::ans104::item::{ItemDraft, SignatureType};
use ao_su::ans104::{Bundle, DataItem, b64, encode_bundle};
use ao_su::domain::{self, Id};
use ao_su::store::{OpenMode, Store};
use ao_su::wallet::{Jwk, SigningSalt, Wallet};
use postgres::{Client, NoTls};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{SuCommand, TestSu, su_verify};

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A scratch database, dropped with the value.
struct Database {
    name: String,
    client: Client,
}

impl Database {
    fn create(tag: &str) -> Self {
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

    fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

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

    fn migrate_all_from(&mut self, first: usize) {
        for version in &MIGRATIONS[first..] {
            self.migrate(version);
        }
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

const MIGRATIONS: [&str; 8] = [
    "00000000000000",
    "20231213213153",
    "20240327163751",
    "20240529143054",
    "20240805190651",
    "20240904145702",
    "20241126200327",
    "20250318144400",
];

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// How the fake reference signs: really (RSA-4096), or with placeholder signatures for large
/// data sets imported with `--skip-signatures`.
#[derive(Clone, Copy, PartialEq)]
enum Signing {
    Real,
    Placeholder,
}

/// The assignment tag order of an era (PROTOCOL 1.6.3).
#[derive(Clone, Copy, PartialEq)]
enum Era {
    M2,
    M3,
    M4,
}

/// A reference SU writing rows the way it did in each era.
struct Reference {
    /// The reference SU's wallet: the operator keeps serving with it after the import.
    jwk: Jwk,
    wallet: Wallet,
    client: Wallet,
    signing: Signing,
    seed: std::cell::Cell<u64>,
}

/// One process's schedule state on the reference.
struct Chain {
    process: String,
    pid: Id,
    previous: Option<(Id, [u8; 32])>,
}

impl Chain {
    fn new(process: &str) -> Self {
        Self {
            process: process.to_string(),
            pid: b64::decode_id(process).unwrap(),
            previous: None,
        }
    }

    fn next_chain(&self) -> [u8; 32] {
        match &self.previous {
            None => domain::seed_hash_chain(&self.pid),
            Some((id, chain)) => domain::next_hash_chain(id, chain),
        }
    }
}

const HEIGHT: &str = "000001500000";

impl Reference {
    fn new(signing: Signing) -> Self {
        let jwk = Wallet::generate().unwrap();
        Self {
            wallet: Wallet::from_jwk(&jwk, SigningSalt::Max).unwrap(),
            jwk,
            client: Wallet::from_jwk(&Wallet::generate().unwrap(), SigningSalt::Max).unwrap(),
            signing,
            seed: std::cell::Cell::new(1),
        }
    }

    fn sign(&self, wallet: &Wallet, draft: &ItemDraft) -> (Vec<u8>, Id) {
        match self.signing {
            Signing::Real => wallet.sign(draft).unwrap(),
            Signing::Placeholder => {
                self.seed.set(self.seed.get() + 1);
                draft.finish_with_placeholder(self.seed.get())
            }
        }
    }

    fn su_item(&self, tags: Vec<(String, String)>, data: Vec<u8>) -> (Vec<u8>, Id) {
        let draft = self.wallet.draft(tags, data);
        self.sign(&self.wallet, &draft)
    }

    fn wrapper(&self, extra: &[(&str, String)], items: &[(&[u8], Id)]) -> (Vec<u8>, Id) {
        let mut all = tags(&[("Bundle-Format", "binary"), ("Bundle-Version", "2.0.0")]);
        all.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let data = encode_bundle(&items.iter().map(|(b, id)| (*b, *id)).collect::<Vec<_>>());
        self.su_item(all, data)
    }

    /// A client item; `anchor` None gives a random (non-UTF-8) anchor.
    fn client_item(
        &self,
        target: Option<&str>,
        kind: &str,
        extra: &[(&str, &str)],
        data: &[u8],
    ) -> (Vec<u8>, Id) {
        let mut all = tags(&[
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", kind),
        ]);
        if kind == "Process" {
            all.extend(tags(&[("Module", support::MODULE), ("Scheduler", "x")]));
        }
        all.extend(tags(extra));
        let mut draft = self.client.draft(all, data.to_vec());
        draft.target = target.map(|t| b64::decode_id(t).unwrap());
        self.sign(&self.client, &draft)
    }

    fn ethereum_item(&self, target: &str, data: &[u8]) -> (Vec<u8>, Id) {
        use sha3::{Digest, Keccak256};
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let owner = key.verifying_key().to_encoded_point(false);
        let draft = ItemDraft {
            signature_type: SignatureType::ETHEREUM,
            owner: owner.as_bytes().to_vec(),
            target: Some(b64::decode_id(target).unwrap()),
            anchor: None,
            tags: tags(&[
                ("Data-Protocol", "ao"),
                ("Variant", "ao.TN.1"),
                ("Type", "Message"),
                ("Action", "Transfer"),
            ]),
            data: data.to_vec(),
        };
        let message = draft.signing_message();
        let prefix = format!("\x19Ethereum Signed Message:\n{}", message.len());
        let mut hasher = Keccak256::new();
        hasher.update(prefix.as_bytes());
        hasher.update(message);
        let digest: [u8; 32] = hasher.finalize().into();
        let (signature, recovery) = key.sign_prehash_recoverable(&digest).unwrap();
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        let item = draft.finish(&bytes);
        let id = DataItem::parse(&item).unwrap().id();
        (item, id)
    }

    /// The SU's assignment of an era.
    fn assignment(
        &self,
        era: Era,
        chain: &Chain,
        nonce: u64,
        message: Option<Id>,
        timestamp: u64,
        hash_chain: [u8; 32],
    ) -> (Vec<u8>, Id) {
        let nonce = nonce.to_string();
        let hash = b64::encode(&hash_chain);
        let ts = timestamp.to_string();
        let message = message.map(|id| b64::encode(&id));
        let mut all: Vec<(String, String)> = Vec::new();
        let mut push = |name: &str, value: &str| all.push((name.to_string(), value.to_string()));
        match era {
            Era::M2 | Era::M3 => {
                push("Process", &chain.process);
                if let Some(message) = &message {
                    push("Message", message);
                }
                for (name, value) in [
                    ("Epoch", "0"),
                    ("Nonce", &nonce),
                    ("Hash-Chain", &hash),
                    ("Block-Height", HEIGHT),
                    ("Timestamp", &ts),
                ] {
                    push(name, value);
                }
                if era == Era::M3 {
                    push("Data-Protocol", "ao");
                    push("Type", "Assignment");
                    push("Variant", "ao.TN.1");
                }
            }
            Era::M4 => {
                for (name, value) in [
                    ("Process", chain.process.as_str()),
                    ("Epoch", "0"),
                    ("Nonce", &nonce),
                    ("Hash-Chain", &hash),
                    ("Block-Height", HEIGHT),
                    ("Timestamp", &ts),
                    ("Data-Protocol", "ao"),
                    ("Type", "Assignment"),
                    ("Variant", "ao.TN.1"),
                ] {
                    push(name, value);
                }
                if let Some(message) = &message {
                    push("Message", message);
                }
            }
        }
        self.su_item(all, Vec::new())
    }
}

/// The columns of one `messages` row.
struct MessageRow {
    process: String,
    message_id: String,
    assignment_id: Option<String>,
    nonce: i32,
    timestamp: i64,
    hash_chain: String,
    bundle: Vec<u8>,
    data: serde_json::Value,
}

fn insert_message(db: &mut Database, row: &MessageRow) {
    match &row.assignment_id {
        None => db.client.execute(
            "INSERT INTO messages (process_id, message_id, message_data, epoch, nonce, timestamp, bundle, hash_chain) VALUES ($1,$2,$3::text::jsonb,0,$4,$5,$6,$7)",
            &[&row.process, &row.message_id, &row.data.to_string(), &row.nonce, &row.timestamp, &row.bundle, &row.hash_chain],
        ),
        Some(assignment) => db.client.execute(
            "INSERT INTO messages (process_id, message_id, message_data, epoch, nonce, timestamp, bundle, hash_chain, assignment_id) VALUES ($1,$2,$3::text::jsonb,0,$4,$5,$6,$7,$8)",
            &[&row.process, &row.message_id, &row.data.to_string(), &row.nonce, &row.timestamp, &row.bundle, &row.hash_chain, assignment],
        ),
    }
    .unwrap();
}

/// A scheduled row of era M2–M4: `[assignment(, message)]` in a wrapper. Advances the chain
/// unless `fork` (a lagging replica's duplicate: same nonce, same predecessor).
#[allow(clippy::too_many_arguments)]
fn schedule(
    reference: &Reference,
    db: &mut Database,
    era: Era,
    chain: &mut Chain,
    nonce: u64,
    timestamp: u64,
    body: Option<(Vec<u8>, Id)>,
    assigned: Option<Id>,
) -> Id {
    let hash_chain = chain.next_chain();
    let message = body.as_ref().map(|(_, id)| *id).or(assigned);
    let (assignment, aid) = reference.assignment(era, chain, nonce, message, timestamp, hash_chain);
    let mut items: Vec<(&[u8], Id)> = vec![(&assignment, aid)];
    if let Some((bytes, id)) = &body {
        items.push((bytes, *id));
    }
    let (wrapper, _) = reference.wrapper(&[], &items);
    insert_message(
        db,
        &MessageRow {
            process: chain.process.clone(),
            message_id: b64::encode(&message.unwrap()),
            assignment_id: Some(b64::encode(&aid)),
            nonce: nonce as i32,
            timestamp: timestamp as i64,
            hash_chain: b64::encode(&hash_chain),
            bundle: wrapper,
            data: json!({"message": null, "assignment": {"id": b64::encode(&aid)}}),
        },
    );
    chain.previous = Some((aid, hash_chain));
    aid
}

/// An era-M1 row: the wrapper carries the schedule tags and holds the message.
fn schedule_m1(
    reference: &Reference,
    db: &mut Database,
    chain: &mut Chain,
    nonce: u64,
    timestamp: u64,
    body: (Vec<u8>, Id),
) {
    let hash_chain = chain.next_chain();
    let (wrapper, wid) = reference.wrapper(
        &[
            ("Process", chain.process.clone()),
            ("Epoch", "0".into()),
            ("Nonce", nonce.to_string()),
            ("Hash-Chain", b64::encode(&hash_chain)),
            ("Block-Height", HEIGHT.into()),
            ("Timestamp", timestamp.to_string()),
        ],
        &[(&body.0, body.1)],
    );
    insert_message(
        db,
        &MessageRow {
            process: chain.process.clone(),
            message_id: b64::encode(&body.1),
            assignment_id: None,
            nonce: nonce as i32,
            timestamp: timestamp as i64,
            hash_chain: b64::encode(&hash_chain),
            bundle: wrapper,
            data: json!({"message": {"id": b64::encode(&body.1)}, "nonce": nonce, "timestamp": timestamp}),
        },
    );
    chain.previous = Some((wid, hash_chain));
}

/// A legacy (P1) process row, before AOP-6: `[process]` in a wrapper with Block-Height and
/// Timestamp.
fn insert_legacy_process(reference: &Reference, db: &mut Database, timestamp: u64) -> String {
    let (process, pid) = reference.client_item(None, "Process", &[], b"-- legacy");
    let (wrapper, _) = reference.wrapper(
        &[
            ("Block-Height", HEIGHT.into()),
            ("Timestamp", timestamp.to_string()),
        ],
        &[(&process, pid)],
    );
    let id = b64::encode(&pid);
    db.client
        .execute(
            "INSERT INTO processes (process_id, process_data, bundle) VALUES ($1, $2::text::jsonb, $3)",
            &[&id, &json!({"process_id": id, "data": null, "timestamp": timestamp}).to_string(), &wrapper],
        )
        .unwrap();
    id
}

/// A P2 process row; `columns` false: written with ENABLE_PROCESS_ASSIGNMENT off (NULLs).
fn insert_aop6_process(
    reference: &Reference,
    db: &mut Database,
    timestamp: u64,
    columns: bool,
) -> Chain {
    let (process, pid) = reference.client_item(None, "Process", &[], b"-- aop6");
    let id = b64::encode(&pid);
    let mut chain = Chain::new(&id);
    let hash_chain = chain.next_chain();
    let (assignment, aid) = reference.assignment(Era::M4, &chain, 0, None, timestamp, hash_chain);
    let (wrapper, _) = reference.wrapper(&[], &[(&assignment, aid), (&process, pid)]);
    insert_p2_row(
        db,
        &id,
        &wrapper,
        columns.then(|| (timestamp as i64, b64::encode(&hash_chain))),
    );
    chain.previous = Some((aid, hash_chain));
    chain
}

fn insert_p2_row(db: &mut Database, id: &str, wrapper: &[u8], columns: Option<(i64, String)>) {
    let data = json!({"process": {"process_id": id}, "assignment": null}).to_string();
    match columns {
        Some((timestamp, chain)) => db.client.execute(
            "INSERT INTO processes (process_id, process_data, bundle, epoch, nonce, hash_chain, timestamp) VALUES ($1,$2::text::jsonb,$3,0,0,$4,$5)",
            &[&id, &data, &wrapper, &chain, &timestamp],
        ),
        None => db.client.execute(
            "INSERT INTO processes (process_id, process_data, bundle) VALUES ($1,$2::text::jsonb,$3)",
            &[&id, &data, &wrapper],
        ),
    }
    .unwrap();
}

/// A real fixture schedule, as the reference stored it: the process row from nonce 0, a
/// message row per later nonce with the columns its tags give.
fn insert_fixture_schedule(db: &mut Database, name: &str) -> usize {
    let mut assignment_only = 0;
    for nonce in 0..31 {
        let wrapper = fixture(&format!("{name}/nonce-{nonce:02}.bin"));
        let parsed = DataItem::parse(&wrapper).unwrap();
        let bundle = Bundle::parse(parsed.data).unwrap();
        let assignment = &bundle.items[0];
        let process = assignment.tag("Process").unwrap().to_string();
        let timestamp: i64 = assignment.tag("Timestamp").unwrap().parse().unwrap();
        let chain = assignment.tag("Hash-Chain").unwrap().to_string();
        if nonce == 0 {
            insert_p2_row(db, &process, &wrapper, Some((timestamp, chain)));
            continue;
        }
        let message_id = match bundle.items.get(1) {
            Some(message) => b64::encode(&message.id()),
            None => {
                assignment_only += 1;
                assignment.tag("Message").unwrap().to_string()
            }
        };
        insert_message(
            db,
            &MessageRow {
                process,
                message_id,
                assignment_id: Some(b64::encode(&assignment.id())),
                nonce,
                timestamp,
                hash_chain: chain,
                bundle: wrapper.clone(),
                data: json!({"message": null}),
            },
        );
    }
    assignment_only
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the every-era database holds, for the assertions.
struct EveryEra {
    db: Database,
    reference: Reference,
    legacy: String,
    aop6: String,
    /// Entries the importer must write, assignment-only entries among them, anomalies.
    entries: u64,
    uncovered: u64,
    anomalies: u64,
}

/// Rows of every era, each written under the schema of its time.
fn every_era_database() -> EveryEra {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("eras");
    let mut ts = now_ms() - 3_600_000;
    let mut tick = || {
        ts += 1000;
        ts
    };
    db.migrate("00000000000000");
    db.migrate("20231213213153");
    let legacy = insert_legacy_process(&reference, &mut db, tick());
    let mut chain = Chain::new(&legacy);
    // Non-UTF-8 data; a random (non-UTF-8) anchor on every client item.
    let body = reference.client_item(
        Some(&legacy),
        "Message",
        &[("Action", "Eval")],
        &[0xff, 0xfe, 0x80, 0x01],
    );
    schedule_m1(&reference, &mut db, &mut chain, 0, tick(), body);
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"return 1");
    schedule_m1(&reference, &mut db, &mut chain, 1, tick(), body);
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"return 2");
    schedule_m1(&reference, &mut db, &mut chain, 2, tick(), body);

    // Era M2: assignment ids; a duplicate nonce written from a lagging replica, then a gap.
    db.migrate("20240327163751");
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"three");
    let before_fork = chain.previous;
    schedule(
        &reference,
        &mut db,
        Era::M2,
        &mut chain,
        3,
        tick(),
        Some(body),
        None,
    );
    chain.previous = before_fork;
    let body = reference.client_item(
        Some(&legacy),
        "Message",
        &[("Action", "Eval")],
        b"three again",
    );
    schedule(
        &reference,
        &mut db,
        Era::M2,
        &mut chain,
        3,
        tick(),
        Some(body),
        None,
    );
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"four");
    schedule(
        &reference,
        &mut db,
        Era::M2,
        &mut chain,
        4,
        tick(),
        Some(body),
        None,
    );
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"six");
    schedule(
        &reference,
        &mut db,
        Era::M2,
        &mut chain,
        6,
        tick(),
        Some(body),
        None,
    );
    let assigned = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    schedule(
        &reference,
        &mut db,
        Era::M2,
        &mut chain,
        7,
        tick(),
        None,
        Some(assigned),
    );

    // Era M3: a pushed message (From-Process) gets a dedupe hash.
    db.migrate("20240529143054");
    db.migrate("20240805190651");
    let body = reference.client_item(
        Some(&legacy),
        "Message",
        &[("From-Process", &legacy), ("Pushed-For", "x")],
        b"pushed",
    );
    schedule(
        &reference,
        &mut db,
        Era::M3,
        &mut chain,
        8,
        tick(),
        Some(body),
        None,
    );

    // AOP-6: processes with their own assignment, M4 entries.
    db.migrate("20240904145702");
    // The real fixtures, written in October 2024 by the reference's own wallet.
    let mut uncovered = insert_fixture_schedule(&mut db, "schedule-Dccc") as u64;
    uncovered += insert_fixture_schedule(&mut db, "schedule-4QTy") as u64;
    let mut aop6 = insert_aop6_process(&reference, &mut db, tick(), true);
    let aop6_id = aop6.process.clone();
    let body = reference.ethereum_item(&aop6_id, b"1000");
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut aop6,
        1,
        tick(),
        Some(body),
        None,
    );
    let body = reference.client_item(
        Some(&aop6_id),
        "Message",
        &[("From-Process", &legacy)],
        &[0xc3, 0x28],
    );
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut aop6,
        2,
        tick(),
        Some(body),
        None,
    );
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut aop6,
        3,
        tick(),
        None,
        Some(assigned),
    );
    let mut switched_off = insert_aop6_process(&reference, &mut db, tick(), false);
    let body = reference.client_item(
        Some(&switched_off.process.clone()),
        "Message",
        &[],
        b"hello",
    );
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut switched_off,
        1,
        tick(),
        Some(body),
        None,
    );

    db.migrate("20241126200327");
    db.migrate("20250318144400");
    let body = reference.client_item(Some(&aop6_id), "Message", &[("Action", "Eval")], &[0x80]);
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut aop6,
        4,
        tick(),
        Some(body),
        None,
    );
    EveryEra {
        db,
        reference,
        legacy,
        aop6: aop6_id,
        // legacy: 9, aop6: 5, switched off: 2, fixtures: 31 + 31.
        entries: 9 + 5 + 2 + 62,
        uncovered: uncovered + 2,
        // the duplicate nonce 3, its broken link, missing nonce 5
        anomalies: 3,
    }
}

fn import(data_dir: &Path, url: &str, extra: &[&str]) -> support::SuOutput {
    SuCommand::new(data_dir)
        .arg("import-postgres")
        .args(["--database-url", url])
        .args(extra)
        .output()
}

fn expected(name: &str) -> String {
    let text = String::from_utf8(fixture(&format!("expected/{name}"))).unwrap();
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

fn summary_number(stdout: &str, after: &str) -> u64 {
    let start = stdout
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {stdout}"))
        + after.len();
    stdout[start..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_era_imports_verifies_serves_the_reference_bytes_and_continues() {
    let eras = every_era_database();
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &eras.db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    let stdout = &out.stdout;
    assert_eq!(summary_number(stdout, "imported"), 5, "{stdout}");
    assert_eq!(summary_number(stdout, "processes ("), 1, "{stdout}");
    assert_eq!(summary_number(stdout, "legacy),"), eras.entries, "{stdout}");
    assert_eq!(
        summary_number(stdout, "legacy anomalies kept:"),
        eras.anomalies,
        "{stdout}"
    );
    assert_eq!(summary_number(stdout, "column mismatches:"), 0, "{stdout}");
    assert_eq!(
        summary_number(stdout, "not covered):"),
        eras.uncovered,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "process {} nonce 3: duplicate nonce 3 (copy 1)",
            eras.legacy
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "process {} nonce 6: missing nonces 5..5",
            eras.legacy
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "store signer: {}",
            eras.reference.wallet.address_b64()
        )),
        "{stdout}"
    );

    // A second run is a no-op: the cursor says the import is complete.
    let again = import(dir.path(), &eras.db.url(), &[]);
    assert!(again.success(), "{}", again.text());
    assert!(
        again.stdout.contains("complete already"),
        "{}",
        again.stdout
    );

    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
    assert!(report.contains("3 legacy anomalies"), "{report}");

    // Dedupe rows: the pushed messages' hashes.
    {
        let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        let legacy = b64::decode_id(&eras.legacy).unwrap();
        assert_eq!(store.dedupe_hashes(&legacy).unwrap().len(), 1);
        assert_eq!(
            store.outbox_len().unwrap(),
            0,
            "imported history is not uploaded again"
        );
    }

    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &eras.reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_WALLET_PATH", wallet_path.to_str().unwrap())],
    );
    for (name, pid) in [
        (
            "schedule-4QTy",
            "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo",
        ),
        (
            "schedule-Dccc",
            "DcccvmuHG83kIjXWtB2OBTDcZbFB32EXwbMWuTzmxSo",
        ),
    ] {
        let get = |path: String| {
            let (status, body) = su.get(&path);
            assert_eq!(status, 200, "{path}: {body}");
            body
        };
        assert_eq!(
            get(format!("/{pid}?limit=1000")),
            expected(&format!("{name}.list.timestamp-mode.json"))
        );
        assert_eq!(
            get(format!("/{pid}?limit=1000&from-nonce=-1")),
            expected(&format!("{name}.list.nonce-mode.json"))
        );
        assert_eq!(
            get(format!("/{pid}?limit=1000&show-anchor=true")),
            expected(&format!("{name}.list.show-anchor.json"))
        );
        assert_eq!(
            get(format!("/processes/{pid}")),
            expected(&format!("{name}.processes.json"))
        );
    }
    let pid = "4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo";
    let list: serde_json::Value =
        serde_json::from_str(&su.get(&format!("/{pid}?limit=1000")).1).unwrap();
    let edges = list["edges"].as_array().unwrap();
    for (nonce, edge) in edges.iter().enumerate().take(4).skip(1) {
        let node = &edge["node"];
        let id = match node["message"]["id"].as_str() {
            Some(id) if nonce == 2 => id.to_string(),
            _ => node["assignment"]["id"].as_str().unwrap().to_string(),
        };
        let (status, body) = su.get(&format!("/{id}?process-id={pid}"));
        assert_eq!(status, 200);
        assert_eq!(
            body,
            expected(&format!("schedule-4QTy.nonce-{nonce:02}.node.json"))
        );
    }

    // The legacy process: no process node, its entries in (nonce, timestamp) order.
    let nonces = |process: &str| -> Vec<String> {
        support::edges(&su, process)
            .iter()
            .map(|edge| support::tag(&edge["node"], "Nonce"))
            .collect()
    };
    assert_eq!(
        nonces(&eras.legacy),
        ["0", "1", "2", "3", "3", "4", "6", "7", "8"]
    );
    assert_eq!(su.get(&format!("/processes/{}", eras.legacy)).0, 200);
    assert_eq!(nonces(&eras.aop6), ["0", "1", "2", "3", "4"]);

    // New messages continue the imported nonces and chains.
    let client = support::Client::new();
    for (process, next) in [(&eras.aop6, "5"), (&eras.legacy, "9")] {
        let (message, _) = client.message(process, "continue");
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        let all = support::edges(&su, process);
        let last = &all.last().unwrap()["node"];
        assert_eq!(support::tag(last, "Nonce"), next);
    }
    drop(su);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "the continued store verifies: {report}");
}

#[test]
fn an_item_that_does_not_verify_is_reported_with_its_process_and_nonce() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("bad");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    let (mut body, id) = reference.client_item(Some(&process), "Message", &[], b"tampered");
    let last = body.len() - 1;
    body[last] ^= 1; // the data changes, the id (hash of the signature) does not
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut chain,
        1,
        now_ms() + 1,
        Some((body, id)),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(!out.success(), "{}", out.text());
    assert!(
        out.stdout
            .contains(&format!("not imported: process {process} nonce 1: item")),
        "{}",
        out.text()
    );
    // With signatures skipped, the same entry is imported (links are still checked).
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &["--skip-signatures"]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(summary_number(&out.stdout, "legacy),"), 2);
}

#[test]
fn a_store_that_su_serve_holds_is_refused_with_a_clear_message() {
    let mut db = Database::create("locked");
    db.migrate_all_from(0);
    let dir = tempfile::tempdir().unwrap();
    let mut su = TestSu::start(dir.path(), &[]);
    let out = import(dir.path(), &db.url(), &[]);
    assert!(!out.success());
    assert!(
        out.text().contains("in use by another process"),
        "{}",
        out.text()
    );
    su.stop();
}

/// A placeholder-signed database large enough for many checkpoints.
fn large_database(processes: usize, per_process: u64) -> Database {
    let reference = Reference::new(Signing::Placeholder);
    let mut db = Database::create("large");
    db.migrate_all_from(0);
    let mut ts = now_ms() - 10_000_000;
    for _ in 0..processes {
        ts += 1;
        let mut chain = insert_aop6_process(&reference, &mut db, ts, true);
        let process = chain.process.clone();
        db.client.batch_execute("BEGIN").unwrap();
        for nonce in 1..=per_process {
            ts += 1;
            let body = reference.client_item(
                Some(&process),
                "Message",
                &[],
                format!("m{nonce}").as_bytes(),
            );
            schedule(
                &reference,
                &mut db,
                Era::M4,
                &mut chain,
                nonce,
                ts,
                Some(body),
                None,
            );
        }
        db.client.batch_execute("COMMIT").unwrap();
    }
    db
}

fn dump(dir: &Path) -> Vec<ao_su::store::DumpRow> {
    let store = Store::open(dir, OpenMode::ReadOnly).unwrap();
    store.dump().unwrap()
}

#[test]
fn sigkill_at_random_points_then_rerun_gives_the_clean_import() {
    let db = large_database(4, 1500);
    let flags = ["--skip-signatures", "--checkpoint-entries", "700"];
    let clean = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = import(clean.path(), &db.url(), &flags);
    // Kills land at random points within the time a whole import takes here, so the first
    // run is cut short whatever the machine's speed.
    let whole = started.elapsed().as_millis() as u64;
    assert!(out.success(), "{}", out.text());
    let expected_rows = dump(clean.path());

    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_su");
    let mut seed = now_ms();
    let mut kills = 0;
    for _ in 0..6 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // 10% to 60% of a whole import.
        let delay = Duration::from_millis(whole / 10 + (seed >> 33) % (whole / 2).max(1));
        let mut child = std::process::Command::new(binary)
            .args(["import-postgres", "--database-url", &db.url()])
            .args(flags)
            .env_clear()
            .env("SU_DATA_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    let out = import(dir.path(), &db.url(), &flags);
    assert!(out.success(), "{}", out.text());
    assert!(kills > 0, "no run was killed mid-way");
    let found = dump(dir.path());
    assert_eq!(found.len(), expected_rows.len());
    for (found, expected) in found.iter().zip(&expected_rows) {
        assert_eq!(found, expected, "first differing row, CF {}", expected.0);
    }
}

#[test]
fn a_use_disk_byte_store_is_read_before_the_bundle_column() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("disk");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    for nonce in 1..=3u64 {
        let body = reference.client_item(Some(&process), "Message", &[], b"on disk");
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            now_ms() + nonce,
            Some(body),
            None,
        );
    }
    // The byte store holds each wrapper under the reference's key (PROTOCOL 9.3); the
    // column is damaged, so only a read of the byte store can import the rows.
    let disk = tempfile::tempdir().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let store = rocksdb::DB::open(&options, disk.path()).unwrap();
        for row in db
            .client
            .query(
                "SELECT process_id, timestamp, message_id, assignment_id, bundle FROM messages",
                &[],
            )
            .unwrap()
        {
            let (pid, ts, mid, aid): (String, i64, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let bundle: Vec<u8> = row.get(4);
            store
                .put(format!("message___{pid}___{ts}___{mid}___{aid}"), bundle)
                .unwrap();
        }
    }
    db.client
        .execute("UPDATE messages SET bundle = '\\x00'::bytea", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(
        !out.success(),
        "the damaged column alone does not import: {}",
        out.text()
    );
    let dir = tempfile::tempdir().unwrap();
    let disk_dir = disk.path().to_str().unwrap();
    let out = import(dir.path(), &db.url(), &["--disk-dir", disk_dir]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(summary_number(&out.stdout, "legacy),"), 4);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
}

/// Assignment-only entries get their dedupe hash through the gateway when one is configured:
/// a bundled transaction its ordered hash (so assigning it again is refused after the move),
/// a base-layer one none, and one the gateway cannot describe is imported, listed as not
/// covered. Without a gateway every one of them is not covered, and the repeat is accepted.
#[test]
fn assigned_transactions_get_their_dedupe_hash_through_the_gateway() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("assigned");
    db.migrate_all_from(0);
    let mut ts = now_ms() - 3_600_000;
    let mut tick = || {
        ts += 1000;
        ts
    };
    let mut chain = insert_aop6_process(&reference, &mut db, tick(), true);
    let process = chain.process.clone();
    let (bundled, bundled_id) = reference.client_item(
        None,
        "Message",
        &[("Action", "Transfer")],
        b"a bundled item",
    );
    let base_layer = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    let unknown = reference.client_item(None, "Message", &[], b"nowhere").1;
    for (nonce, assigned) in [(1, bundled_id), (2, base_layer), (3, unknown)] {
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            tick(),
            None,
            Some(assigned),
        );
    }
    let gateway = support::fakes::FakeGateway::start(1_000);
    let (tx, data) = support::fakes::GqlTx::of_item(&bundled);
    gateway.add_tx(tx, &data);
    gateway.set_confirmations(&b64::encode(&base_layer), 40);
    let env = [
        ("ARWEAVE_URL", gateway.url()),
        ("GRAPHQL_URL", gateway.url()),
    ];
    let wallet = tempfile::tempdir().unwrap();
    let wallet_path = wallet.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();

    let assign_again = |data_dir: &Path| -> (u16, String) {
        let su = TestSu::start(
            data_dir,
            &[
                ("SU_WALLET_PATH", wallet_path.to_str().unwrap()),
                ("ARWEAVE_URL", &gateway.url()),
                ("GRAPHQL_URL", &gateway.url()),
            ],
        );
        let id = b64::encode(&bundled_id);
        su.post(&format!("/?process-id={process}&assign={id}"), b"")
    };

    let with_gateway = tempfile::tempdir().unwrap();
    let out = SuCommand::new(with_gateway.path())
        .envs(
            &env.iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .arg("import-postgres")
        .args(["--database-url", &db.url()])
        .output();
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "process {process} nonce 3: assigned transaction {}",
            b64::encode(&unknown)
        )),
        "{}",
        out.stdout
    );
    {
        let store = Store::open(with_gateway.path(), OpenMode::ReadOnly).unwrap();
        let pid = b64::decode_id(&process).unwrap();
        assert_eq!(
            store.dedupe_hashes(&pid).unwrap().len(),
            1,
            "the bundled transaction's hash only"
        );
    }
    let (ok, report) = su_verify(with_gateway.path());
    assert!(ok, "{report}");
    let (status, body) = assign_again(with_gateway.path());
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );

    let without_gateway = tempfile::tempdir().unwrap();
    let out = import(without_gateway.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        3,
        "{}",
        out.stdout
    );
    let (status, body) = assign_again(without_gateway.path());
    assert_eq!(status, 200, "{body}");
}

/// A `USE_DISK` byte store keeps the process's dedupe records (`deephash___`): the ones no
/// imported entry computes from its body (assignments of existing transactions) are listed on
/// the assignment-only entries, so dedupe protects them after the move without a gateway.
#[test]
fn the_byte_store_dedupe_records_are_kept_for_assignments() {
    use ao_su::ans104::dedupe::{TagOrder, item_dedupe_hash};
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("recorded");
    db.migrate_all_from(0);
    let mut chain = insert_aop6_process(&reference, &mut db, now_ms(), true);
    let process = chain.process.clone();
    let (pushed, pushed_id) = reference.client_item(
        Some(&process),
        "Message",
        &[("From-Process", &process)],
        b"pushed",
    );
    let (bundled, bundled_id) = reference.client_item(
        None,
        "Message",
        &[("Action", "Transfer")],
        b"a bundled item",
    );
    let base_layer = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    let hash_of =
        |bytes: &[u8]| item_dedupe_hash(&DataItem::parse(bytes).unwrap(), TagOrder::Sorted);
    let (pushed_hash, bundled_hash) = (hash_of(&pushed), hash_of(&bundled));
    schedule(
        &reference,
        &mut db,
        Era::M4,
        &mut chain,
        1,
        now_ms() + 1,
        Some((pushed, pushed_id)),
        None,
    );
    for (nonce, assigned) in [(2, bundled_id), (3, base_layer)] {
        schedule(
            &reference,
            &mut db,
            Era::M4,
            &mut chain,
            nonce,
            now_ms() + nonce,
            None,
            Some(assigned),
        );
    }
    let disk = tempfile::tempdir().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let store = rocksdb::DB::open(&options, disk.path()).unwrap();
        for hash in [pushed_hash, bundled_hash] {
            store
                .put(
                    format!("deephash___{process}___{}", b64::encode(&hash)),
                    &process,
                )
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let disk_dir = disk.path().to_str().unwrap();
    let out = import(dir.path(), &db.url(), &["--disk-dir", disk_dir]);
    assert!(out.success(), "{}", out.text());
    assert_eq!(
        summary_number(&out.stdout, "without a dedupe hash (not covered):"),
        1,
        "only the base-layer assignment: {}",
        out.stdout
    );
    {
        let store = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        let pid = b64::decode_id(&process).unwrap();
        let mut hashes = store.dedupe_hashes(&pid).unwrap();
        hashes.sort_unstable();
        let mut expected = vec![pushed_hash, bundled_hash];
        expected.sort_unstable();
        assert_eq!(hashes, expected);
    }
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");

    let gateway = support::fakes::FakeGateway::start(1_000);
    let (tx, data) = support::fakes::GqlTx::of_item(&bundled);
    gateway.add_tx(tx, &data);
    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[
            ("SU_WALLET_PATH", wallet_path.to_str().unwrap()),
            ("ARWEAVE_URL", &gateway.url()),
            ("GRAPHQL_URL", &gateway.url()),
        ],
    );
    let id = b64::encode(&bundled_id);
    let (status, body) = su.post(&format!("/?process-id={process}&assign={id}"), b"");
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );
}

/// A legacy (era P1) process imported before it had any message takes its first one at nonce
/// 0, as the reference would have given it (PROTOCOL 6.1), with the seed link.
#[test]
fn an_imported_legacy_process_without_entries_takes_its_first_message() {
    let reference = Reference::new(Signing::Real);
    let mut db = Database::create("emptylegacy");
    db.migrate_all_from(0);
    let legacy = insert_legacy_process(&reference, &mut db, now_ms() - 60_000);
    let dir = tempfile::tempdir().unwrap();
    let out = import(dir.path(), &db.url(), &[]);
    assert!(out.success(), "{}", out.text());
    let wallet_path = dir.path().join("reference-wallet.json");
    Wallet::write_new(&wallet_path, &reference.jwk).unwrap();
    let su = TestSu::start(
        dir.path(),
        &[("SU_WALLET_PATH", wallet_path.to_str().unwrap())],
    );
    let client = support::Client::new();
    for expected in ["0", "1"] {
        let (message, _) = client.message(&legacy, "first");
        let (status, body) = su.post("/", &message);
        assert_eq!(status, 200, "{body}");
        let last = support::edges(&su, &legacy).last().unwrap()["node"].clone();
        assert_eq!(support::tag(&last, "Nonce"), expected);
    }
    drop(su);
    let (ok, report) = su_verify(dir.path());
    assert!(ok, "{report}");
}
