//! The delivery loop: loads rows past a cursor into a bounded window, keeps up to
//! `concurrency` uploads in flight, backs failing rows off one by one, probes a failing
//! bundler once a second, and keeps the queue depth as a counter (one count at start).

use super::rows::{Key, Rows};
use super::upload::{CacheQueue, UploadError, Uploader};
use super::{Command, OutboxConfig, OutboxError, RowStatus, RowView, view_of};
use crate::domain::Id;
use crate::store::{OutboxRow, Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How often a failing bundler is probed, and how long without a success makes it failing.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Rows read per scan.
const SCAN_BATCH: usize = 1024;

struct Finished {
    key: Key,
    probe: bool,
    result: Result<(), UploadError>,
}

pub(super) struct Engine {
    store: Arc<Store>,
    config: OutboxConfig,
    uploader: Uploader,
    cache: Option<CacheQueue>,
    commands: mpsc::Receiver<Command>,
    rows: Rows,
    in_flight: JoinSet<Finished>,
    window: usize,
    /// The greatest key loaded into the window: rows at or before it are loaded or gone.
    loaded: Key,
    /// The greatest key counted in `depth`: rows at or before it are counted.
    counted: Key,
    depth: u64,
    next_scan: Instant,
    probe_in_flight: bool,
    next_probe: Instant,
    last_success: Option<Instant>,
    failed_since_success: bool,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, OutboxError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn attempt(
    store: Arc<Store>,
    uploader: Uploader,
    cache: Option<CacheQueue>,
    key: Key,
    id: Id,
) -> Result<(), UploadError> {
    let bytes = tokio::task::spawn_blocking(move || store.outbox_item(&key, &id))
        .await??
        .ok_or(UploadError::MissingItem)?;
    let bytes = Bytes::from(bytes);
    if let Some(cache) = cache {
        cache.offer(bytes.clone());
    }
    uploader.post(bytes).await
}

impl Engine {
    pub(super) fn new(
        store: Arc<Store>,
        config: OutboxConfig,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Self, OutboxError> {
        let uploader = Uploader::new(&config.bundler_url, config.timeout, config.concurrency)?;
        let cache = match &config.cache_url {
            Some(url) => Some(CacheQueue::start(url, config.timeout)?),
            None => None,
        };
        let now = Instant::now();
        Ok(Self {
            rows: Rows::new(config.first_backoff, config.max_backoff),
            window: (config.concurrency * 32).max(4096),
            store,
            uploader,
            cache,
            commands,
            in_flight: JoinSet::new(),
            loaded: Vec::new(),
            counted: Vec::new(),
            depth: 0,
            next_scan: now,
            probe_in_flight: false,
            next_probe: now,
            last_success: None,
            failed_since_success: false,
            config,
        })
    }

    pub(super) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        // The one full count; from here on the depth is kept by counting.
        let store = self.store.clone();
        match blocking(move || store.count_outbox()).await {
            Ok((depth, last)) => {
                self.depth = depth;
                self.counted = last.unwrap_or_default();
            }
            Err(error) => {
                tracing::error!(%error, "counting the outbox failed; its depth counts from 0")
            }
        }
        tracing::info!(
            depth = self.depth,
            concurrency = self.config.concurrency,
            "outbox started"
        );
        loop {
            let now = Instant::now();
            if now >= self.next_scan {
                if let Err(error) = self.scan().await {
                    tracing::error!(%error, "outbox scan failed");
                    self.next_scan = Instant::now() + self.config.idle;
                }
            }
            self.launch(Instant::now());
            self.publish();
            let mut wake = self.next_scan;
            if let Some(due) = self.rows.next_wake() {
                wake = wake.min(due);
            }
            if self.wants_probe() {
                wake = wake.min(self.next_probe);
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok(done) => self.finish(done),
                        Err(error) => tracing::error!(%error, "upload task failed"),
                    }
                }
                Some(command) = self.commands.recv() => self.command(command).await,
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        // In-flight uploads are abandoned; their rows stay queued and go out next time.
        self.in_flight.abort_all();
    }

    /// Loads rows past `loaded` while the window has room, or only counts new rows when
    /// it is full, so the depth stays exact without rescanning.
    async fn scan(&mut self) -> Result<(), OutboxError> {
        let room = self.window.saturating_sub(self.rows.len());
        let loading = room > 0;
        let (from, max) = if loading {
            (self.loaded.clone(), room.min(SCAN_BATCH))
        } else {
            (self.counted.clone(), SCAN_BATCH)
        };
        let scan = {
            let store = self.store.clone();
            blocking(move || store.scan_outbox_after(&from, max)).await?
        };
        let found = scan.rows.len() + scan.corrupt.len();
        let now = Instant::now();
        for key in &scan.corrupt {
            if *key > self.counted {
                self.depth += 1;
                tracing::warn!(key = %super::encode_key(key), "corrupt outbox row skipped; drop it with `su outbox drop`");
            }
        }
        for row in scan.rows {
            if row.key > self.counted {
                self.depth += 1;
            }
            if loading {
                self.rows.insert(row, now);
            }
        }
        if let Some(last) = scan.last_key {
            if last > self.counted {
                self.counted = last.clone();
            }
            if loading {
                self.loaded = last;
            }
        }
        self.next_scan = if found < max {
            now + self.config.idle
        } else {
            now
        };
        Ok(())
    }

    fn spawn(&mut self, key: Key, id: Id, attempt_number: u32, probe: bool) {
        let (store, uploader) = (self.store.clone(), self.uploader.clone());
        // The cache gets one copy per row and run, from the row's first attempt.
        let cache = (attempt_number == 1).then(|| self.cache.clone()).flatten();
        let row_key = key.clone();
        self.in_flight.spawn(async move {
            let result = attempt(store, uploader, cache, row_key, id).await;
            Finished { key, probe, result }
        });
    }

    fn wants_probe(&self) -> bool {
        let quiet = self
            .last_success
            .is_none_or(|at| at.elapsed() >= PROBE_EVERY);
        self.failed_since_success && quiet && !self.probe_in_flight
    }

    fn launch(&mut self, now: Instant) {
        while self.in_flight.len() < self.config.concurrency {
            let Some((key, id, attempt_number)) = self.rows.next_due(now) else {
                break;
            };
            self.spawn(key, id, attempt_number, false);
        }
        if self.wants_probe() && now >= self.next_probe && self.rows.backing_off(now) {
            if let Some((key, id, attempt_number)) = self.rows.pick_probe(now) {
                self.probe_in_flight = true;
                self.next_probe = now + PROBE_EVERY;
                self.spawn(key, id, attempt_number, true);
            }
        }
    }

    fn finish(&mut self, done: Finished) {
        let now = Instant::now();
        if done.probe {
            self.probe_in_flight = false;
        }
        match done.result {
            Ok(()) => {
                let quiet = self
                    .last_success
                    .is_none_or(|at| now.duration_since(at) >= PROBE_EVERY);
                if self.failed_since_success && quiet {
                    let released = self.rows.release(None, now);
                    tracing::info!(
                        released = released.len(),
                        "the bundler accepts uploads again"
                    );
                }
                self.last_success = Some(now);
                self.failed_since_success = false;
                metrics::counter!("su_outbox_delivered_total").increment(1);
                if self.rows.remove(&done.key) {
                    self.depth = self.depth.saturating_sub(1);
                    let (store, key) = (self.store.clone(), done.key);
                    // The delete is not awaited: a lost delete is one more upload.
                    tokio::task::spawn_blocking(move || {
                        if let Err(error) = store.delete_outbox_rows(&[key]) {
                            tracing::error!(%error, "deleting a delivered outbox row failed");
                        }
                    });
                }
            }
            Err(error) => {
                metrics::counter!("su_outbox_failures_total").increment(1);
                let reason = error.to_string();
                let pause = self.rows.failed(&done.key, reason, now);
                let key = super::encode_key(&done.key);
                if matches!(error, UploadError::Redirect { .. }) {
                    tracing::warn!(%key, %error, "upload redirected");
                } else if !self.failed_since_success {
                    tracing::warn!(%key, %error, "upload failed; failing rows back off and one probes every second");
                } else {
                    tracing::debug!(%key, %error, retry_in = ?pause, "upload failed");
                }
                if !self.failed_since_success {
                    self.next_probe = now + PROBE_EVERY;
                }
                self.failed_since_success = true;
            }
        }
    }

    fn publish(&self) {
        metrics::gauge!("su_outbox_queue_depth").set(self.depth as f64);
        metrics::gauge!("su_outbox_in_flight").set(self.in_flight.len() as f64);
        let age = self
            .rows
            .oldest_enqueued_ms()
            .map_or(0.0, |ms| now_ms().saturating_sub(ms) as f64 / 1000.0);
        metrics::gauge!("su_outbox_oldest_age_seconds").set(age);
    }

    fn is_counted(&self, key: &[u8]) -> bool {
        key <= self.counted.as_slice()
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Snapshot(reply) => {
                let now = Instant::now();
                let views = self
                    .rows
                    .iter()
                    .map(|(key, state)| {
                        let mut view = view_of(&OutboxRow {
                            key: key.clone(),
                            id: state.id,
                            enqueued_ms: state.enqueued_ms,
                        });
                        view.attempts = state.attempts;
                        view.last_error = state.last_error.clone();
                        view.in_flight = state.due.is_none();
                        view.retry_in_secs = state
                            .due
                            .filter(|due| *due > now)
                            .map(|due| due.duration_since(now).as_secs_f64());
                        (key.clone(), view)
                    })
                    .collect::<Vec<(Key, RowView)>>();
                let _ = reply.send(views);
            }
            Command::Retry(id, reply) => {
                let released = self.rows.release(id.as_ref(), Instant::now());
                tracing::info!(released = released.len(), "operator retry: backoff reset");
                let _ = reply.send(released);
            }
            Command::Drop(keys, reply) => {
                let _ = reply.send(self.drop_rows(keys).await);
            }
            Command::Enqueue(ids, reply) => {
                let _ = reply.send(self.enqueue(ids).await);
            }
            Command::AddRow(write, reply) => {
                let _ = reply.send(self.add_row(write).await);
            }
            Command::Status(keys, reply) => {
                let _ = reply.send(self.status(keys).await);
            }
            Command::Depth(reply) => {
                let _ = reply.send(self.depth);
            }
        }
    }

    async fn drop_rows(&mut self, keys: Vec<Key>) -> Result<usize, OutboxError> {
        let mut existing = 0;
        for key in keys {
            let present = {
                let (store, key) = (self.store.clone(), key.clone());
                blocking(move || store.delete_outbox_rows(&[key])).await?
            };
            self.rows.remove(&key);
            if present == 1 {
                existing += 1;
                if self.is_counted(&key) {
                    self.depth = self.depth.saturating_sub(1);
                }
                tracing::warn!(key = %super::encode_key(&key), "outbox row dropped by an operator");
            }
        }
        Ok(existing)
    }

    async fn enqueue(&mut self, ids: Vec<Id>) -> Result<Vec<OutboxRow>, OutboxError> {
        let rows = {
            let store = self.store.clone();
            blocking(move || store.requeue_outbox(&ids, now_ms())).await?
        };
        self.take_in(&rows);
        Ok(rows)
    }

    async fn add_row(&mut self, write: super::RowWrite) -> Result<OutboxRow, OutboxError> {
        let row = {
            let store = self.store.clone();
            blocking(move || write(&store)).await?
        };
        self.take_in(std::slice::from_ref(&row));
        Ok(row)
    }

    /// Accounts for rows just written beside the scans: those behind a cursor are counted
    /// and loaded here, the others are found (and counted) by the next scan.
    fn take_in(&mut self, rows: &[OutboxRow]) {
        let now = Instant::now();
        for row in rows {
            if self.is_counted(&row.key) {
                self.depth += 1;
            }
            if row.key <= self.loaded {
                self.rows.insert(row.clone(), now);
            }
        }
        self.next_scan = now;
    }

    async fn status(&self, keys: Vec<Key>) -> Result<Vec<RowStatus>, OutboxError> {
        let unknown: Vec<Key> = keys
            .iter()
            .filter(|key| self.rows.get(key).is_none())
            .cloned()
            .collect();
        let stored = {
            let store = self.store.clone();
            blocking(move || {
                let mut stored = std::collections::HashSet::new();
                for key in unknown {
                    if store.outbox_row(&key)?.is_some() {
                        stored.insert(key);
                    }
                }
                Ok(stored)
            })
            .await?
        };
        Ok(keys
            .iter()
            .map(|key| match self.rows.get(key) {
                Some(state) => RowStatus::Queued {
                    attempts: state.attempts,
                    last_error: state.last_error.clone(),
                },
                None if stored.contains(key) => RowStatus::Queued {
                    attempts: 0,
                    last_error: None,
                },
                None => RowStatus::Gone,
            })
            .collect())
    }
}
