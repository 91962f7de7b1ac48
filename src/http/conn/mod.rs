//! Client connections: what each one may hold, and who gets closed when room runs out.
//!
//! `Connections` configures hyper for every connection (head size and header count limits,
//! no hyper timer: the deadlines are ours), sets TCP options, tracks each connection's phase
//! in the `registry`, and runs the reaper that closes a head that is too slow or a
//! keep-alive that is too long. A connection gets its parser only when its first bytes
//! arrive, and connections holding a parser while serving nothing are capped
//! (`SU_MAX_WAITING_CONNECTIONS`), so idle clients cost little memory. A new connection
//! beyond the cap on open connections closes the longest-idle one; it waits only while
//! every open connection has a request in flight. When `accept` fails for lack of file
//! descriptors, the loop closes idle connections and pauses instead of spinning. The body's
//! own deadlines are enforced where it is read (`http::body`).

mod fd_limit;
mod io;
mod registry;

use crate::config::ConnectionLimits;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use io::TrackedIo;
use registry::{Caps, Deadlines, Registry};
use rustix::io::Errno;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// hyper's own limit on header lines: kept on its stack-allocated path when unchanged.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Idle connections closed at once when `accept` runs out of file descriptors.
const EVICT_ON_FD_EXHAUSTION: usize = 64;

/// How long the accept loop waits when every connection is busy, or after freeing
/// descriptors for the evicted connections to close.
const SHORT_PAUSE: Duration = Duration::from_millis(2);

/// The longest pause after failed accepts with nothing to close.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The connection side of the server: limits, hyper's settings and the registry.
pub(crate) struct Connections {
    limits: ConnectionLimits,
    builder: http1::Builder,
    registry: Arc<Registry>,
    stop: watch::Receiver<bool>,
    /// The pause after the next failed accept with nothing to close; doubles.
    backoff: Duration,
    /// Accepts have failed for lack of descriptors since the last one that worked.
    exhausted: bool,
}

impl Connections {
    /// Raises the file-descriptor limit and sizes the registry; `stop` turns true when the
    /// server stops (connections that have sent nothing are closed then).
    pub(crate) fn new(limits: &ConnectionLimits, stop: watch::Receiver<bool>) -> Self {
        let fd_limit = fd_limit::raise_nofile_limit();
        let caps = Caps {
            open: fd_limit::connection_cap(limits.max_connections, fd_limit),
            waiting: limits.max_waiting_connections,
        };
        tracing::info!(
            fd_limit,
            max_connections = caps.open,
            max_waiting_connections = caps.waiting,
            header_timeout_secs = limits.header_timeout.as_secs(),
            keep_alive_secs = limits.keep_alive.as_secs(),
            "connection limits"
        );
        let mut builder = http1::Builder::new();
        builder
            .keep_alive(true)
            .header_read_timeout(None::<Duration>)
            .max_header_size(limits.max_header_bytes);
        if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            builder.max_headers(limits.max_headers);
        }
        let deadlines = Deadlines {
            header: limits.header_timeout,
            keep_alive: limits.keep_alive,
        };
        Self {
            limits: limits.clone(),
            builder,
            registry: Arc::new(Registry::new(deadlines, caps)),
            stop,
            backoff: SHORT_PAUSE,
            exhausted: false,
        }
    }

    /// Closes connections past their deadlines, forever; the caller aborts it.
    pub(crate) fn reaper(&self) -> impl Future<Output = ()> + Send + 'static {
        let registry = self.registry.clone();
        async move {
            let mut tick = tokio::time::interval(registry.tick());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                registry.expire();
            }
        }
    }

    /// Returns once a new connection may be accepted: at the cap, the longest-idle
    /// connection is closed; while every connection is busy, it waits.
    pub(crate) async fn make_room(&self) {
        while self.registry.is_full() {
            if self.registry.evict_longest_idle(1) > 0 {
                return;
            }
            tokio::time::sleep(SHORT_PAUSE).await;
        }
    }

    /// Handles a failed `accept`: without file descriptors, closes idle connections and
    /// pauses (briefly when it closed some, with a doubling backoff when it could not);
    /// other failures concern one connection and need no pause.
    pub(crate) async fn accept_failed(&mut self, error: std::io::Error) {
        let exhausted = matches!(
            Errno::from_io_error(&error),
            Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
        );
        if !exhausted {
            tracing::debug!(%error, "accept failed");
            return;
        }
        let closed = self.registry.evict_longest_idle(EVICT_ON_FD_EXHAUSTION);
        let pause = if closed > 0 {
            SHORT_PAUSE
        } else {
            let pause = self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_ACCEPT_BACKOFF);
            pause
        };
        if !self.exhausted {
            self.exhausted = true;
            tracing::warn!(%error, open = self.registry.len(), closed, "out of file descriptors; closing idle connections");
        }
        metrics::counter!("su_http_accept_exhausted_total").increment(1);
        tokio::time::sleep(pause).await;
    }

    /// Serves one accepted connection on its own task, with `handler` answering each
    /// request. The parser is created only once the first bytes arrive, so a connection
    /// that sends nothing costs little more than its socket.
    pub(crate) fn serve<F, Fut>(
        &mut self,
        stream: TcpStream,
        graceful: &GracefulShutdown,
        handler: F,
    ) where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<super::Body>> + Send + 'static,
    {
        self.backoff = SHORT_PAUSE;
        self.exhausted = false;
        self.set_socket_options(&stream);
        let registration = self.registry.register();
        let starter = registration.request_starter();
        let handler = Arc::new(handler);
        let service = hyper::service::service_fn(move |request| {
            let guard = starter.begin_request();
            let answer = handler(request);
            async move {
                let mut response = answer.await;
                // A stream is served until its body ends: the connection stays busy.
                response.body_mut().hold_while_streaming(guard);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let builder = self.builder.clone();
        let watcher = graceful.watcher();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let tracker = registration.tracker().clone();
            // `peek` waits for a byte (or the end) without taking it; readiness alone can
            // be spurious.
            let mut first = [0u8; 1];
            let spoke = tokio::select! {
                peeked = stream.peek(&mut first) => peeked.is_ok(),
                () = tracker.closed() => false,
                _ = stop.wait_for(|&stop| stop) => false,
            };
            if !spoke {
                return;
            }
            registration.parser_created();
            let io = TokioIo::new(TrackedIo::new(stream, tracker.clone()));
            let connection = watcher.watch(builder.serve_connection(io, service));
            tokio::select! {
                ended = connection => {
                    if let Err(error) = ended {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                () = tracker.closed() => {}
            }
            drop(registration);
        });
    }

    fn set_socket_options(&self, stream: &TcpStream) {
        use rustix::net::sockopt;
        let _ = stream.set_nodelay(true);
        let Some(idle) = self.limits.tcp_keepalive else {
            return;
        };
        let interval = (idle / 4).max(Duration::from_secs(1));
        let set = sockopt::set_socket_keepalive(stream, true)
            .and_then(|()| sockopt::set_tcp_keepidle(stream, idle))
            .and_then(|()| sockopt::set_tcp_keepintvl(stream, interval))
            .and_then(|()| sockopt::set_tcp_keepcnt(stream, 4));
        if let Err(error) = set {
            tracing::debug!(%error, "could not set TCP keepalive");
        }
    }
}
