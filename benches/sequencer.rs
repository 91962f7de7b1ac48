//! Sequencer append, in-process: one signed, durably committed entry per append, on one
//! process (appends awaited one by one) and spread over 16 processes (16 in flight).

use ao_su::sequencer::{Request, Sequencer, SequencerConfig, SequencerContext};
use ao_su::store::{OpenMode, Store};
use ao_su::wallet::{SigningSalt, Wallet};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

fn client_item(wallet: &Wallet, target: Option<[u8; 32]>, kind: &str) -> (Vec<u8>, [u8; 32]) {
    let tags = vec![
        ("Data-Protocol".into(), "ao".into()),
        ("Type".into(), kind.into()),
    ];
    let mut draft = wallet.draft(tags, b"bench".to_vec());
    draft.target = target;
    wallet.sign(&draft).unwrap()
}

fn sequencer_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), OpenMode::ReadWrite).unwrap());
    let su_wallet =
        Arc::new(Wallet::from_jwk(&Wallet::generate().unwrap(), SigningSalt::Digest).unwrap());
    let client = Wallet::from_jwk(&Wallet::generate().unwrap(), SigningSalt::Max).unwrap();
    let context = SequencerContext {
        store,
        wallet: su_wallet,
        block_height: Arc::new(AtomicU64::new(1_500_000)),
        dedupe_checks: true,
        health: Arc::default(),
        notifier: ao_su::live::Notifier::new(),
        fault_injection: None,
    };
    let (sequencer, threads) = Sequencer::start(context, SequencerConfig::default()).unwrap();
    let processes: Vec<[u8; 32]> = (0..16)
        .map(|_| {
            let (item, process) = client_item(&client, None, "Process");
            runtime
                .block_on(sequencer.append(Request::Process { process, item }))
                .unwrap();
            process
        })
        .collect();
    let messages = |count: u64, spread: usize| -> Vec<Request> {
        (0..count as usize)
            .map(|n| {
                let process = processes[n % spread];
                let (item, message) = client_item(&client, Some(process), "Message");
                Request::Message {
                    process,
                    message,
                    item,
                    dedupe: None,
                }
            })
            .collect()
    };

    let mut group = c.benchmark_group("sequencer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("append_one_process_sequential", |b| {
        b.iter_custom(|iters| {
            let requests = messages(iters, 1);
            let started = Instant::now();
            for request in requests {
                runtime.block_on(sequencer.append(request)).unwrap();
            }
            started.elapsed()
        })
    });
    group.bench_function("append_16_processes_16_in_flight", |b| {
        b.iter_custom(|iters| {
            let requests = messages(iters, 16);
            let started = Instant::now();
            runtime.block_on(async {
                let mut pending = Vec::new();
                for request in requests {
                    let sequencer: Sequencer = sequencer.clone();
                    pending.push(tokio::spawn(async move { sequencer.append(request).await }));
                    if pending.len() == 16 {
                        for task in pending.drain(..) {
                            task.await.unwrap().unwrap();
                        }
                    }
                }
                for task in pending {
                    task.await.unwrap().unwrap();
                }
            });
            started.elapsed()
        })
    });
    group.finish();
    // Stop the shards and the committer before the store and its directory go away: threads
    // still holding RocksDB while the process exits can crash it.
    drop(sequencer);
    threads.join();
}

criterion_group!(benches, sequencer_append);
criterion_main!(benches);
