//! Interop with gen-items, an independent Node client built on @dha-team/arbundles (the library
//! aoconnect uses). Direction 1: su parses and verifies what arbundles signs. Direction 2:
//! gen-items' own checker verifies what su's wallet signs. Direction 3: the real `su serve`
//! schedules gen-items' Process and Messages, and the stored Assignments verify in Node.
//! Needs `GEN_ITEMS_DIR` (an installed gen-items); `tools/interop.sh` sets it up.

use ao_su::ans104::{DataItem, b64, encode_bundle, verify::verify};
use ao_su::domain::{AssignmentFields, assignment_tags};
use ao_su::store::{OpenMode, Store};
use ao_su::wallet::{SigningSalt, Wallet};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{TestSu, request};

mod support;

const SKIP: &str = "skipped: GEN_ITEMS_DIR is unset; tools/interop.sh runs this test with the Node client installed";

fn gen_items_dir() -> Option<PathBuf> {
    match std::env::var_os("GEN_ITEMS_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            println!("{SKIP}");
            None
        }
    }
}

/// `node gen-items.mjs <args>`: asserts exit 0 and returns stdout.
fn node<S: AsRef<OsStr>>(tool: &Path, args: &[S]) -> String {
    let script = tool.join("gen-items.mjs");
    let output = Command::new("node").arg(script).args(args).output();
    let output = output.expect("run node (is Node.js installed?)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "gen-items failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    let parse = |line: &str| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect()
}

/// `gen --out <out> --messages 3 --quiet <extra>`; returns the manifest lines.
fn generate(tool: &Path, out: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args: Vec<&OsStr> = vec!["gen".as_ref(), "--out".as_ref(), out.as_os_str()];
    args.extend(
        ["--messages", "3", "--quiet"]
            .iter()
            .chain(extra)
            .map(OsStr::new),
    );
    node(tool, &args);
    json_lines(&std::fs::read_to_string(out.join("manifest.jsonl")).unwrap())
}

/// `verify [--bundle] <files>`: asserts exit 0 and `"valid":true` on every output line.
fn node_verify(tool: &Path, bundle: bool, files: &[PathBuf]) -> Vec<Value> {
    let mut args: Vec<&OsStr> = vec!["verify".as_ref()];
    if bundle {
        args.push("--bundle".as_ref());
    }
    args.extend(files.iter().map(|file| file.as_os_str()));
    let lines = json_lines(&node(tool, &args));
    for line in &lines {
        assert_eq!(line["valid"], true, "{line}");
    }
    lines
}

#[test]
fn su_parses_and_verifies_items_arbundles_signed() {
    let Some(tool) = gen_items_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wallet = tmp.path().join("node-default").join("wallet.json");
    for (salt, salt_length) in [("node-default", 478), ("digest", 32)] {
        let out = tmp.path().join(salt);
        let mut extra = vec!["--salt", salt, "--invalid"];
        if salt != "node-default" {
            extra.extend(["--wallet", wallet.to_str().unwrap()]); // reuse the first key
        }
        let manifest = generate(&tool, &out, &extra);
        let (mut valid, mut invalid) = (0, 0);
        for entry in &manifest {
            let name = entry["file"].as_str().unwrap();
            let bytes = std::fs::read(out.join(name)).unwrap();
            if name.starts_with("invalid-") {
                let accepted = DataItem::parse(&bytes).is_ok_and(|item| verify(&item).is_ok());
                assert!(!accepted, "{salt}: su accepted the broken item {name}");
                invalid += 1;
                continue;
            }
            assert!(matches!(
                entry["type"].as_str(),
                Some("Process" | "Message")
            ));
            assert_eq!(entry["salt_length"], salt_length, "{entry}");
            let item = DataItem::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            verify(&item).unwrap_or_else(|e| panic!("{salt}: {name}: {e}"));
            assert_eq!(b64::encode(&item.id()), entry["id"].as_str().unwrap());
            assert_eq!(
                item.to_bytes(),
                bytes,
                "{name} does not re-encode byte for byte"
            );
            valid += 1;
        }
        let bins = std::fs::read_dir(&out).unwrap().map(|f| f.unwrap().path());
        let bins = bins
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .count();
        assert_eq!(
            bins,
            manifest.len(),
            "{salt}: every .bin file is in the manifest"
        );
        assert_eq!(valid, 4, "{salt}: one Process and three Messages");
        assert!(
            invalid >= 5,
            "{salt}: expected the five broken kinds, got {invalid}"
        );
        println!("direction 1 ({salt}): {valid} items verified, {invalid} broken items rejected");
    }
}

#[test]
fn gen_items_verifies_assignments_su_signed() {
    let Some(tool) = gen_items_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let jwk = Wallet::generate().unwrap();
    let address = b64::encode(&Wallet::from_jwk(&jwk, SigningSalt::Max).unwrap().address());
    let (mut files, mut signed) = (Vec::new(), Vec::new());
    for (salt, salt_length) in [(SigningSalt::Digest, 32), (SigningSalt::Max, 478)] {
        let wallet = Wallet::from_jwk(&jwk, salt).unwrap();
        for nonce in 0..2u64 {
            let fields = AssignmentFields {
                process: [7; 32],
                nonce,
                hash_chain: [nonce as u8; 32],
                block_height: 1_736_676,
                timestamp: 1_755_708_950_818 + nonce,
                message: (nonce > 0).then_some([9; 32]),
                exclude: vec![],
            };
            let draft = wallet.draft(assignment_tags(&fields), vec![]);
            let (bytes, id) = wallet.sign(&draft).unwrap();
            let path = tmp
                .path()
                .join(format!("assignment-{salt_length}-{nonce}.bin"));
            std::fs::write(&path, &bytes).unwrap();
            files.push(path);
            signed.push((bytes, id, salt_length));
        }
    }
    let lines = node_verify(&tool, false, &files);
    assert_eq!(lines.len(), files.len());
    for (line, (_, id, salt_length)) in lines.iter().zip(&signed) {
        assert_eq!(line["id"], b64::encode(id), "{line}");
        assert_eq!(line["salt_length"], *salt_length, "{line}");
        assert_eq!(line["owner_address"], address.as_str(), "{line}");
    }
    // One item of each salt in an ANS-104 bundle.
    let (first, last) = (&signed[0], &signed[signed.len() - 1]);
    let bundle = encode_bundle(&[(&first.0, first.1), (&last.0, last.1)]);
    let path = tmp.path().join("bundle.bin");
    std::fs::write(&path, bundle).unwrap();
    let lines = node_verify(&tool, true, &[path]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], b64::encode(&first.1));
    assert_eq!(lines[1]["id"], b64::encode(&last.1));
    println!("direction 2: 4 assignments (salts 32, 478) and a bundle of 2 verified");
}

/// POST / with an octet-stream body; returns (status, body).
fn post(su: &TestSu, body: &[u8]) -> (u16, String) {
    let content_type = [("Content-Type", "application/octet-stream")];
    let (status, body, _) = request(su.port, "POST", "/", body, &content_type);
    (status, String::from_utf8(body).expect("UTF-8 response"))
}

#[test]
fn su_schedules_gen_items_and_its_assignments_verify() {
    let Some(tool) = gen_items_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut su = TestSu::start(&data, &[]);
    let scheduler = data.join("wallet.json"); // created by su at start-up
    let out = tmp.path().join("items");
    let extra = ["--scheduler-wallet", scheduler.to_str().unwrap()];
    let mut manifest = generate(&tool, &out, &extra);
    manifest.sort_by_key(|line| line["type"] != "Process"); // stable: Process, then Messages
    assert_eq!(manifest[0]["type"], "Process");
    let pid = manifest[0]["id"].as_str().unwrap().to_string();

    let mut last_timestamp = 0;
    for line in &manifest {
        let bytes = std::fs::read(out.join(line["file"].as_str().unwrap())).unwrap();
        let (status, body) = post(&su, &bytes);
        assert_eq!(status, 200, "{}: {body}", line["file"]);
        let reply: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(reply.as_object().unwrap().len(), 2, "{body}");
        assert_eq!(reply["id"], line["id"], "{body}");
        let timestamp = reply["timestamp"].as_u64().expect("timestamp");
        assert!(timestamp > last_timestamp, "{body}");
        last_timestamp = timestamp;
    }
    assert_eq!(su.stop(), Some(0), "su exits cleanly on SIGTERM");

    let su_address = b64::encode(
        &Wallet::load(&scheduler, SigningSalt::Max)
            .unwrap()
            .address(),
    );
    let store = Store::open(&data, OpenMode::ReadOnly).unwrap();
    let process = b64::decode_id(&pid).unwrap();
    let mut files = Vec::new();
    for (nonce, line) in manifest.iter().enumerate() {
        let record = store.entry(&process, nonce as u64).unwrap().expect("entry");
        assert_eq!(line["id"], b64::encode(&record.message_id));
        let bytes = store.item(&record.assignment_id).unwrap().expect("item");
        let path = tmp.path().join(format!("assignment-{nonce}.bin"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    let next = store.entry(&process, manifest.len() as u64).unwrap();
    assert!(next.is_none(), "only the posted items are scheduled");
    let lines = node_verify(&tool, false, &files);
    assert_eq!(lines.len(), files.len());
    for (nonce, (line, item)) in lines.iter().zip(&manifest).enumerate() {
        assert_eq!(line["owner_address"], su_address.as_str(), "{line}");
        let tags = line["tags"].as_array().unwrap();
        let tag = |name: &str| {
            tags.iter()
                .find(|t| t["name"] == name)
                .map(|t| t["value"].clone())
        };
        assert_eq!(tag("Type"), Some("Assignment".into()), "{line}");
        assert_eq!(tag("Process"), Some(pid.as_str().into()), "{line}");
        assert_eq!(tag("Nonce"), Some(nonce.to_string().into()), "{line}");
        if nonce > 0 {
            assert_eq!(tag("Message"), Some(item["id"].clone()), "{line}");
        }
    }
    println!(
        "direction 3: su scheduled {} items; gen-items verified all {} assignments (salt {})",
        manifest.len(),
        lines.len(),
        lines[0]["salt_length"]
    );
}
