//! `su-import-bench`: prepares a reference-layout Postgres database for the import benchmark
//! (tools/import-bench.sh) and measures this machine's RSA-4096 verification rate.
//!
//! `prepare` creates the database `NAME` (unless it already holds the wanted rows) with the
//! reference's schema (tests/fixtures/reference_postgres) and `--processes` AOP-6 processes
//! of `--messages` messages in all, era M4, hash chains correct. With `--signed` the client
//! messages and the SU's assignments carry real RSA-4096 signatures (the wrappers, which the
//! importer does not keep, carry placeholders); the rows are cached under
//! `~/.cache/ao-su-import-bench`, since signing costs about 3 ms per signature and core.
//! Without it every signature is a placeholder (for `--skip-signatures` runs).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line report

use ao_su::ans104::{DataItem, ItemDraft, b64, encode_bundle, verify};
use ao_su::domain::{self, Id};
use ao_su::wallet::{SigningSalt, Wallet};
use argh::FromArgs;
use postgres::{Client, NoTls};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Import benchmark helper.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Prepare(Prepare),
    RsaRate(RsaRate),
}

/// Create and fill a benchmark database.
#[derive(FromArgs)]
#[argh(subcommand, name = "prepare")]
struct Prepare {
    /// server URL without a database, e.g. postgres://postgres@127.0.0.1:5432
    #[argh(
        option,
        default = "String::from(\"postgres://postgres@127.0.0.1:5432\")"
    )]
    server: String,
    /// database name
    #[argh(option)]
    name: String,
    /// messages in all
    #[argh(option)]
    messages: u64,
    /// processes
    #[argh(option, default = "10")]
    processes: u64,
    /// real RSA-4096 signatures (cached)
    #[argh(switch)]
    signed: bool,
    /// signing threads
    #[argh(option, default = "2")]
    threads: usize,
}

/// Measure RSA-4096 (PSS, salt 478) verifications per second on every core.
#[derive(FromArgs)]
#[argh(subcommand, name = "rsa-rate")]
struct RsaRate {
    /// seconds to measure
    #[argh(option, default = "5")]
    seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args: Args = argh::from_env();
    match args.command {
        Command::Prepare(prepare) => run_prepare(&prepare),
        Command::RsaRate(rate) => {
            run_rsa_rate(&rate);
            Ok(())
        }
    }
}

fn run_rsa_rate(args: &RsaRate) {
    let wallet = Wallet::from_jwk(&Wallet::generate().unwrap(), SigningSalt::Max).unwrap();
    let (item, _) = wallet.sign(&wallet.draft(vec![], vec![])).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0u64;
                    while Instant::now() < deadline {
                        let parsed = DataItem::parse(&item).unwrap();
                        verify::verify(&parsed).unwrap();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("rsa4096_verify_per_s={rate:.0} cores={cores}");
}

fn migrations() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_postgres");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// Signs for real or with placeholders.
struct Signer {
    wallet: Wallet,
    real: bool,
}

impl Signer {
    fn sign(&self, draft: &ItemDraft, seed: u64, real: bool) -> (Vec<u8>, Id) {
        if real && self.real {
            self.wallet.sign(draft).unwrap()
        } else {
            draft.finish_with_placeholder(seed)
        }
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 15) as usize] as char);
    }
}

/// One process's rows in COPY text format: the process line, then its message lines.
fn process_rows(
    su: &Signer,
    client: &Signer,
    index: u64,
    messages: u64,
    base_ts: u64,
    process_out: &mut dyn Write,
    message_out: &mut dyn Write,
) {
    let seed = |n: u64| (index << 40) | n;
    let mut process_tags = tags(&[
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Process"),
        ("Module", "Isk_GYo30Tyf5nLbVI6zEJIfFpiXQJd58IKcIkTu4no"),
    ]);
    process_tags.push(("Bench-Index".into(), index.to_string()));
    let (process, pid) = client.sign(
        &client.wallet.draft(process_tags, b"-- bench".to_vec()),
        seed(0),
        true,
    );
    let process_text = b64::encode(&pid);
    let mut chain = domain::seed_hash_chain(&pid);
    let mut ts = base_ts;
    let assignment = |nonce: u64, message: Option<&Id>, chain: &[u8; 32], ts: u64| {
        let mut t = tags(&[
            ("Process", &process_text),
            ("Epoch", "0"),
            ("Nonce", &nonce.to_string()),
            ("Hash-Chain", &b64::encode(chain)),
            ("Block-Height", "000001500000"),
            ("Timestamp", &ts.to_string()),
            ("Data-Protocol", "ao"),
            ("Type", "Assignment"),
            ("Variant", "ao.TN.1"),
        ]);
        if let Some(message) = message {
            t.push(("Message".into(), b64::encode(message)));
        }
        su.sign(
            &su.wallet.draft(t, Vec::new()),
            seed(1_000_000_000 + nonce),
            true,
        )
    };
    let wrapper = |items: &[(&[u8], Id)], nonce: u64| {
        let data = encode_bundle(items);
        let draft = su.wallet.draft(
            tags(&[("Bundle-Format", "binary"), ("Bundle-Version", "2.0.0")]),
            data,
        );
        su.sign(&draft, seed(2_000_000_000 + nonce), false).0
    };
    let (a0, a0id) = assignment(0, None, &chain, ts);
    let w0 = wrapper(&[(&a0, a0id), (&process, pid)], 0);
    let mut line = String::new();
    line.push_str(&process_text);
    line.push_str("\t{\"process\":null,\"assignment\":null}\t\\\\x");
    hex(&w0, &mut line);
    line.push_str(&format!("\t0\t0\t{}\t{ts}\n", b64::encode(&chain)));
    process_out.write_all(line.as_bytes()).unwrap();
    let mut previous = a0id;
    for nonce in 1..=messages {
        chain = domain::next_hash_chain(&previous, &chain);
        ts += 1;
        let mut draft = client.wallet.draft(
            tags(&[
                ("Data-Protocol", "ao"),
                ("Variant", "ao.TN.1"),
                ("Type", "Message"),
                ("Action", "Eval"),
            ]),
            format!("return {nonce}").into_bytes(),
        );
        draft.target = Some(pid);
        let (message, mid) = client.sign(&draft, seed(nonce), true);
        let (a, aid) = assignment(nonce, Some(&mid), &chain, ts);
        let w = wrapper(&[(&a, aid), (&message, mid)], nonce);
        line.clear();
        line.push_str(&process_text);
        line.push('\t');
        line.push_str(&b64::encode(&mid));
        line.push_str("\t{\"message\":null}\t0\t");
        line.push_str(&nonce.to_string());
        line.push('\t');
        line.push_str(&ts.to_string());
        line.push_str("\t\\\\x");
        hex(&w, &mut line);
        line.push('\t');
        line.push_str(&b64::encode(&chain));
        line.push('\t');
        line.push_str(&b64::encode(&aid));
        line.push('\n');
        message_out.write_all(line.as_bytes()).unwrap();
        previous = aid;
    }
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/ao-su-import-bench")
}

/// Writes the COPY files of the whole data set (in parallel, one process per task).
fn generate(args: &Prepare, processes_file: &PathBuf, messages_file: &PathBuf) {
    let su_jwk = Wallet::generate().unwrap();
    let client_jwk = Wallet::generate().unwrap();
    let per = args.messages / args.processes;
    let next = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let parts: Vec<(PathBuf, PathBuf)> = (0..args.threads)
        .map(|t| {
            (
                processes_file.with_extension(format!("part{t}")),
                messages_file.with_extension(format!("part{t}")),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for (processes_part, messages_part) in &parts {
            let (su_jwk, client_jwk, next) = (&su_jwk, &client_jwk, &next);
            scope.spawn(move || {
                let su = Signer {
                    wallet: Wallet::from_jwk(su_jwk, SigningSalt::Max).unwrap(),
                    real: args.signed,
                };
                let client = Signer {
                    wallet: Wallet::from_jwk(client_jwk, SigningSalt::Max).unwrap(),
                    real: args.signed,
                };
                let mut p = BufWriter::new(std::fs::File::create(processes_part).unwrap());
                let mut m = BufWriter::new(std::fs::File::create(messages_part).unwrap());
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if index >= args.processes {
                        break;
                    }
                    let ts = 1_700_000_000_000 + index * (per + 10) * 1000;
                    process_rows(&su, &client, index, per, ts, &mut p, &mut m);
                    eprintln!(
                        "generated process {} of {} ({:.0}s)",
                        index + 1,
                        args.processes,
                        started.elapsed().as_secs_f64()
                    );
                }
                p.flush().unwrap();
                m.flush().unwrap();
            });
        }
    });
    for (target, pick) in [(processes_file, 0usize), (messages_file, 1)] {
        let mut out = BufWriter::new(std::fs::File::create(target).unwrap());
        for part in &parts {
            let path = if pick == 0 { &part.0 } else { &part.1 };
            std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut out).unwrap();
            std::fs::remove_file(path).unwrap();
        }
        out.flush().unwrap();
    }
}

fn run_prepare(args: &Prepare) -> anyhow::Result<()> {
    let mut admin = Client::connect(&format!("{}/postgres", args.server), NoTls)?;
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&args.name],
        )?
        .is_some();
    if exists {
        let mut db = Client::connect(&format!("{}/{}", args.server, args.name), NoTls)?;
        let count: i64 = db
            .query_one("SELECT count(*) FROM messages", &[])
            .map(|row| row.get(0))
            .unwrap_or(-1);
        if count == (args.messages / args.processes * args.processes) as i64 {
            println!("database {} holds {count} messages already", args.name);
            return Ok(());
        }
        admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", args.name))?;
    }
    admin.batch_execute(&format!("CREATE DATABASE {}", args.name))?;
    let mut db = Client::connect(&format!("{}/{}", args.server, args.name), NoTls)?;
    for file in migrations() {
        db.batch_execute(&std::fs::read_to_string(file)?)?;
    }
    let kind = if args.signed { "signed" } else { "placeholder" };
    let stem = format!("{kind}-{}-{}", args.messages, args.processes);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir)?;
    let processes_file = dir.join(format!("{stem}.processes.copy"));
    let messages_file = dir.join(format!("{stem}.messages.copy"));
    if !(processes_file.exists() && messages_file.exists()) {
        generate(args, &processes_file, &messages_file);
    }
    let started = Instant::now();
    for (file, statement) in [
        (
            &processes_file,
            "COPY processes (process_id, process_data, bundle, epoch, nonce, hash_chain, timestamp) FROM STDIN",
        ),
        (
            &messages_file,
            "COPY messages (process_id, message_id, message_data, epoch, nonce, timestamp, bundle, hash_chain, assignment_id) FROM STDIN",
        ),
    ] {
        let mut writer = db.copy_in(statement)?;
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
        loop {
            let buffer = reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            writer.write_all(buffer)?;
            let n = buffer.len();
            reader.consume(n);
        }
        writer.finish()?;
    }
    db.batch_execute("ANALYZE")?;
    if !args.signed {
        // Placeholder rows are cheap to make again; only signed ones are worth the disk.
        std::fs::remove_file(&processes_file)?;
        std::fs::remove_file(&messages_file)?;
    }
    println!(
        "database {} loaded in {:.1}s",
        args.name,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
