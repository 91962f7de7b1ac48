//! `su sync --from URL`: a hot standby. It follows a primary's change feed into its own store,
//! verifying everything it applies, and serves the read API from that store; writes are sent
//! to the primary with a 307. It never has a wallet of its own: it records the primary's
//! address, and promotion is `su serve` on its data dir with the primary's wallet.

use super::daemon::{self, Daemon};
use crate::ans104::b64;
use crate::config::Config;
use crate::http::controls::Controls;
use crate::http::{App, Budgets, Mode, Standby};
use crate::replication::follow::{Follower, Primary};
use crate::store::Store;
use crate::upstream::{AllowLists, BlockHeight, Gateway};
use anyhow::{Context, bail};
use argh::FromArgs;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one feed request may take.
const FEED_TIMEOUT: Duration = Duration::from_secs(30);

/// Follow a primary SU as a hot standby, and serve reads.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sync")]
pub struct Args {
    /// the primary's base URL, e.g. http://10.0.0.1:9000
    #[argh(option)]
    pub from: String,
    /// seconds between polls while the primary is idle (default 5); while it takes writes the
    /// standby polls every 100 ms, and at once while behind
    #[argh(option, default = "5")]
    pub interval: u64,
    /// TCP port to serve reads on (default: SU_PORT)
    #[argh(option)]
    pub port: Option<u16>,
    /// address to bind (default 0.0.0.0)
    #[argh(option, default = "super::serve::DEFAULT_BIND.to_string()")]
    pub bind: String,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    tracing::info!(mode = "standby", settings = %config.effective, "effective configuration");
    let store = daemon::open_store(&config.store.data_dir)?;
    daemon::run_on_store(&store, serve_standby(config, args, store.clone(), started))
}

async fn serve_standby(
    config: Config,
    args: Args,
    store: Arc<Store>,
    started: Instant,
) -> anyhow::Result<()> {
    let primary = Primary {
        url: args.from.trim_end_matches('/').to_owned(),
        token: config.http.feed_token.clone(),
    };
    let client = reqwest::Client::builder()
        .timeout(FEED_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signer = bind_to_primary(&store, &primary, &client).await?;
    // The operator's controls apply to a standby's reads as to a primary's.
    let allow_lists = AllowLists::load(&config.controls, config.upstream.timeout_secs)
        .await
        .context("fetching the process allow-list (PROCESS_WHITELIST_URL)")?;
    let metrics = daemon::metrics(&config.http);
    let mut daemon = Daemon::new(&config.lifecycle, started);
    let listener = daemon::bind_listener(&args.bind, args.port.unwrap_or(config.http.port)).await?;
    let notifier = crate::live::Notifier::new();
    let app = Arc::new(App {
        store: store.clone(),
        block_height: Arc::new(BlockHeight::from_store(&store)),
        gateway: Gateway::new(&config.upstream)?,
        metrics,
        http: config.http.clone(),
        admission: config.admission.clone(),
        warmup_until: Instant::now(),
        controls: Controls::new(&config.controls, &allow_lists),
        live: crate::live::Live::new(
            notifier.clone(),
            config.http.max_live_reads,
            daemon.stop_signal(),
        ),
        budgets: Budgets::new(&config.http, &config.admission, daemon::cores()),
        mode: Mode::Standby(Standby {
            address: b64::encode(&signer),
            primary: primary.url.clone(),
        }),
    });
    let follower = Follower {
        store: store.clone(),
        client,
        primary,
        signer,
        interval: Duration::from_secs(args.interval.max(1)),
        notifier,
    };
    for refresh in allow_lists.refresh_loops(&daemon.stop_signal()) {
        daemon.start_background(refresh);
    }
    let mut following = tokio::spawn(follower.run(daemon.stop_signal()));
    let address = listener.local_addr()?;
    daemon.serve_http(listener, app.clone());
    daemon.notify_ready(address, app.mode.name());
    let failure = tokio::select! {
        _ = daemon.wait_for_shutdown_signal() => None,
        ended = &mut following => Some(ended),
    };
    daemon.drain().await;
    match failure {
        Some(Ok(Err(error))) => bail!("stopped following the primary: {error}"),
        Some(Err(error)) => bail!("the sync loop failed: {error}"),
        Some(Ok(Ok(()))) => Ok(()),
        None => {
            let _ = following.await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// The primary's signer address, recorded in the store on the first sync; a store that
/// follows (or was) another SU is refused.
async fn bind_to_primary(
    store: &Arc<Store>,
    primary: &Primary,
    client: &reqwest::Client,
) -> anyhow::Result<crate::domain::Id> {
    let page = primary
        .page(client, u64::MAX - 1, 1)
        .await
        .with_context(|| format!("reading the change feed of {}", primary.url))?;
    let address = b64::decode_id(&page.signer)
        .with_context(|| format!("the primary reports no signer address ({:?})", page.signer))?;
    match store.signer_address()? {
        Some(held) if held != address => bail!(
            "this store's assignments are signed by {}, but {} signs with {}: refusing to follow another SU",
            b64::encode(&held),
            primary.url,
            page.signer
        ),
        Some(_) => {}
        None => store.put_signer_address(&address)?,
    }
    match store.sync_primary()? {
        Some(held) if held == primary.url => {}
        held => {
            if let Some(held) = held {
                tracing::warn!(before = %held, now = %primary.url, "the standby follows a new primary URL (same signer)");
            }
            store.put_sync_primary(&primary.url)?;
        }
    }
    tracing::info!(primary = %primary.url, signer = %page.signer, applied = store.sync_after()?, "following the primary");
    Ok(address)
}
