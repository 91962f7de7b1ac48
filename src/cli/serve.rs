//! `su serve`: open the store, start the sequencer, background loops and HTTP, and shut
//! down in order on SIGTERM/SIGINT (or fail-stop on a store write error).

use crate::admin;
use crate::config::Config;
use crate::http::{self, App, HttpSettings};
use crate::outbox::{Outbox, OutboxConfig};
use crate::sequencer::{Sequencer, SequencerConfig, SequencerContext};
use crate::store::{OpenMode, Store};
use crate::upstream::{BlockHeight, Gateway};
use anyhow::Context;
use argh::FromArgs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Run the Scheduler Unit.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct Args {
    /// TCP port to listen on (default: SU_PORT or 9000)
    #[argh(option)]
    pub port: Option<u16>,
    /// address to bind (default 0.0.0.0)
    #[argh(option, default = "String::from(\"0.0.0.0\")")]
    pub bind: String,
}

/// The reference's invocation: `su su PORT`.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "su")]
pub struct ReferenceArgs {
    /// TCP port to listen on
    #[argh(positional)]
    pub port: u16,
}

fn notify_systemd(socket: Option<&std::path::Path>, message: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = socket else { return };
    // systemd may hand out an abstract socket, written with a leading '@'.
    let address = match path.to_str().and_then(|text| text.strip_prefix('@')) {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(path),
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        address.and_then(|address| socket.send_to_addr(message.as_bytes(), &address))
    });
    if let Err(error) = sent {
        tracing::warn!(%error, "could not notify systemd");
    }
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = Arc::new(
        Store::open(&config.data_dir, OpenMode::ReadWrite)
            .with_context(|| format!("opening the store at {}", config.data_dir.display()))?,
    );
    let store_is_empty = store.last_sequence()? == 0;
    let wallet = Arc::new(super::wallet::load_or_create(
        &config,
        store.signer_address()?,
        store_is_empty,
    )?);
    super::wallet::bind_to_store(&wallet, &store)?;
    let port = args.port.unwrap_or(config.port);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("su-http")
        .enable_all()
        .build()?;
    let metrics = if config.metrics {
        crate::telemetry::init_metrics()
    } else {
        None
    };

    runtime.block_on(async move {
        let gateway = Gateway::new(&config.upstream)?;
        let block_height = Arc::new(BlockHeight::from_store(&store));
        if gateway.is_online() {
            match tokio::time::timeout(Duration::from_secs(5), block_height.refresh(&gateway, &store)).await {
                Ok(Ok(height)) => tracing::info!(height, "block height from the gateway"),
                _ => tracing::warn!(height = block_height.get(), "gateway unreachable at start-up; using the last persisted block height"),
            }
        } else {
            tracing::warn!(height = block_height.get(), "no gateway configured (ARWEAVE_URL/GATEWAY_URL): running offline with the last persisted block height");
        }

        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let failed = Arc::new(AtomicBool::new(false));
        let on_fatal = {
            let (failed, shutdown_tx) = (failed.clone(), shutdown_tx.clone());
            Box::new(move || {
                failed.store(true, Ordering::SeqCst);
                let _ = shutdown_tx.send(true);
            })
        };
        let sequencer_config = SequencerConfig {
            shards: if config.shards == 0 { cores } else { config.shards },
            ..SequencerConfig::default()
        };
        let (sequencer, threads) = Sequencer::start(
            SequencerContext {
                store: store.clone(),
                wallet: wallet.clone(),
                block_height: block_height.height.clone(),
                dedupe_checks: config.deep_hash_checks,
                on_fatal,
            },
            sequencer_config,
        )?;

        let listener = tokio::net::TcpListener::bind((args.bind.as_str(), port))
            .await
            .with_context(|| format!("binding {}:{port}", args.bind))?;
        let app = Arc::new(App {
            store: store.clone(),
            sequencer: sequencer.clone(),
            wallet,
            block_height: block_height.clone(),
            gateway: gateway.clone(),
            metrics,
            settings: HttpSettings {
                accepted_signature_types: config.accepted_signature_types.clone(),
                deep_hash_checks: config.deep_hash_checks,
                warmup_until: Instant::now() + Duration::from_secs(config.warmup_secs),
                size_limit: config.size_limit.clone(),
                max_read_memory: config.max_read_memory,
                max_limit: config.max_limit,
                max_block_height_age_secs: config.max_block_height_age_secs,
            },
        });

        let mut background = Vec::new();
        if gateway.is_online() {
            let period = Duration::from_secs(config.upstream.block_height_refresh_secs);
            background.push(tokio::spawn(block_height.clone().run(gateway.clone(), store.clone(), period, shutdown_rx.clone())));
        }
        let outbox = match OutboxConfig::from_upstream(&config.upstream) {
            Some(outbox_config) => {
                let (outbox, task) = Outbox::start(store.clone(), outbox_config, shutdown_rx.clone()).await?;
                background.push(task);
                Some(outbox)
            }
            None => {
                tracing::warn!("UPLOAD_NODE_URL is unset: items stay queued in the outbox until it is set");
                None
            }
        };
        let admin = admin::service::Service { store: store.clone(), outbox, gateway: gateway.clone() };
        background.extend(admin::server::start(&config.data_dir, admin, shutdown_rx.clone()));

        let local = listener.local_addr()?;
        tracing::info!(address = %local, startup_ms = started.elapsed().as_millis() as u64, "serving");
        notify_systemd(config.notify_socket.as_deref(), "READY=1");
        let server = tokio::spawn(http::serve(listener, app, shutdown_rx.clone(), Duration::from_secs(config.shutdown_secs)));

        let mut fatal = shutdown_rx.clone();
        let reason = tokio::select! {
            signal = wait_for_signal() => signal,
            _ = fatal.changed() => "store failure",
        };
        tracing::info!(reason, "shutting down");
        notify_systemd(config.notify_socket.as_deref(), "STOPPING=1");
        let _ = shutdown_tx.send(true);
        let _ = server.await;
        for task in background {
            let _ = task.await;
        }
        drop(sequencer);
        // Connections that outlived the drain deadline may still hold the sequencer; every
        // acknowledged write is already synced, so a bounded wait is enough.
        let joined = tokio::task::spawn_blocking(move || threads.join());
        if tokio::time::timeout(Duration::from_secs(config.shutdown_secs), joined).await.is_err() {
            tracing::warn!("sequencer threads did not stop in time");
        }
        if failed.load(Ordering::SeqCst) {
            anyhow::bail!("stopped after a store write failure");
        }
        // A clean stop leaves no WAL to replay, so the next start is fast.
        let flushing = store.clone();
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || flushing.flush()).await {
            tracing::warn!(%error, "flushing the store at shutdown failed; the WAL will be replayed");
        }
        tracing::info!("stopped");
        Ok::<(), anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
