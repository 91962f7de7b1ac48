//! Live reads (README "Live schedule"): a schedule page that waits for its first entry
//! (`GET /{process}?wait=`), and the schedule as Server-Sent Events (`GET /{process}/stream`).
//!
//! Both take a place under `SU_MAX_LIVE_READS` (503 beyond it) and subscribe to the process
//! in `crate::live::Notifier` before they read the store, then sleep until the committer (or
//! a standby's follower) publishes: no store read happens while nothing is written. A
//! stream's events go through a bounded channel into the response body; a consumer that
//! does not take an event within `STREAM_STALL` is disconnected.

use super::error::ApiError;
use super::query::Query;
use super::read::{budgeted_json, rendered_response};
use super::{App, Body};
use crate::ans104::b64;
use crate::domain::Id;
use crate::live::{Live, LivePermit, Subscription};
use crate::reads::{self, PageRequest, ReadError};
use crate::store::Store;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Events a stream holds for its consumer before it waits for it.
const STREAM_BUFFER: usize = 64;
/// Edges a stream reads from the store at once.
const STREAM_BATCH: usize = 64;
/// A consumer that takes no event for this long is disconnected.
const STREAM_STALL: Duration = Duration::from_secs(5);
/// A comment line is sent after this much silence, so proxies and clients see a live stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Whether a rendered page has at least one edge (its JSON ends `"edges":[]}` otherwise).
fn has_edges(page: &[u8]) -> bool {
    !page.ends_with(b"\"edges\":[]}")
}

/// `GET /{process}?…&wait=SECS`: the page as soon as it has an entry, or the empty page
/// once `wait` has passed.
pub(super) async fn waiting_page(
    app: &App,
    process: Id,
    request: PageRequest,
    wait: Duration,
) -> Result<Response<Body>, ApiError> {
    let _permit = app
        .live
        .permits
        .try_acquire()
        .ok_or(ApiError::LiveReadsFull)?;
    let mut subscription = app.live.notifier.subscribe(&process);
    let deadline = tokio::time::Instant::now() + wait;
    let mut waited_out = false;
    loop {
        let store = app.store.clone();
        let (json, reservation) = budgeted_json(app, move |reservation| {
            reads::page_within(&store, &process, &request, reservation)
        })
        .await?;
        if waited_out || has_edges(&json) {
            return Ok(rendered_response(json, reservation));
        }
        drop((json, reservation));
        // At the deadline, or when the server stops, the next read is the answer.
        waited_out = tokio::select! {
            () = subscription.changed() => false,
            () = tokio::time::sleep_until(deadline) => true,
            () = app.live.stopping() => true,
        };
    }
}

/// `GET /{process}/stream?from-nonce=N`: every entry after N (or after the client's
/// `Last-Event-ID`), then each new one, as `id: <nonce>` and `data: <edge>` events.
pub(super) async fn stream<B>(
    app: &App,
    id_text: &str,
    request: &Request<B>,
) -> Result<Response<Body>, ApiError> {
    let process =
        b64::decode_id(id_text).ok_or(ApiError::Read(ReadError::MessageOrProcessNotFound))?;
    let query = Query::parse(request.uri().query());
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let after = match query.from_nonce()? {
        Some(after) => Some(after),
        None => last_event_id,
    };
    let show_anchor = query.has("show-anchor");
    let store = app.store.clone();
    let is_process = tokio::task::spawn_blocking(move || reads::is_process(&store, &process))
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))??;
    if !is_process {
        return Err(ApiError::Read(ReadError::MessageOrProcessNotFound));
    }
    let permit = app
        .live
        .permits
        .try_acquire()
        .ok_or(ApiError::LiveReadsFull)?;
    let subscription = app.live.notifier.subscribe(&process);
    let (events, receiver) = mpsc::channel(STREAM_BUFFER);
    let pump = Pump {
        store: app.store.clone(),
        process,
        cursor: after,
        show_anchor,
        max_bytes: app.http.max_read_memory,
        subscription,
        events,
        live: app.live.clone(),
        _permit: permit,
    };
    tokio::spawn(pump.run());
    metrics::counter!("su_live_streams_total").increment(1);
    let mut response = Response::new(Body::events(receiver));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One stream's task: reads what is durable after its cursor, sends it, sleeps until the
/// next publish. Ends when the client goes, falls behind, the store fails, or the server
/// stops.
struct Pump {
    store: Arc<Store>,
    process: Id,
    cursor: Option<u64>,
    show_anchor: bool,
    max_bytes: usize,
    subscription: Subscription,
    events: mpsc::Sender<Bytes>,
    live: Live,
    _permit: LivePermit,
}

/// Why a stream ended.
enum End {
    Gone,
    TooSlow,
    Failed(ApiError),
}

impl Pump {
    async fn run(mut self) {
        let end = self.serve().await;
        match end {
            End::Gone => {}
            End::TooSlow => {
                metrics::counter!("su_live_streams_dropped_total", "reason" => "slow").increment(1);
                tracing::debug!(
                    process = %b64::encode(&self.process),
                    "stream consumer too slow; disconnected"
                );
            }
            End::Failed(error) => {
                metrics::counter!("su_live_streams_dropped_total", "reason" => "error")
                    .increment(1);
                tracing::warn!(%error, "stream ended by a failed read");
            }
        }
    }

    async fn serve(&mut self) -> End {
        // A first comment sends the head at once.
        if self
            .events
            .send(Bytes::from_static(b": live\n\n"))
            .await
            .is_err()
        {
            return End::Gone;
        }
        loop {
            if let Err(end) = self.send_durable().await {
                return end;
            }
            tokio::select! {
                () = self.subscription.changed() => {}
                () = tokio::time::sleep(HEARTBEAT) => {
                    match self.events.try_send(Bytes::from_static(b": heartbeat\n\n")) {
                        // A full buffer is a consumer behind on events: no heartbeat needed.
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Closed(_)) => return End::Gone,
                    }
                }
                () = self.events.closed() => return End::Gone,
                () = self.live.stopping() => return End::Gone,
            }
        }
    }

    /// Sends every durable entry after the cursor, a batch at a time.
    async fn send_durable(&mut self) -> Result<(), End> {
        loop {
            let (store, process, cursor) = (self.store.clone(), self.process, self.cursor);
            let (show_anchor, max_bytes) = (self.show_anchor, self.max_bytes);
            let edges = tokio::task::spawn_blocking(move || {
                reads::edges_after(
                    &store,
                    &process,
                    cursor,
                    STREAM_BATCH,
                    max_bytes,
                    show_anchor,
                )
            })
            .await
            .map_err(|error| End::Failed(ApiError::Internal(error.to_string())))?
            .map_err(|error| End::Failed(error.into()))?;
            if edges.is_empty() {
                return Ok(());
            }
            for (nonce, edge) in edges {
                let mut event = Vec::with_capacity(edge.len() + 40);
                event.extend_from_slice(format!("id: {nonce}\ndata: ").as_bytes());
                event.extend_from_slice(&edge);
                event.extend_from_slice(b"\n\n");
                match tokio::time::timeout(STREAM_STALL, self.events.send(Bytes::from(event))).await
                {
                    Ok(Ok(())) => self.cursor = Some(nonce),
                    Ok(Err(_)) => return Err(End::Gone),
                    Err(_) => return Err(End::TooSlow),
                }
            }
        }
    }
}
