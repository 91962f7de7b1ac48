//! `su-loadgen`: a bounded HTTP load generator for `su`, loopback only.
//! Pre-signs N unique Messages for M fresh Processes, posts them at concurrency C over
//! keep-alive connections, pages through every schedule, and reports throughput, latency
//! percentiles and the server's peak RSS (from /proc when `--server-pid` is given).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line report

mod bundler;
mod live;
mod router;
mod signed;

use ao_su::ans104::{ItemDraft, SignatureType, b64};
use ao_su::wallet::{SigningSalt, Wallet};
use argh::FromArgs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Load generator for su (loopback only, bounded in count and time).
#[derive(FromArgs)]
struct Args {
    /// base URL of the SU (must be a loopback address)
    #[argh(option, default = "String::from(\"http://127.0.0.1:9000\")")]
    url: String,
    /// number of processes to spawn
    #[argh(option, default = "1")]
    processes: usize,
    /// number of messages to post in total
    #[argh(option, default = "1000")]
    messages: usize,
    /// concurrent requests in flight
    #[argh(option, default = "8")]
    concurrency: usize,
    /// stop posting after this many seconds
    #[argh(option, default = "300")]
    max_seconds: u64,
    /// pid of the server, to report its peak RSS
    #[argh(option)]
    server_pid: Option<u32>,
    /// offered load in writes per second (0 = as fast as the concurrency allows)
    #[argh(option, default = "0.0")]
    rate: f64,
    /// bytes of data per message
    #[argh(option, default = "64")]
    data_size: usize,
    /// skip the read phase
    #[argh(switch)]
    no_reads: bool,
    /// page size of the read phase
    #[argh(option, default = "1000")]
    page_limit: usize,
    /// only read: page through this existing process and exit
    #[argh(option)]
    read_process: Option<String>,
    /// offline: fill the store in this data dir with synthetic entries, then exit
    #[argh(option)]
    prefill_dir: Option<std::path::PathBuf>,
    /// with --prefill-dir: real signatures and hash chains (`su verify` accepts the store)
    #[argh(switch)]
    prefill_signed: bool,
    /// signing threads of --prefill-signed, verifying threads of --verify-ceiling (default:
    /// one per core)
    #[argh(option, default = "0")]
    prefill_threads: usize,
    /// offline: verify the signatures of this many entries of --prefill-dir as a standby does,
    /// and report the rate (the ceiling a catch-up is measured against)
    #[argh(option)]
    verify_ceiling: Option<usize>,
    /// entries to prefill (spread over --processes processes)
    #[argh(option, default = "1_000_000")]
    prefill_entries: u64,
    /// only serve a fake bundler on this loopback port (outbox measurements), until killed
    #[argh(option)]
    fake_bundler: Option<u16>,
    /// the fake bundler's delay before every answer, ms
    #[argh(option, default = "50")]
    bundler_delay_ms: u64,
    /// the fake bundler answers 503 for this many seconds after its first request
    #[argh(option, default = "0")]
    bundler_outage_secs: u64,
    /// offline: fill a router's placement table in this data dir, then exit
    #[argh(option)]
    router_prefill: Option<std::path::PathBuf>,
    /// routes in the synthetic table (prefill and redirect phases)
    #[argh(option, default = "1_000_000")]
    router_table: u64,
    /// the SU URLs the synthetic routes point at, comma-separated
    #[argh(
        option,
        default = "String::from(\"http://127.0.0.1:9101,http://127.0.0.1:9102\")"
    )]
    router_sus: String,
    /// only measure redirects: this many GET /processes/{id} against --url (a router)
    #[argh(option)]
    router_redirects: Option<u64>,
    /// live schedule: open this many streams on one new process, post --messages one at a
    /// time, and report the acknowledgement-to-delivery time
    #[argh(option)]
    live_streams: Option<usize>,
    /// pause between the posts of --live-streams, ms
    #[argh(option, default = "20")]
    live_pause_ms: u64,
}

/// Writes synthetic schedules straight into a store (for scale benchmarks only: their
/// signatures are not real, so `su verify` rejects them).
fn prefill(dir: &std::path::Path, processes: usize, entries: u64) -> anyhow::Result<()> {
    use ao_su::store::records::{EntryKind, EntryRecord};
    use ao_su::store::{Commit, OpenMode, StagedEntry, Store};
    let store = Store::open(dir, OpenMode::ReadWrite)?;
    // A real SU's store records the wallet that signs it, and `su serve` generates one only
    // for an empty store: the prefill makes the store's wallet itself, as `su serve` would.
    let wallet_path = dir.join("wallet.json");
    if store.signer_address()?.is_none() {
        if !wallet_path.exists() {
            Wallet::write_new(&wallet_path, &Wallet::generate()?)?;
        }
        let wallet = Wallet::load(&wallet_path, SigningSalt::Digest)?;
        store.put_signer_address(&wallet.address())?;
    }
    let fake = |seed: u64, tags: Vec<(String, String)>| {
        let draft = ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: vec![3; 512],
            target: None,
            anchor: Some([9; 32]),
            tags,
            data: vec![],
        };
        draft.finish_with_placeholder(seed)
    };
    let per_process = entries / processes.max(1) as u64;
    let mut sequence = store.last_sequence()? + 1;
    let started = Instant::now();
    for p in 0..processes as u64 {
        let (process_bytes, process) = fake(u64::MAX - p, vec![("Type".into(), "Process".into())]);
        let mut batch = Vec::new();
        for nonce in 0..per_process {
            let (assignment, assignment_id) =
                fake(p << 40 | nonce, vec![("Nonce".into(), nonce.to_string())]);
            let (kind, message_id, body) = if nonce == 0 {
                (EntryKind::Process, process, Some(process_bytes.clone()))
            } else {
                (EntryKind::AssignmentOnly, [7; 32], None)
            };
            let record = EntryRecord {
                kind,
                timestamp: 1_700_000_000_000 + nonce,
                sequence,
                assignment_id,
                message_id,
                hash_chain: [0; 32],
                style: Default::default(),
                origin: Default::default(),
            };
            sequence += 1;
            batch.push(StagedEntry {
                process,
                nonce,
                record,
                assignment,
                body,
                dedupe_hashes: Vec::new(),
                dup: 0,
                upload: true,
            });
            if batch.len() == 10_000 {
                store.write(&Commit {
                    entries: std::mem::take(&mut batch),
                    sync: false,
                    ..Default::default()
                })?;
            }
        }
        store.write(&Commit {
            entries: batch,
            sync: true,
            ..Default::default()
        })?;
        println!(
            "prefilled process {} with {per_process} entries",
            b64::encode(&process)
        );
    }
    store.compact()?;
    println!(
        "prefill took {:.1} s (compacted)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn sign(
    wallet: &Wallet,
    target: Option<[u8; 32]>,
    tags: &[(&str, &str)],
    data: Vec<u8>,
) -> (Vec<u8>, String) {
    let tags = tags
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut draft = wallet.draft(tags, data);
    draft.target = target;
    let (bytes, id) = wallet.sign(&draft).expect("sign");
    (bytes, b64::encode(&id))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn read_all(
    client: &reqwest::Client,
    url: &str,
    pid: &str,
    limit: usize,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut entries = 0;
    let mut from = String::from("-1");
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "{url}/{pid}?process-id={pid}&from-nonce={from}&limit={limit}"
            ))
            .send()
            .await?
            .json()
            .await?;
        let edges = page["edges"].as_array().cloned().unwrap_or_default();
        entries += edges.len();
        if let Some(last) = edges.last() {
            from = last["cursor"].as_str().unwrap_or("0").to_string();
        }
        if page["page_info"]["has_next_page"] != true {
            return Ok((entries, started.elapsed()));
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Args = argh::from_env();
    if let Some(port) = args.fake_bundler {
        return bundler::run(bundler::Settings {
            port,
            delay: Duration::from_millis(args.bundler_delay_ms),
            outage: Duration::from_secs(args.bundler_outage_secs),
        });
    }
    if let Some(dir) = &args.router_prefill {
        let sus: Vec<String> = args
            .router_sus
            .split(',')
            .map(|su| su.trim().to_string())
            .collect();
        return router::prefill(dir, args.router_table, &sus);
    }
    if let Some(dir) = &args.prefill_dir {
        let threads = match args.prefill_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if let Some(entries) = args.verify_ceiling {
            return signed::ceiling(dir, entries, threads);
        }
        if args.prefill_signed {
            return signed::prefill(dir, args.processes, args.prefill_entries, threads);
        }
        return prefill(dir, args.processes, args.prefill_entries);
    }
    let host = args
        .url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    anyhow::ensure!(
        host == "localhost" || host.starts_with("127.") || host == "[::1]",
        "su-loadgen only targets loopback addresses"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;

    if let Some(requests) = args.router_redirects {
        let address = args.url.trim_start_matches("http://").trim_end_matches('/');
        let rss_before = args.server_pid.and_then(router::rss_kib);
        let (done, elapsed) = runtime.block_on(router::redirects(
            address,
            args.router_table,
            requests,
            args.concurrency,
        ))?;
        println!(
            "redirects: {done} in {:.2} s = {:.0} redirects/s (table {}, {} connections)",
            elapsed.as_secs_f64(),
            done as f64 / elapsed.as_secs_f64(),
            args.router_table,
            args.concurrency
        );
        if let (Some(pid), Some((before, _))) = (args.server_pid, rss_before) {
            if let Some((now, peak)) = router::rss_kib(pid) {
                println!(
                    "router RSS: {:.1} MiB before, {:.1} MiB after, peak {:.1} MiB",
                    before as f64 / 1024.0,
                    now as f64 / 1024.0,
                    peak as f64 / 1024.0
                );
            }
        }
        return Ok(());
    }
    if let Some(pid) = &args.read_process {
        let (entries, elapsed) =
            runtime.block_on(read_all(&client, &args.url, pid, args.page_limit))?;
        println!(
            "read {entries} entries in {:.3} s: {:.0} entries/s",
            elapsed.as_secs_f64(),
            entries as f64 / elapsed.as_secs_f64()
        );
        return Ok(());
    }

    let jwk = Wallet::generate()?;
    let wallet = Arc::new(Wallet::from_jwk(&jwk, SigningSalt::Max)?);
    eprintln!("spawning {} processes", args.processes);
    let mut pids = Vec::new();
    for _ in 0..args.processes {
        let tags = [
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Process"),
            ("Module", "Isk_GYo30Tyf5nLbVI6zEJIfFpiXQJd58IKcIkTu4no"),
            ("Scheduler", "loadgen"),
        ];
        let (bytes, pid) = sign(&wallet, None, &tags, b"loadgen".to_vec());
        let status = runtime
            .block_on(async { client.post(&args.url).body(bytes).send().await })?
            .status();
        anyhow::ensure!(status.is_success(), "spawn answered {status}");
        pids.push(pid);
    }

    eprintln!("pre-signing {} messages", args.messages);
    let next = AtomicUsize::new(0);
    let mut items: Vec<(usize, Vec<u8>)> = Vec::with_capacity(args.messages);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (wallet, pids, next) = (&wallet, &pids, &next);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= args.messages {
                            return out;
                        }
                        let target = b64::decode_id(&pids[n % pids.len()]).expect("pid");
                        let tags = [
                            ("Data-Protocol", "ao"),
                            ("Variant", "ao.TN.1"),
                            ("Type", "Message"),
                            ("Action", "Eval"),
                        ];
                        let (bytes, _) =
                            sign(wallet, Some(target), &tags, vec![b'x'; args.data_size]);
                        out.push((n, bytes));
                    }
                })
            })
            .collect();
        for worker in workers {
            items.extend(worker.join().expect("signer"));
        }
    });
    items.sort_by_key(|(n, _)| *n);

    if let Some(streams) = args.live_streams {
        anyhow::ensure!(pids.len() == 1, "--live-streams takes --processes 1");
        let messages = items.into_iter().map(|(_, bytes)| bytes).collect();
        return runtime.block_on(live::run(
            &args.url,
            &client,
            &pids[0],
            streams,
            messages,
            Duration::from_millis(args.live_pause_ms),
        ));
    }

    eprintln!("posting at concurrency {}", args.concurrency);
    let queue = Arc::new(std::sync::Mutex::new(
        items
            .into_iter()
            .map(|(_, bytes)| bytes)
            .collect::<Vec<_>>(),
    ));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let rate = args.rate;
    let latencies = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, queue, url, issued) = (
                client.clone(),
                queue.clone(),
                args.url.clone(),
                issued.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < deadline {
                    let Some(bytes) = queue.lock().expect("queue").pop() else {
                        break;
                    };
                    if rate > 0.0 {
                        // Open-loop pacing: request n is due at n / rate seconds.
                        let n = issued.fetch_add(1, Ordering::Relaxed);
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let sent = Instant::now();
                    match client.post(&url).body(bytes).send().await {
                        Ok(response) if response.status().is_success() => {
                            latencies.push(sent.elapsed())
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (latencies, task_errors) = task.await.expect("task");
            all.extend(latencies);
            errors += task_errors;
        }
        (all, errors)
    });
    let elapsed = started.elapsed();
    let (mut latencies, errors) = latencies;
    latencies.sort_unstable();
    let ok = latencies.len();
    println!(
        "writes: {ok} ok, {errors} failed in {:.2} s = {:.1} writes/s; latency ms p50 {:.1} p99 {:.1} max {:.1}",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    if !args.no_reads {
        let mut total = 0;
        let read_started = Instant::now();
        for pid in &pids {
            total += runtime
                .block_on(read_all(&client, &args.url, pid, args.page_limit))?
                .0;
        }
        let read_elapsed = read_started.elapsed();
        println!(
            "reads: {total} entries in {:.2} s = {:.0} entries/s",
            read_elapsed.as_secs_f64(),
            total as f64 / read_elapsed.as_secs_f64()
        );
        anyhow::ensure!(
            total == ok + pids.len(),
            "read {total} entries, expected {}",
            ok + pids.len()
        );
    }
    if let Some(pid) = args.server_pid {
        if let Some(kib) = peak_rss_kib(pid) {
            println!("server peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
    }
    Ok(())
}
