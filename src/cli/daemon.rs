//! The phases every long-running mode shares, in the order `su serve` calls them: bind the
//! listener, start the background loops, serve HTTP, tell systemd it is ready, wait for a
//! stop signal, and drain. `su router` and `su sync` reuse them; what
//! a mode owns beyond them (the sequencer, the store) it stops itself after `drain`.

use crate::config::LifecycleConfig;
use crate::http::{self, App};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running daemon: one stop signal for every loop, and the tasks to wait for.
pub struct Daemon {
    lifecycle: LifecycleConfig,
    started: Instant,
    stop_tx: watch::Sender<bool>,
    /// Kept from the channel's creation, so its clones see a stop sent before they existed.
    stop_rx: watch::Receiver<bool>,
    background: Vec<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
}

/// Creates the data dir if needed and opens its store read-write (the first step of every
/// mode that owns a store).
pub fn open_store(data_dir: &Path) -> anyhow::Result<Arc<crate::store::Store>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let store = crate::store::Store::open(data_dir, crate::store::OpenMode::ReadWrite)
        .with_context(|| format!("opening the store at {}", data_dir.display()))?;
    Ok(Arc::new(store))
}

/// The cores this machine has: HTTP workers, shard threads and read budgets are sized by it.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The runtime every serving mode runs on: one `su-http` worker per core.
pub fn http_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .thread_name("su-http")
        .enable_all()
        .build()
}

/// Runs a mode that owns nothing but its store (`su sync`, `su router`) on the HTTP runtime,
/// then flushes the store; a failed flush only means the WAL is replayed at the next start.
pub fn run_on_store(
    store: &crate::store::Store,
    serve: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let runtime = http_runtime()?;
    let result = runtime.block_on(serve);
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(error) = store.flush() {
        tracing::warn!(%error, "flushing the store at shutdown failed; the WAL will be replayed");
    }
    result
}

/// The Prometheus recorder when `/metrics` is on.
pub fn metrics(
    config: &crate::config::HttpConfig,
) -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    if config.metrics {
        crate::telemetry::init_metrics()
    } else {
        None
    }
}

/// Binds the HTTP listener; phase 1.
pub async fn bind_listener(bind: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((bind, port))
        .await
        .with_context(|| format!("binding {bind}:{port}"))
}

impl Daemon {
    /// `started` is when the process began, for the start-up time in the "serving" log.
    pub fn new(lifecycle: &LifecycleConfig, started: Instant) -> Self {
        let (stop_tx, stop_rx) = watch::channel(false);
        Self {
            lifecycle: lifecycle.clone(),
            started,
            stop_tx,
            stop_rx,
            background: Vec::new(),
            server: None,
        }
    }

    /// The longest each shutdown wait may take (`SU_SHUTDOWN_SECS`).
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.lifecycle.shutdown_secs)
    }

    /// Fires once, when the daemon starts stopping; every loop watches it.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_rx.clone()
    }

    /// Phase 2: runs a loop until the stop signal; `drain` waits for it.
    pub fn start_background(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.background.push(tokio::spawn(task));
    }

    /// Waits for an already spawned loop at shutdown, like those `start_background` starts.
    pub fn adopt_background(&mut self, task: tokio::task::JoinHandle<()>) {
        self.background.push(task);
    }

    /// Phase 3: accepts connections on `listener` until the stop signal.
    pub fn serve_http(&mut self, listener: TcpListener, app: Arc<App>) {
        let deadline = self.shutdown_deadline();
        let server = http::serve(listener, app, self.stop_signal(), deadline);
        self.server = Some(tokio::spawn(server));
    }

    /// Phase 4: logs that the daemon serves and tells systemd `READY=1`.
    pub fn notify_ready(&self, address: SocketAddr, mode: &'static str) {
        let startup_ms = self.started.elapsed().as_millis() as u64;
        tracing::info!(%address, mode, startup_ms, "serving");
        notify_systemd(self.lifecycle.notify_socket.as_deref(), "READY=1");
    }

    /// Phase 5: waits for SIGTERM or SIGINT, and says which. A storage fault does not stop
    /// the daemon: writes pause until the store takes them again, and reads go on.
    pub async fn wait_for_shutdown_signal(&self) -> &'static str {
        let reason = wait_for_signal().await;
        tracing::info!(reason, "shutting down");
        reason
    }

    /// Phase 6: tells systemd `STOPPING=1`, stops every loop, lets in-flight requests finish
    /// (at most `SU_SHUTDOWN_SECS`), and waits for the background loops.
    pub async fn drain(self) {
        notify_systemd(self.lifecycle.notify_socket.as_deref(), "STOPPING=1");
        let _ = self.stop_tx.send(true);
        if let Some(server) = self.server {
            let _ = server.await;
        }
        for task in self.background {
            let _ = task.await;
        }
    }
}

fn notify_systemd(socket: Option<&Path>, message: &str) {
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
