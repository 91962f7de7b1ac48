//! `su serve`: a primary. Open the store, start the sequencer, then run the shared daemon
//! phases (`daemon.rs`): bind, background loops, HTTP, ready, wait, drain; then stop the
//! sequencer and close the store, in that order.

use super::daemon::{self, Daemon};
use crate::admin;
use crate::config::Config;
use crate::http::controls::Controls;
use crate::http::{App, Budgets, Mode, Primary};
use crate::live::Live;
use crate::location::Keeper;
use crate::outbox::{Outbox, OutboxConfig};
use crate::sequencer::{Sequencer, SequencerConfig, SequencerContext, SequencerThreads};
use crate::store::Store;
use crate::upstream::{AllowLists, BlockHeight, Gateway, RouterCheck};
use crate::wallet::Wallet;
use anyhow::Context;
use argh::FromArgs;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The address `su serve` and `su su` bind unless `--bind` says otherwise.
pub const DEFAULT_BIND: &str = "0.0.0.0";

/// How long start-up waits for the gateway's block height before using the persisted one.
const BLOCK_HEIGHT_AT_START: Duration = Duration::from_secs(5);

/// Run the Scheduler Unit.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct Args {
    /// TCP port to listen on (default: SU_PORT)
    #[argh(option)]
    pub port: Option<u16>,
    /// address to bind (default 0.0.0.0)
    #[argh(option, default = "DEFAULT_BIND.to_string()")]
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

/// What `run` prepares before the runtime starts.
struct Prepared {
    config: Config,
    store: Arc<Store>,
    wallet: Arc<Wallet>,
    bind: String,
    port: u16,
    cores: usize,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    started: Instant,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    tracing::info!(mode = "primary", settings = %config.effective, "effective configuration");
    let store = daemon::open_store(&config.store.data_dir)?;
    // The store says who signs for it: a wallet is generated only for an empty store, and a
    // different or missing one is refused (one line naming both addresses or the file).
    let store_is_empty = store.last_sequence()? == 0;
    let wallet = Arc::new(super::wallet::load_or_create(
        &config,
        store.signer_address()?,
        store_is_empty,
    )?);
    super::wallet::bind_to_store(&wallet, &store)?;
    if let Some(primary) = store.sync_primary()? {
        tracing::warn!(
            former_primary = %primary,
            applied = store.sync_after()?,
            "this store was a standby and is promoted now; the former primary must stay stopped (README: promotion)"
        );
        store.clear_sync_primary()?;
    }
    let cores = super::daemon::cores();
    let runtime = super::daemon::http_runtime()?;
    let metrics = super::daemon::metrics(&config.http);
    let prepared = Prepared {
        port: args.port.unwrap_or(config.http.port),
        bind: args.bind,
        config,
        store,
        wallet,
        cores,
        metrics,
        started,
    };
    runtime.block_on(serve_primary(prepared))?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn serve_primary(prepared: Prepared) -> anyhow::Result<()> {
    let Prepared {
        config,
        store,
        wallet,
        bind,
        port,
        cores,
        metrics,
        started,
    } = prepared;
    let gateway = Gateway::new(&config.upstream)?;
    // A process allow-list that cannot be fetched stops the start-up (PROTOCOL 8.2).
    let allow_lists = AllowLists::load(&config.controls, config.upstream.timeout_secs)
        .await
        .context("fetching the process allow-list (PROCESS_WHITELIST_URL)")?;
    log_controls(&config);
    let block_height = Arc::new(read_block_height(&gateway, &store).await);
    let router_check = match &config.router_check {
        Some(check) => {
            tracing::info!(router = %check.router_url, own_url = ?check.own_url, assignment = ?check.assignment, "router check on: spawns placed on another SU are refused");
            Some(RouterCheck::new(check)?)
        }
        None => None,
    };
    let mut daemon = Daemon::new(&config.lifecycle, started);
    let notifier = crate::live::Notifier::new();
    let (sequencer, threads) =
        start_sequencer(&config, &store, &wallet, &block_height, cores, &notifier)?;
    let signer = wallet.clone();

    let listener = daemon::bind_listener(&bind, port).await?;
    let app = Arc::new(App {
        store: store.clone(),
        block_height: block_height.clone(),
        gateway: gateway.clone(),
        metrics,
        http: config.http.clone(),
        admission: config.admission.clone(),
        budgets: Budgets::new(&config.http, &config.admission, cores),
        warmup_until: Instant::now() + Duration::from_secs(config.admission.warmup_secs),
        controls: Controls::new(&config.controls, &allow_lists),
        live: Live::new(notifier, config.http.max_live_reads, daemon.stop_signal()),
        mode: Mode::Primary(Primary {
            sequencer,
            wallet: signer,
            router_check,
        }),
    });
    let parts = Background {
        gateway: &gateway,
        block_height: &block_height,
        store: &store,
        wallet: &wallet,
    };
    start_background(&mut daemon, &config, parts).await?;
    for refresh in allow_lists.refresh_loops(&daemon.stop_signal()) {
        daemon.start_background(refresh);
    }
    let address = listener.local_addr()?;
    daemon.serve_http(listener, app.clone());
    daemon.notify_ready(address, app.mode.name());

    daemon.wait_for_shutdown_signal().await;
    let deadline = daemon.shutdown_deadline();
    daemon.drain().await;
    // The last handle of the sequencer goes with the app: the shards drain and exit.
    drop(app);
    stop_sequencer(threads, deadline).await;
    close_store(store).await;
    tracing::info!("stopped");
    Ok(())
}

/// Says which operator controls are on, once, at start.
fn log_controls(config: &Config) {
    let controls = &config.controls;
    if let Some(read_only) = &controls.read_only {
        match &read_only.write_url {
            Some(url) => {
                tracing::info!(write_url = %crate::config::redact("SU_WRITE_URL", url), "read-only: writes are redirected")
            }
            None => tracing::info!("read-only: writes are refused"),
        }
    }
    if controls.ip_allow_list.is_some() {
        tracing::info!("IP allow-list on: writes wait for its first fetch");
    }
    if let Some(limit) = controls.ip_rate {
        tracing::info!(
            per_minute = limit.per_minute,
            burst = limit.burst,
            "write rate limit per client IP"
        );
    }
    if let Some(limit) = controls.owner_rate {
        tracing::info!(
            per_minute = limit.per_minute,
            burst = limit.burst,
            "write rate limit per signer"
        );
    }
}

/// The gateway's block height if it answers quickly, else the last persisted one.
async fn read_block_height(gateway: &Gateway, store: &Arc<Store>) -> BlockHeight {
    let block_height = BlockHeight::from_store(store);
    if !gateway.is_online() {
        tracing::warn!(
            height = block_height.get(),
            "no gateway configured (ARWEAVE_URL/GATEWAY_URL): running offline with the last persisted block height"
        );
        return block_height;
    }
    match tokio::time::timeout(BLOCK_HEIGHT_AT_START, block_height.refresh(gateway, store)).await {
        Ok(Ok(height)) => tracing::info!(height, "block height from the gateway"),
        _ => tracing::warn!(
            height = block_height.get(),
            "gateway unreachable at start-up; using the last persisted block height"
        ),
    }
    block_height
}

fn start_sequencer(
    config: &Config,
    store: &Arc<Store>,
    wallet: &Arc<Wallet>,
    block_height: &BlockHeight,
    cores: usize,
    notifier: &Arc<crate::live::Notifier>,
) -> anyhow::Result<(Sequencer, SequencerThreads)> {
    let shards = match config.scheduling.shards {
        0 => cores,
        shards => shards,
    };
    let started = Sequencer::start(
        SequencerContext {
            store: store.clone(),
            wallet: wallet.clone(),
            block_height: block_height.height.clone(),
            dedupe_checks: config.scheduling.deep_hash_checks,
            health: Arc::default(),
            fault_injection: None,
            notifier: notifier.clone(),
        },
        SequencerConfig {
            shards,
            tip_cache: config.scheduling.tip_cache,
            ..SequencerConfig::default()
        },
    )?;
    Ok(started)
}

/// What a primary's loops share.
struct Background<'a> {
    gateway: &'a Gateway,
    block_height: &'a Arc<BlockHeight>,
    store: &'a Arc<Store>,
    wallet: &'a Arc<Wallet>,
}

/// A primary's loops: the block-height refresh (online only), the outbox engine, the
/// location keeper (with `SU_URL`), and the admin socket (`su outbox`, `su reupload` beside
/// a running server).
async fn start_background(
    daemon: &mut Daemon,
    config: &Config,
    parts: Background<'_>,
) -> anyhow::Result<()> {
    let Background {
        gateway,
        block_height,
        store,
        wallet,
    } = parts;
    if gateway.is_online() {
        let period = Duration::from_secs(config.upstream.block_height_refresh_secs);
        daemon.start_background(block_height.clone().run(
            gateway.clone(),
            store.clone(),
            period,
            daemon.stop_signal(),
        ));
    }
    let outbox = match OutboxConfig::from_upstream(&config.upstream) {
        Some(outbox_config) => {
            let (outbox, task) =
                Outbox::start(store.clone(), outbox_config, daemon.stop_signal()).await?;
            daemon.adopt_background(task);
            Some(outbox)
        }
        None => {
            tracing::warn!(
                "UPLOAD_NODE_URL is unset: items stay queued in the outbox until it is set"
            );
            None
        }
    };
    start_location_keeper(daemon, config, gateway, store, outbox.as_ref(), wallet);
    let service = admin::service::Service {
        store: store.clone(),
        outbox,
        gateway: gateway.clone(),
    };
    if let Some(task) = admin::server::start(&config.store.data_dir, service, daemon.stop_signal())
    {
        daemon.adopt_background(task);
    }
    Ok(())
}

/// Starts the Scheduler-Location keeper when `SU_URL` is set and it is not turned off; it
/// needs the outbox (to publish) and GraphQL (to look), and says so when one is missing.
fn start_location_keeper(
    daemon: &mut Daemon,
    config: &Config,
    gateway: &Gateway,
    store: &Arc<Store>,
    outbox: Option<&Outbox>,
    wallet: &Arc<Wallet>,
) {
    let Some(location) = &config.location else {
        return;
    };
    let Some(outbox) = outbox else {
        tracing::warn!("the location keeper needs UPLOAD_NODE_URL to publish; it is off");
        return;
    };
    if config.upstream.graphql_url.is_none() {
        tracing::warn!("the location keeper needs GRAPHQL_URL or GATEWAY_URL to look; it is off");
        return;
    }
    let keeper = Keeper {
        config: location.clone(),
        gateway: gateway.clone(),
        store: store.clone(),
        outbox: outbox.clone(),
        wallet: wallet.clone(),
    };
    daemon.start_background(keeper.run(daemon.stop_signal()));
}

/// Joins the shard and committer threads, waiting at most `deadline`. Connections that
/// outlived the drain deadline may still hold the sequencer; every acknowledged write is
/// already synced, so a bounded wait is enough.
async fn stop_sequencer(threads: SequencerThreads, deadline: Duration) {
    let joined = tokio::task::spawn_blocking(move || threads.join());
    if tokio::time::timeout(deadline, joined).await.is_err() {
        tracing::warn!("sequencer threads did not stop in time");
    }
}

/// Flushes the memtables: a clean stop leaves no WAL to replay, so the next start is fast.
async fn close_store(store: Arc<Store>) {
    if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.flush()).await {
        tracing::warn!(%error, "flushing the store at shutdown failed; the WAL will be replayed");
    }
}
