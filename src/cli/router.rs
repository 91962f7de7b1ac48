//! `su router` (also `su router PORT`, and `MODE=router` with `su serve` or `su su PORT`): a
//! router in front of several SUs (PROTOCOL 7). It opens its own store (the placement table),
//! reads the scheduler list (again on SIGHUP), checks its SUs' health, and runs the shared
//! daemon phases; it has no sequencer, no wallet and no outbox.

use super::daemon::{self, Daemon};
use crate::config::Config;
use crate::http::controls::Controls;
use crate::http::{App, Budgets, Mode};
use crate::router::Router;
use crate::store::Store;
use crate::upstream::{AllowLists, BlockHeight, Gateway};
use anyhow::{Context, bail};
use argh::FromArgs;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Run a router in front of the SUs of SCHEDULER_LIST_PATH.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "router")]
pub struct Args {
    /// TCP port to listen on (the reference's `su router PORT`)
    #[argh(positional, arg_name = "port")]
    pub port_positional: Option<u16>,
    /// TCP port to listen on (default: SU_PORT)
    #[argh(option)]
    pub port: Option<u16>,
    /// address to bind (default 0.0.0.0)
    #[argh(option, default = "super::serve::DEFAULT_BIND.to_string()")]
    pub bind: String,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if config.router.list_path.is_none() {
        bail!("SCHEDULER_LIST_PATH must be set in router mode");
    }
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    tracing::info!(mode = "router", settings = %config.effective, "effective configuration");
    let store = daemon::open_store(&config.store.data_dir)?;
    let port = args
        .port
        .or(args.port_positional)
        .unwrap_or(config.http.port);
    daemon::run_on_store(
        &store,
        serve_router(config, args.bind, port, store.clone(), started),
    )
}

async fn serve_router(
    config: Config,
    bind: String,
    port: u16,
    store: Arc<Store>,
    started: Instant,
) -> anyhow::Result<()> {
    let router = Arc::new(Router::new(store.clone(), &config.router)?);
    reload(&router).await;
    // One round of health checks before serving, so the first spawns see real counts.
    router.check_health().await;
    let allow_lists = AllowLists::load(&config.controls, config.upstream.timeout_secs)
        .await
        .context("fetching the process allow-list (PROCESS_WHITELIST_URL)")?;
    let metrics = daemon::metrics(&config.http);
    let mut daemon = Daemon::new(&config.lifecycle, started);
    let listener = daemon::bind_listener(&bind, port).await?;
    let app = Arc::new(App {
        store: store.clone(),
        block_height: Arc::new(BlockHeight::from_store(&store)),
        gateway: Gateway::new(&config.upstream)?,
        metrics,
        http: config.http.clone(),
        admission: config.admission.clone(),
        budgets: Budgets::new(&config.http, &config.admission, daemon::cores()),
        warmup_until: Instant::now() + Duration::from_secs(config.admission.warmup_secs),
        controls: Controls::new(&config.controls, &allow_lists),
        // A router redirects live reads with the rest; nothing is written here.
        live: crate::live::Live::new(
            crate::live::Notifier::new(),
            config.http.max_live_reads,
            daemon.stop_signal(),
        ),
        mode: Mode::Router(router.clone()),
    });
    for refresh in allow_lists.refresh_loops(&daemon.stop_signal()) {
        daemon.start_background(refresh);
    }
    let period = Duration::from_secs(config.router.poll_secs);
    daemon.start_background(
        router
            .clone()
            .run_health_checks(period, daemon.stop_signal()),
    );
    daemon.start_background(reload_on_sighup(router.clone(), daemon.stop_signal()));
    let address = listener.local_addr()?;
    daemon.serve_http(listener, app.clone());
    daemon.notify_ready(address, app.mode.name());
    daemon.wait_for_shutdown_signal().await;
    daemon.drain().await;
    tracing::info!("stopped");
    Ok(())
}

/// Reads the scheduler list; a failure keeps the SUs known before (and is logged).
async fn reload(router: &Arc<Router>) {
    let reading = router.clone();
    match tokio::task::spawn_blocking(move || reading.reload()).await {
        Ok(Ok(listed)) => {
            let sus = router.sus();
            tracing::info!(listed, known = sus.known.len(), "scheduler list read");
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "the scheduler list could not be read; keeping the SUs known before")
        }
        Err(error) => tracing::error!(%error, "reading the scheduler list failed"),
    }
}

/// SIGHUP: read the scheduler list again, then check every SU's health at once.
async fn reload_on_sighup(router: Arc<Router>, mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the scheduler list is read at start only");
        return;
    };
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reading the scheduler list again");
                reload(&router).await;
                router.check_health().await;
            }
            _ = stop.changed() => return,
        }
    }
}
