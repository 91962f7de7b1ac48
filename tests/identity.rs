//! The SU's identity is its store's: it refuses a missing or different wallet for a store
//! that already has a signer, generates a wallet only for an empty store, and serves on under
//! the original address once the right wallet is back.

mod support;

use support::{Client, SuCommand, TestSu, edges, json_field};

fn serve_refusal(data_dir: &std::path::Path) -> String {
    let output = SuCommand::new(data_dir)
        .args(["serve", "--bind", "127.0.0.1", "--port", "0"])
        .output();
    assert!(!output.success(), "su serve started: {}", output.text());
    output.text()
}

#[test]
fn a_store_keeps_the_wallet_that_signed_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = Client::new();
    let (process, pid) = client.process();
    let address = {
        let mut su = TestSu::start(&data, &[]);
        let (_, body) = su.get("/");
        assert_eq!(su.post("/", &process).0, 200);
        su.stop();
        json_field(&body, "address").as_str().unwrap().to_string()
    };
    let wallet = data.join("wallet.json");
    let original = std::fs::read(&wallet).unwrap();

    // Removed: no new wallet is minted; the refusal names the file and the store's signer.
    std::fs::remove_file(&wallet).unwrap();
    let refusal = serve_refusal(&data);
    assert!(
        refusal.contains("wallet.json") && refusal.contains(&address),
        "{refusal}"
    );
    let error_lines: Vec<&str> = refusal.lines().filter(|l| l.starts_with("su: ")).collect();
    assert_eq!(error_lines.len(), 1, "one line: {refusal}");
    assert!(error_lines[0].contains(&address), "{refusal}");
    assert!(
        !wallet.exists(),
        "a wallet was generated for a non-empty store"
    );

    // Replaced by another wallet: refused, naming both addresses.
    let created = SuCommand::new(&data)
        .args(["wallet", "new"])
        .arg(&wallet)
        .output();
    assert!(created.success(), "{}", created.text());
    let other = created.stdout.trim().to_string();
    assert_ne!(other, address);
    let refusal = serve_refusal(&data);
    assert!(
        refusal.contains(&address) && refusal.contains(&other),
        "{refusal}"
    );

    // Restored: the same identity, and the schedule continues.
    std::fs::remove_file(&wallet).unwrap();
    std::fs::write(&wallet, original).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wallet, std::fs::Permissions::from_mode(0o600)).unwrap();
    let su = TestSu::start(&data, &[]);
    let (_, body) = su.get("/");
    assert_eq!(json_field(&body, "address").as_str().unwrap(), address);
    let (message, _) = client.message(&pid, "after the restore");
    assert_eq!(su.post("/", &message).0, 200);
    assert_eq!(edges(&su, &pid).len(), 2);
}
