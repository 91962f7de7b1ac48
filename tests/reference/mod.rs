//! A fake reference SU for the import tests: it signs items and assignments the way the
//! reference did in each era and writes the history, row by row, into a store of the
//! reference's formats: its Postgres schema (`postgres.rs`) or its RocksDB-only store
//! (`local_store.rs`). `History` records the rows once, so one history can be written into
//! both and the two imports compared.
#![allow(dead_code)] // each test binary uses a part

pub mod local_store;
pub mod postgres;

use crate::support;
use ao_su::ans104::dedupe::{TagOrder, item_dedupe_hash};
use ao_su::ans104::item::{ItemDraft, SignatureType};
use ao_su::ans104::{Bundle, DataItem, b64, encode_bundle};
use ao_su::domain::{self, Id};
use ao_su::store::{DumpRow, OpenMode, Store};
use ao_su::wallet::{Jwk, SigningSalt, Wallet};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The columns of one `messages` row (and what the local store keeps of it).
#[derive(Clone)]
pub struct MessageRow {
    pub process: String,
    pub message_id: String,
    pub assignment_id: Option<String>,
    pub nonce: i32,
    pub timestamp: i64,
    pub hash_chain: String,
    pub bundle: Vec<u8>,
    pub data: serde_json::Value,
    /// The dedupe record the reference made of a pushed message (b64u, PROTOCOL 4.6.2); kept
    /// by the stores that have records.
    pub deep_hash: Option<String>,
}

/// The columns of one `processes` row.
#[derive(Clone)]
pub struct ProcessRow {
    pub process: String,
    pub data: serde_json::Value,
    pub bundle: Vec<u8>,
    /// `timestamp` and `hash_chain` of a P2 row written with ENABLE_PROCESS_ASSIGNMENT on.
    pub columns: Option<(i64, String)>,
}

/// A store of the reference's that history is written into.
pub trait ReferenceStore {
    /// The Postgres schema moves to a migration (the local store has no schema eras).
    fn migrate(&mut self, _version: &str) {}
    fn insert_process(&mut self, row: &ProcessRow);
    fn insert_message(&mut self, row: &MessageRow);
    /// Many rows follow (Postgres groups them in one transaction).
    fn begin(&mut self) {}
    fn commit(&mut self) {}
}

/// One write of a recorded history.
#[derive(Clone)]
enum Write {
    Migrate(String),
    Process(ProcessRow),
    Message(MessageRow),
}

/// A history recorded once, to be written into several stores.
#[derive(Default)]
pub struct History {
    writes: Vec<Write>,
}

impl ReferenceStore for History {
    fn migrate(&mut self, version: &str) {
        self.writes.push(Write::Migrate(version.to_string()));
    }
    fn insert_process(&mut self, row: &ProcessRow) {
        self.writes.push(Write::Process(row.clone()));
    }
    fn insert_message(&mut self, row: &MessageRow) {
        self.writes.push(Write::Message(row.clone()));
    }
}

impl History {
    pub fn replay(&self, store: &mut dyn ReferenceStore) {
        store.begin();
        for write in &self.writes {
            match write {
                Write::Migrate(version) => {
                    store.commit();
                    store.migrate(version);
                    store.begin();
                }
                Write::Process(row) => store.insert_process(row),
                Write::Message(row) => store.insert_message(row),
            }
        }
        store.commit();
    }
}

pub fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// How the fake reference signs: really (RSA-4096), or with placeholder signatures for large
/// data sets imported with `--skip-signatures`.
#[derive(Clone, Copy, PartialEq)]
pub enum Signing {
    Real,
    Placeholder,
}

/// The assignment tag order of an era (PROTOCOL 1.6.3).
#[derive(Clone, Copy, PartialEq)]
pub enum Era {
    M2,
    M3,
    M4,
}

/// A reference SU writing rows the way it did in each era.
pub struct Reference {
    /// The reference SU's wallet: the operator keeps serving with it after the import.
    pub jwk: Jwk,
    pub wallet: Wallet,
    pub client: Wallet,
    signing: Signing,
    seed: std::cell::Cell<u64>,
}

/// One process's schedule state on the reference.
pub struct Chain {
    pub process: String,
    pub pid: Id,
    pub previous: Option<(Id, [u8; 32])>,
}

impl Chain {
    pub fn new(process: &str) -> Self {
        Self {
            process: process.to_string(),
            pid: b64::decode_id(process).unwrap(),
            previous: None,
        }
    }

    pub fn next_chain(&self) -> [u8; 32] {
        match &self.previous {
            None => domain::seed_hash_chain(&self.pid),
            Some((id, chain)) => domain::next_hash_chain(id, chain),
        }
    }
}

pub const HEIGHT: &str = "000001500000";

impl Reference {
    pub fn new(signing: Signing) -> Self {
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

    pub fn wrapper(&self, extra: &[(&str, String)], items: &[(&[u8], Id)]) -> (Vec<u8>, Id) {
        let mut all = tags(&[("Bundle-Format", "binary"), ("Bundle-Version", "2.0.0")]);
        all.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let data = encode_bundle(&items.iter().map(|(b, id)| (*b, *id)).collect::<Vec<_>>());
        self.su_item(all, data)
    }

    /// A client item; its anchor is random (non-UTF-8).
    pub fn client_item(
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

    pub fn ethereum_item(&self, target: &str, data: &[u8]) -> (Vec<u8>, Id) {
        let draft = ItemDraft {
            signature_type: SignatureType::ETHEREUM,
            owner: Vec::new(),
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
        let item = draft.finish_ethereum(&[7; 32]);
        let id = DataItem::parse(&item).unwrap().id();
        (item, id)
    }

    /// The SU's assignment of an era.
    pub fn assignment(
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

/// The dedupe record the reference made of a message body: pushed messages only.
fn deep_hash_of(body: &[u8]) -> Option<String> {
    let item = DataItem::parse(body).unwrap();
    item.tag("From-Process")
        .map(|_| b64::encode(&item_dedupe_hash(&item, TagOrder::Sorted)))
}

/// A scheduled row of era M2–M4: `[assignment(, message)]` in a wrapper. Advances the chain
/// (the caller resets it to write a lagging replica's duplicate: same nonce, same
/// predecessor). Returns the assignment id.
#[allow(clippy::too_many_arguments)]
pub fn schedule(
    reference: &Reference,
    store: &mut dyn ReferenceStore,
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
    store.insert_message(&MessageRow {
        process: chain.process.clone(),
        message_id: b64::encode(&message.unwrap()),
        assignment_id: Some(b64::encode(&aid)),
        nonce: nonce as i32,
        timestamp: timestamp as i64,
        hash_chain: b64::encode(&hash_chain),
        bundle: wrapper,
        data: json!({"message": null, "assignment": {"id": b64::encode(&aid)}}),
        deep_hash: body.as_ref().and_then(|(bytes, _)| deep_hash_of(bytes)),
    });
    chain.previous = Some((aid, hash_chain));
    aid
}

/// An era-M1 row: the wrapper carries the schedule tags and holds the message.
pub fn schedule_m1(
    reference: &Reference,
    store: &mut dyn ReferenceStore,
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
    store.insert_message(&MessageRow {
        process: chain.process.clone(),
        message_id: b64::encode(&body.1),
        assignment_id: None,
        nonce: nonce as i32,
        timestamp: timestamp as i64,
        hash_chain: b64::encode(&hash_chain),
        bundle: wrapper,
        data: json!({"message": {"id": b64::encode(&body.1)}, "nonce": nonce, "timestamp": timestamp}),
        deep_hash: deep_hash_of(&body.0),
    });
    chain.previous = Some((wid, hash_chain));
}

/// A legacy (P1) process row, before AOP-6: `[process]` in a wrapper with Block-Height and
/// Timestamp.
pub fn insert_legacy_process(
    reference: &Reference,
    store: &mut dyn ReferenceStore,
    timestamp: u64,
) -> String {
    let (process, pid) = reference.client_item(None, "Process", &[], b"-- legacy");
    let (wrapper, _) = reference.wrapper(
        &[
            ("Block-Height", HEIGHT.into()),
            ("Timestamp", timestamp.to_string()),
        ],
        &[(&process, pid)],
    );
    let id = b64::encode(&pid);
    store.insert_process(&ProcessRow {
        process: id.clone(),
        data: json!({"process_id": id, "data": null, "timestamp": timestamp}),
        bundle: wrapper,
        columns: None,
    });
    id
}

/// A P2 process row; `columns` false: written with ENABLE_PROCESS_ASSIGNMENT off (NULLs).
pub fn insert_aop6_process(
    reference: &Reference,
    store: &mut dyn ReferenceStore,
    timestamp: u64,
    columns: bool,
) -> Chain {
    let (process, pid) = reference.client_item(None, "Process", &[], b"-- aop6");
    let id = b64::encode(&pid);
    let mut chain = Chain::new(&id);
    let hash_chain = chain.next_chain();
    let (assignment, aid) = reference.assignment(Era::M4, &chain, 0, None, timestamp, hash_chain);
    let (wrapper, _) = reference.wrapper(&[], &[(&assignment, aid), (&process, pid)]);
    store.insert_process(&p2_row(
        &id,
        wrapper,
        columns.then(|| (timestamp as i64, b64::encode(&hash_chain))),
    ));
    chain.previous = Some((aid, hash_chain));
    chain
}

fn p2_row(id: &str, wrapper: Vec<u8>, columns: Option<(i64, String)>) -> ProcessRow {
    ProcessRow {
        process: id.to_string(),
        data: json!({"process": {"process_id": id}, "assignment": null}),
        bundle: wrapper,
        columns,
    }
}

/// A real fixture schedule, as the reference stored it: the process row from nonce 0, a
/// message row per later nonce with the columns its tags give. Returns its assignment-only
/// entries.
pub fn insert_fixture_schedule(store: &mut dyn ReferenceStore, name: &str) -> usize {
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
            store.insert_process(&p2_row(&process, wrapper.clone(), Some((timestamp, chain))));
            continue;
        }
        let message_id = match bundle.items.get(1) {
            Some(message) => b64::encode(&message.id()),
            None => {
                assignment_only += 1;
                assignment.tag("Message").unwrap().to_string()
            }
        };
        let deep_hash = bundle
            .items
            .get(1)
            .and_then(|message| deep_hash_of(message.raw()));
        store.insert_message(&MessageRow {
            process,
            message_id,
            assignment_id: Some(b64::encode(&assignment.id())),
            nonce,
            timestamp,
            hash_chain: chain,
            bundle: wrapper.clone(),
            data: json!({"message": null}),
            deep_hash,
        });
    }
    assignment_only
}

/// What the every-era history holds, for the assertions.
pub struct EveryEra {
    pub legacy: String,
    pub aop6: String,
    /// Entries the importer must write, assignment-only entries among them, anomalies.
    pub entries: u64,
    pub uncovered: u64,
    pub anomalies: u64,
}

/// History of every era, each row written under the schema of its time: a legacy process with
/// M1 rows, then M2 (a duplicate nonce from a lagging replica, then a gap, an assignment),
/// M3 (a pushed message), and AOP-6 processes (the real fixtures, Ethereum-signed and
/// non-UTF-8 items, assignments, a process written with process assignment off).
pub fn every_era(reference: &Reference, store: &mut dyn ReferenceStore) -> EveryEra {
    let mut ts = now_ms() - 3_600_000;
    let mut tick = || {
        ts += 1000;
        ts
    };
    store.migrate("00000000000000");
    store.migrate("20231213213153");
    let legacy = insert_legacy_process(reference, store, tick());
    let mut chain = Chain::new(&legacy);
    // Non-UTF-8 data; a random (non-UTF-8) anchor on every client item.
    let body = reference.client_item(
        Some(&legacy),
        "Message",
        &[("Action", "Eval")],
        &[0xff, 0xfe, 0x80, 0x01],
    );
    schedule_m1(reference, store, &mut chain, 0, tick(), body);
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"return 1");
    schedule_m1(reference, store, &mut chain, 1, tick(), body);
    let body = reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], b"return 2");
    schedule_m1(reference, store, &mut chain, 2, tick(), body);

    // Era M2: assignment ids; a duplicate nonce written from a lagging replica, then a gap.
    store.migrate("20240327163751");
    let eval =
        |data: &[u8]| reference.client_item(Some(&legacy), "Message", &[("Action", "Eval")], data);
    let before_fork = chain.previous;
    schedule(
        reference,
        store,
        Era::M2,
        &mut chain,
        3,
        tick(),
        Some(eval(b"three")),
        None,
    );
    chain.previous = before_fork;
    let body = Some(eval(b"three again"));
    schedule(reference, store, Era::M2, &mut chain, 3, tick(), body, None);
    schedule(
        reference,
        store,
        Era::M2,
        &mut chain,
        4,
        tick(),
        Some(eval(b"four")),
        None,
    );
    schedule(
        reference,
        store,
        Era::M2,
        &mut chain,
        6,
        tick(),
        Some(eval(b"six")),
        None,
    );
    let assigned = reference
        .client_item(None, "Message", &[], b"an L1 transaction")
        .1;
    schedule(
        reference,
        store,
        Era::M2,
        &mut chain,
        7,
        tick(),
        None,
        Some(assigned),
    );

    // Era M3: a pushed message (From-Process) gets a dedupe hash.
    store.migrate("20240529143054");
    store.migrate("20240805190651");
    let body = reference.client_item(
        Some(&legacy),
        "Message",
        &[("From-Process", &legacy), ("Pushed-For", "x")],
        b"pushed",
    );
    schedule(
        reference,
        store,
        Era::M3,
        &mut chain,
        8,
        tick(),
        Some(body),
        None,
    );

    // AOP-6: processes with their own assignment, M4 entries.
    store.migrate("20240904145702");
    // The real fixtures, written in October 2024 by the reference's own wallet.
    let mut uncovered = insert_fixture_schedule(store, "schedule-Dccc") as u64;
    uncovered += insert_fixture_schedule(store, "schedule-4QTy") as u64;
    let mut aop6 = insert_aop6_process(reference, store, tick(), true);
    let aop6_id = aop6.process.clone();
    let body = reference.ethereum_item(&aop6_id, b"1000");
    schedule(
        reference,
        store,
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
        reference,
        store,
        Era::M4,
        &mut aop6,
        2,
        tick(),
        Some(body),
        None,
    );
    schedule(
        reference,
        store,
        Era::M4,
        &mut aop6,
        3,
        tick(),
        None,
        Some(assigned),
    );
    let mut switched_off = insert_aop6_process(reference, store, tick(), false);
    let target = switched_off.process.clone();
    let body = reference.client_item(Some(&target), "Message", &[], b"hello");
    schedule(
        reference,
        store,
        Era::M4,
        &mut switched_off,
        1,
        tick(),
        Some(body),
        None,
    );

    store.migrate("20241126200327");
    store.migrate("20250318144400");
    let body = reference.client_item(Some(&aop6_id), "Message", &[("Action", "Eval")], &[0x80]);
    schedule(
        reference,
        store,
        Era::M4,
        &mut aop6,
        4,
        tick(),
        Some(body),
        None,
    );
    EveryEra {
        legacy,
        aop6: aop6_id,
        // legacy: 9, aop6: 5, switched off: 2, fixtures: 31 + 31.
        entries: 9 + 5 + 2 + 62,
        uncovered: uncovered + 2,
        // the duplicate nonce 3, its broken link, missing nonce 5
        anomalies: 3,
    }
}

/// A placeholder-signed history large enough for many checkpoints: `processes` AOP-6
/// processes of `per_process` messages each.
pub fn large_history(store: &mut dyn ReferenceStore, processes: usize, per_process: u64) {
    let reference = Reference::new(Signing::Placeholder);
    let mut ts = now_ms() - 10_000_000;
    for _ in 0..processes {
        ts += 1;
        let mut chain = insert_aop6_process(&reference, store, ts, true);
        let process = chain.process.clone();
        store.begin();
        for nonce in 1..=per_process {
            ts += 1;
            let data = format!("m{nonce}");
            let body = reference.client_item(Some(&process), "Message", &[], data.as_bytes());
            schedule(
                &reference,
                store,
                Era::M4,
                &mut chain,
                nonce,
                ts,
                Some(body),
                None,
            );
        }
        store.commit();
    }
}

/// Every row of the store at `dir`, in key order.
pub fn dump(dir: &Path) -> Vec<DumpRow> {
    let store = Store::open(dir, OpenMode::ReadOnly).unwrap();
    store.dump().unwrap()
}

/// The rows of history: all but the importer's checkpoints (whose key and totals name the
/// source), so imports of one history from two sources compare equal.
pub fn history_rows(dir: &Path) -> Vec<DumpRow> {
    let mut rows = dump(dir);
    rows.retain(|(cf, _, _)| *cf != ao_su::store::cf::CHECKPOINTS);
    rows
}

/// Asserts what an import of `every_era` reports: its summary counts, the legacy anomalies
/// it kept (the duplicate and the missing nonce) and the reference SU as the store's signer.
pub fn assert_every_era_report(stdout: &str, eras: &EveryEra, reference: &Reference) {
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
    for anomaly in [
        "nonce 3: duplicate nonce 3 (copy 1)",
        "nonce 6: missing nonces 5..5",
    ] {
        assert!(
            stdout.contains(&format!("process {} {anomaly}", eras.legacy)),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("store signer: {}", reference.wallet.address_b64())),
        "{stdout}"
    );
}

/// Asserts two stores hold the same rows, naming the first that differs.
pub fn assert_same_rows(found: &[DumpRow], expected: &[DumpRow]) {
    for (found, expected) in found.iter().zip(expected) {
        assert_eq!(found, expected, "first differing row, CF {}", expected.0);
    }
    assert_eq!(found.len(), expected.len(), "row counts differ");
}

/// Runs `su <args>` into `dir` `runs` times, each SIGKILLed at a random point within 10% to
/// 60% of `whole` (the time a whole import takes here, so the kills land mid-way whatever the
/// machine's speed); returns how many were killed before they finished.
pub fn killed_runs(dir: &Path, args: &[&str], whole: Duration, runs: usize) -> usize {
    let whole = whole.as_millis() as u64;
    let mut seed = now_ms();
    let mut kills = 0;
    for _ in 0..runs {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(whole / 10 + (seed >> 33) % (whole / 2).max(1));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_su"))
            .args(args)
            .env_clear()
            .env("SU_DATA_DIR", dir)
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
    kills
}

/// The number after `after` in an import summary.
pub fn summary_number(stdout: &str, after: &str) -> u64 {
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
