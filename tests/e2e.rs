//! End-to-end: the real `su` binary over HTTP. Spawn, message, duplicates, dedupe, every
//! validation error (status, JSON, nothing stored), concurrency, and SIGKILL crash cycles.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use support::{Client, SuCommand, TestSu, edges, json_field, request, su_verify, tag};

#[test]
fn spawn_message_duplicates_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();

    let (process, pid) = client.process();
    let (status, body) = su.post("/", &process);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_field(&body, "id"), pid.as_str());
    assert!(json_field(&body, "timestamp").is_u64());
    assert!(
        body.starts_with("{\"id\":"),
        "keys are alphabetical: {body}"
    );

    // /latest of a fresh process is its process node (DECISIONS 1).
    let (status, body) = su.get(&format!("/{pid}/latest"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"]["id"],
        pid.as_str()
    );

    let (message, mid) = client.message(&pid, "1 + 1");
    let (status, body) = su.post("/", &message);
    assert_eq!(status, 200, "{body}");
    let first_timestamp = json_field(&body, "timestamp");

    // Idempotent re-POST: same id and timestamp, nothing new scheduled (DECISIONS 4).
    let (status, body) = su.post("/", &message);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_field(&body, "timestamp"), first_timestamp);
    let (status, _) = su.post("/", &process);
    assert_eq!(status, 200);

    let all = edges(&su, &pid);
    assert_eq!(all.len(), 2);
    assert_eq!(tag(&all[0]["node"], "Nonce"), "0");
    assert!(
        all[0]["node"]["assignment"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "Message")
    );
    assert_eq!(tag(&all[1]["node"], "Nonce"), "1");
    assert_eq!(tag(&all[1]["node"], "Message"), mid);
    assert_eq!(tag(&all[1]["node"], "Block-Height"), "000000000000");
    assert_eq!(all[1]["node"]["message"]["data"], "1 + 1");
    assert_eq!(all[1]["cursor"], "1");

    // Reads by message id, by assignment id, without process-id, with proc-id.
    let assignment_id = all[1]["node"]["assignment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/{mid}?process-id={pid}"),
        format!("/{assignment_id}?proc-id={pid}"),
        format!("/{mid}"),
    ] {
        let (status, body) = su.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"]["id"],
            mid.as_str()
        );
    }
    let (status, body) = su.get(&format!("/{pid}/latest"));
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"]["id"],
        mid.as_str()
    );
    // Scoped lookups never answer with another process's entry (DECISIONS 10).
    let (other_process, other_pid) = client.process();
    assert_eq!(su.post("/", &other_process).0, 200);
    let (status, body) = su.get(&format!("/{mid}?process-id={other_pid}"));
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"Message or Process not found"}"#)
    );
    let (status, body) = su.get(&format!("/processes/{pid}"));
    assert_eq!(status, 200);
    assert!(
        body.starts_with(&format!(
            "{{\"process_id\":\"{pid}\",\"block\":\"000000000000\""
        )),
        "{body}"
    );
    let (status, body) = su.get("/timestamp");
    assert_eq!(status, 200);
    assert!(
        body.starts_with("{\"block_height\":\"000000000000\",\"timestamp\":\""),
        "{body}"
    );
    let (status, body, head) =
        request(su.port, "GET", "/", &[], &[("Origin", "https://x.example")]);
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("{\"address\":")
    );
    assert!(
        head.to_lowercase()
            .contains("access-control-allow-origin: *")
    );
    let (status, _) = su.get("/health");
    assert_eq!(status, 200);
    let (status, body) = su.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("su_http_requests_total"));

    // Timestamp paging from the process cursor skips the process node.
    let cursor = all[0]["cursor"].as_str().unwrap().to_string();
    let (_, body) = su.get(&format!("/{pid}?from={cursor}"));
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["page_info"]["has_next_page"], false);
    drop(su);
    let (ok, output) = su_verify(dir.path());
    assert!(ok, "{output}");
}

#[test]
fn pushed_messages_are_deduplicated_across_signers() {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let (client, other) = (Client::new(), Client::new());
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    let target = ao_su::ans104::b64::decode_id(&pid).unwrap();
    let tags = [
        ("Data-Protocol", "ao"),
        ("Type", "Message"),
        ("From-Process", "abc"),
        ("Pushed-For", "x"),
    ];
    let (first, _) = client.item(Some(target), &tags, b"same");
    let (status, body) = su.post("/", &first);
    assert_eq!(status, 200, "{body}");
    // Same target, anchor and data, tags reordered, another signer: the same message.
    let reordered = [
        ("Type", "Message"),
        ("Data-Protocol", "ao"),
        ("From-Process", "abc"),
    ];
    let first_item = ao_su::ans104::DataItem::parse(&first).unwrap();
    let draft = ao_su::ans104::ItemDraft {
        signature_type: ao_su::ans104::SignatureType::ARWEAVE,
        owner: other.wallet.owner().to_vec(),
        target: Some(target),
        anchor: Some(first_item.anchor.unwrap().try_into().unwrap()),
        tags: reordered
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        data: b"same".to_vec(),
    };
    let (repeat, _) = other.wallet.sign(&draft).unwrap();
    let (status, body) = su.post("/", &repeat);
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"error":"MessageExists(\"Deep hash already exists\")"}"#
        )
    );
    // The dedupe hash covers the anchor: a fresh anchor makes it a different message.
    let (second, _) = other.item(Some(target), &reordered, b"same");
    let (status, _) = su.post("/", &second);
    assert_eq!(status, 200, "a different anchor is a different message");
    assert_eq!(edges(&su, &pid).len(), 3);
}

#[test]
fn every_validation_error_is_json_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    let target = ao_su::ans104::b64::decode_id(&pid).unwrap();
    let (good, _) = client.message(&pid, "x");
    let mut bad_signature = good.clone();
    bad_signature[10] ^= 1;
    let mut tampered = good.clone();
    tampered.push(b'!');
    let mut bad_flag = good.clone();
    bad_flag[1026] = 2;
    let item = |tags: &[(&str, &str)], target: Option<[u8; 32]>| client.item(target, tags, b"d").0;
    let unknown = Client::new().process().1;
    let unknown_target = ao_su::ans104::b64::decode_id(&unknown).unwrap();
    let builder = |reason: &str| {
        format!(
            r#"{{"error":"error in builder: BuilderError(\"Byte error in builder: ByteError(\\\"{reason}\\\")\")"}}"#
        )
    };
    let cases: Vec<(&str, Vec<u8>, u16, String)> = vec![
        (
            "/",
            vec![1, 0, 3],
            400,
            builder("Buffer too short for signature and public key"),
        ),
        (
            "/",
            good[..700].to_vec(),
            400,
            builder("Buffer too short for signature and public key"),
        ),
        (
            "/",
            bad_signature,
            400,
            builder("Signature verification failed"),
        ),
        ("/", tampered, 400, builder("Signature verification failed")),
        ("/", bad_flag, 400, builder("target bytes error")),
        (
            "/",
            item(&[("Data-Protocol", "ao")], Some(target)),
            400,
            r#"{"error":"Type tag not present"}"#.into(),
        ),
        (
            "/",
            item(
                &[("Type", "Assignment"), ("Data-Protocol", "ao")],
                Some(target),
            ),
            400,
            r#"{"error":"Unsupported Type tag value"}"#.into(),
        ),
        (
            "/",
            item(&[("Type", "Message")], Some(target)),
            400,
            r#"{"error":"Data-Protocol tag not present"}"#.into(),
        ),
        (
            "/",
            item(
                &[
                    ("Type", "Message"),
                    ("Data-Protocol", "ao"),
                    ("Ref+link", "x"),
                ],
                Some(target),
            ),
            400,
            r#"{"error":"Tag Ref+link cannot contain +link"}"#.into(),
        ),
        (
            "/",
            item(
                &[
                    ("Type", "Process"),
                    ("Data-Protocol", "ao"),
                    ("Module", "m"),
                ],
                None,
            ),
            400,
            r#"{"error":"Required Module and Scheduler tags for Process type not present"}"#.into(),
        ),
        (
            "/",
            item(
                &[("Type", "Message"), ("Data-Protocol", "ao")],
                Some(unknown_target),
            ),
            400,
            r#"{"error":"NotFound(\"Process not found\")"}"#.into(),
        ),
        (
            "/",
            item(&[("Type", "Message"), ("Data-Protocol", "ao")], None),
            400,
            r#"{"error":"Length mismatch 32 - "}"#.into(),
        ),
        (
            &format!("/?process-id={pid}").leak()[..],
            good.clone(),
            400,
            r#"{"error":"If sending assign or process-id, you must send both."}"#.into(),
        ),
        (
            &format!("/?process-id={unknown}&assign={pid}").leak()[..],
            vec![],
            400,
            r#"{"error":"NotFound(\"Process not found\")"}"#.into(),
        ),
        (
            &format!("/?process-id={pid}&assign=short").leak()[..],
            vec![],
            400,
            r#"{"error":"error in builder: BuilderError(\"assign param must be 43 characters\")"}"#
                .into(),
        ),
    ];
    for (path, body, status, expected) in &cases {
        let (got_status, got_body) = su.post(path, body);
        assert_eq!(
            (got_status, got_body.as_str()),
            (*status, expected.as_str()),
            "POST {path}"
        );
    }
    let (status, body) = su.post("/", &vec![0u8; 10 * 1024 * 1024 + 1]);
    assert_eq!(status, 413, "{body}");
    assert!(body.starts_with("{\"error\":"));
    for (path, status, expected) in [
        ("/nope", 400, r#"{"error":"Message or Process not found"}"#),
        (
            "/4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo",
            400,
            r#"{"error":"Message or Process not found"}"#,
        ),
        (
            "/processes/4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo",
            400,
            r#"{"error":"NotFound(\"Process not found\")"}"#,
        ),
        (
            "/4QTyVpvWlwjfsYAvkTSIWjp5XVGf-Rg_Co8K1lPNbvo/latest",
            400,
            r#"{"error":"Latest message not available"}"#,
        ),
        ("/a/b/c", 404, r#"{"error":"Not found"}"#),
    ] {
        assert_eq!(su.get(path), (status, expected.to_string()), "GET {path}");
    }
    for query in ["limit=0", "limit=-1", "limit=abc", "from=x", "to-nonce=y"] {
        let (status, body) = su.get(&format!("/{pid}?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body.starts_with("{\"error\":\"invalid query parameter"),
            "{body}"
        );
    }
    assert_eq!(
        edges(&su, &pid).len(),
        1,
        "nothing was stored by a rejected request"
    );
    assert_eq!(su.post("/", &good).0, 200);
    assert_eq!(
        tag(&edges(&su, &pid)[1]["node"], "Nonce"),
        "1",
        "no nonce was consumed"
    );
}

/// Writers posting messages round-robin over `pids` until stopped, over fresh connections,
/// recording every acknowledged (process, message id). Failures (a killed server) end a writer.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    writers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(
        port: u16,
        client: &Arc<Client>,
        pids: &[String],
        label: &str,
        per_writer: usize,
    ) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..8)
            .map(|writer| {
                let (client, pids, acked, stop) = (client.clone(), pids.to_vec(), acked.clone(), stop.clone());
                let label = label.to_string();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    for n in 0..per_writer {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        let pid = &pids[(writer + n) % pids.len()];
                        let (message, id) = client.message(pid, &format!("{label}-{writer}-{n}"));
                        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
                        drop(stream.set_read_timeout(Some(std::time::Duration::from_secs(20))));
                        let head = format!("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", message.len());
                        if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&message)).is_err() {
                            return;
                        }
                        let mut response = Vec::new();
                        let _ = stream.read_to_end(&mut response);
                        if response.starts_with(b"HTTP/1.1 200") {
                            acked.lock().unwrap().push((pid.clone(), id));
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            acked,
            writers,
        }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn stop(self) -> Vec<(String, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in self.writers {
            writer.join().unwrap();
        }
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

fn concurrent_writes(n_processes: usize, writers: usize, per_writer: usize) {
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Arc::new(Client::new());
    let pids: Vec<String> = (0..n_processes)
        .map(|_| {
            let (process, pid) = client.process();
            assert_eq!(su.post("/", &process).0, 200);
            pid
        })
        .collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let port = su.port;
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let (client, pids, acked) = (client.clone(), pids.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in 0..per_writer {
                    let pid = &pids[(writer + n) % pids.len()];
                    let (message, id) = client.message(pid, &format!("{writer}-{n}"));
                    let (status, body, _) = request(port, "POST", "/", &message, &[]);
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    acked.lock().unwrap().push((pid.clone(), id));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), writers * per_writer);
    let mut seen = HashSet::new();
    for pid in &pids {
        let all = edges(&su, pid);
        for (nonce, edge) in all.iter().enumerate() {
            assert_eq!(
                tag(&edge["node"], "Nonce"),
                nonce.to_string(),
                "contiguous nonces"
            );
            if nonce > 0 {
                assert!(
                    seen.insert(edge["node"]["message"]["id"].as_str().unwrap().to_string()),
                    "duplicate"
                );
            }
        }
    }
    let acked_ids: HashSet<String> = acked.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        seen, acked_ids,
        "every acknowledged id appears exactly once"
    );
    drop(su);
    let (ok, output) = su_verify(dir.path());
    assert!(ok, "{output}");
}

#[test]
fn sixty_four_writers_on_one_process() {
    concurrent_writes(1, 64, 3);
}

#[test]
fn sixty_four_writers_on_sixteen_processes() {
    concurrent_writes(16, 64, 3);
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let client = Arc::new(Client::new());
    let mut pids = Vec::new();
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut seed = 0x9e37_79b9_u64;
    for cycle in 0..10 {
        let mut su = TestSu::start(dir.path(), &[]);
        if pids.is_empty() {
            for _ in 0..3 {
                let (process, pid) = client.process();
                assert_eq!(su.post("/", &process).0, 200);
                pids.push(pid);
            }
        }
        // Everything acknowledged before is still there, once.
        let mut present = HashSet::new();
        for pid in &pids {
            for (nonce, edge) in edges(&su, pid).iter().enumerate() {
                assert_eq!(
                    tag(&edge["node"], "Nonce"),
                    nonce.to_string(),
                    "cycle {cycle}: gap"
                );
                if let Some(id) = edge["node"]["message"]["id"].as_str() {
                    assert!(
                        present.insert(id.to_string()) || nonce == 0,
                        "cycle {cycle}: duplicate {id}"
                    );
                }
            }
        }
        for (_, id) in &acked {
            assert!(
                present.contains(id),
                "cycle {cycle}: acknowledged {id} lost"
            );
        }
        let load = Load::start(su.port, &client, &pids, &cycle.to_string(), 200);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(200 + seed % 800));
        su.kill();
        acked.extend(load.stop());
        let (ok, output) = su_verify(dir.path());
        assert!(ok, "cycle {cycle}: {output}");
    }
    assert!(
        acked.len() > 20,
        "the load acknowledged only {} writes",
        acked.len()
    );
}

#[test]
fn sigterm_under_load_exits_zero_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let client = Arc::new(Client::new());
    let mut su = TestSu::start(dir.path(), &[("SU_SHUTDOWN_SECS", "5")]);
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    let load = Load::start(su.port, &client, std::slice::from_ref(&pid), "term", 500);
    while load.acked_count() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let sent_at = std::time::Instant::now();
    assert_eq!(su.stop(), Some(0), "graceful shutdown exits 0");
    assert!(
        sent_at.elapsed() < std::time::Duration::from_secs(12),
        "shutdown took {:?}",
        sent_at.elapsed()
    );
    let acked = load.stop();
    let su = TestSu::start(dir.path(), &[]);
    let present: HashSet<String> = edges(&su, &pid)
        .iter()
        .skip(1)
        .map(|edge| edge["node"]["message"]["id"].as_str().unwrap().to_string())
        .collect();
    for (_, id) in &acked {
        assert!(present.contains(id), "acknowledged {id} lost in shutdown");
    }
    drop(su);
    let (ok, output) = su_verify(dir.path());
    assert!(ok, "{output}");
}

/// `su verify` must fail on a damaged store: a missing item, a broken chain, a missing index.
#[test]
fn verify_detects_damage() {
    use ao_su::store::cf;
    let dir = tempfile::tempdir().unwrap();
    let su = TestSu::start(dir.path(), &[]);
    let client = Client::new();
    let (process, pid) = client.process();
    assert_eq!(su.post("/", &process).0, 200);
    for n in 0..3 {
        assert_eq!(su.post("/", &client.message(&pid, &n.to_string()).0).0, 200);
    }
    drop(su);
    let data = dir.path();
    assert!(su_verify(data).0);
    let raw_pid = ao_su::ans104::b64::decode_id(&pid).unwrap();
    let damage = |what: &str, change: &dyn Fn(&rocksdb::DB)| {
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(data).unwrap() {
            let entry = entry.unwrap();
            // Only the store's files: the admin socket of the killed server is not one.
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
            }
        }
        {
            let mut options = rocksdb::Options::default();
            options.create_missing_column_families(true);
            let db = rocksdb::DB::open_cf(&options, copy.path(), cf::ALL).unwrap();
            change(&db);
        }
        let (ok, output) = su_verify(copy.path());
        assert!(!ok, "{what}: verify passed on a damaged store:\n{output}");
        assert!(
            output.contains("nonce 2") || output.contains("index"),
            "{what}: {output}"
        );
    };
    let entry_key = ao_su::store::keys::entry(&raw_pid, 2);
    damage("missing assignment bytes", &|db| {
        let entries = db.cf_handle(cf::ENTRIES).unwrap();
        let record = ao_su::store::records::EntryRecord::decode(
            &db.get_cf(entries, entry_key).unwrap().unwrap(),
        )
        .unwrap();
        db.delete_cf(db.cf_handle(cf::ITEMS).unwrap(), record.assignment_id)
            .unwrap();
    });
    damage("broken hash chain", &|db| {
        let entries = db.cf_handle(cf::ENTRIES).unwrap();
        let mut stored = ao_su::store::records::StoredEntry::decode(
            &db.get_cf(entries, entry_key).unwrap().unwrap(),
        )
        .unwrap();
        stored.record.hash_chain[0] ^= 1;
        db.put_cf(entries, entry_key, stored.encode()).unwrap();
    });
    damage("missing index key", &|db| {
        let entries = db.cf_handle(cf::ENTRIES).unwrap();
        let record = ao_su::store::records::EntryRecord::decode(
            &db.get_cf(entries, entry_key).unwrap().unwrap(),
        )
        .unwrap();
        let key = ao_su::store::keys::by_time(&raw_pid, record.timestamp, 2);
        db.delete_cf(db.cf_handle(cf::BY_TIME).unwrap(), key)
            .unwrap();
    });
    damage("nonce gap", &|db| {
        db.delete_cf(
            db.cf_handle(cf::ENTRIES).unwrap(),
            ao_su::store::keys::entry(&raw_pid, 1),
        )
        .unwrap();
    });
}

#[test]
fn preflight_and_stale_block_height_gate() {
    let dir = tempfile::tempdir().unwrap();
    // Offline with a staleness bound: no height was ever fetched, so writes pause with 503.
    let su = TestSu::start(dir.path(), &[("MAX_BLOCK_HEIGHT_AGE_SECS", "5")]);
    let (status, body, head) = request(
        su.port,
        "OPTIONS",
        "/",
        &[],
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let head = head.to_lowercase();
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-allow-methods: post"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );
    let (process, _) = Client::new().process();
    let (status, body, head) = request(su.port, "POST", "/", &process, &[]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8(body).unwrap().starts_with("{\"error\":"));
    assert!(head.to_lowercase().contains("retry-after: 1"));
}

#[test]
fn tells_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let data = dir.path().join("data");
    let mut su = TestSu::start(&data, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);
    let mut buffer = [0u8; 64];
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"READY=1");
    assert_eq!(su.get("/health").0, 200, "ready means serving");
    assert_eq!(su.stop(), Some(0));
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"STOPPING=1");
}

#[test]
fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let su = SuCommand::new(dir.path())
        .env("SU_LOG_FORMAT", "json")
        .serve();
    let log = su.log();
    for line in &log {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if value["fields"]["message"] == "serving" {
            assert!(
                value["fields"]["address"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:")
            );
            return;
        }
    }
    panic!("no JSON 'serving' line in {log:?}");
}

#[test]
fn bad_configuration_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = SuCommand::new(dir.path())
        .args(["serve", "--port", "0"])
        .env("SU_SIGNING_SALT", "64")
        .output();
    assert_eq!(output.code, Some(2));
    let stderr = output.stderr;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("SU_SIGNING_SALT=\"64\""), "{stderr}");
}

/// Marks the child run of `launched_su_sees_only_what_the_test_sets`.
const HERMETIC_CHILD: &str = "SU_TEST_HERMETIC_CHILD";
/// Settings that each stop `su` (or keep it from logging `serving`) if they reach it.
const POISON_ENV: [(&str, &str); 5] = [
    ("SU_SIGNING_SALT", "64"),
    ("MODE", "router"),
    ("SU_LOG", "off"),
    ("SU_PORT", "1"),
    ("SU_DATA_DIR", "/nonexistent/su-data"),
];
const POISON_DOT_ENV: &str = "SU_SIGNING_SALT=64\nMODE=router\nSU_LOG=off\n";

/// The launcher is hermetic: a test process whose environment and working directory (with a
/// `.env`) would each stop `su` still starts it and runs one-shot commands fine.
#[test]
fn launched_su_sees_only_what_the_test_sets() {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os(HERMETIC_CHILD).is_some() {
        let su = TestSu::start(dir.path(), &[]);
        assert_eq!(su.get("/health").0, 200);
        let (process, _) = Client::new().process();
        assert_eq!(su.post("/", &process).0, 200);
        drop(su);
        let (ok, output) = su_verify(dir.path());
        assert!(ok, "{output}");
        return;
    }
    // Controls: the poison does stop `su` when it reaches it, through the variables or `.env`.
    let serve = || SuCommand::new(dir.path()).args(["serve", "--port", "0"]);
    let output = serve().envs(&POISON_ENV).output();
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    let output = serve().dot_env(POISON_DOT_ENV).output();
    assert_eq!(output.code, Some(2), "{}", output.stderr);
    // This very test again, in a poisoned child test process.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join(".env"), POISON_DOT_ENV).unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "launched_su_sees_only_what_the_test_sets",
            "--exact",
            "--nocapture",
        ])
        .env(HERMETIC_CHILD, "1")
        .envs(POISON_ENV)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}
