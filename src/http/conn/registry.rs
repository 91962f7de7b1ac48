//! Every open connection, what it is doing and since when: the one place that decides which
//! connection has overstayed (a head too slow, a keep-alive too long) and which one to close
//! to make room for another.
//!
//! A connection is in one of these phases. `Fresh`: accepted, nothing read yet, so no HTTP
//! parser (and its 16 KiB of buffers) exists for it. `AwaitingHead`: a head is under way
//! (deadline: the header timeout, from the connection's start or from the first byte of a
//! later request). `Busy`: a request is being served, body included (no deadline here: the
//! body reader enforces its own, and handlers bound their own work). `Idle`: between
//! requests (deadline: the keep-alive timeout, renewed while a response is still being
//! written). `Closed`: the registry let it go; no later change counts.
//! Connections that hold a parser without serving a request (`AwaitingHead` and `Idle`) are
//! "waiting"; beyond `max_waiting` of them the longest-waiting one is closed, which bounds
//! their memory. Only the connection's own task moves it between the live phases; the
//! registry only reads them or closes, so a phase and its start share one atomic word.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Fresh,
    AwaitingHead,
    Busy,
    Idle,
    Closed,
}

impl Phase {
    fn bits(self) -> u64 {
        match self {
            Self::Fresh => 0,
            Self::AwaitingHead => 1,
            Self::Busy => 2,
            Self::Idle => 3,
            Self::Closed => 4,
        }
    }

    fn from_bits(bits: u64) -> Self {
        match bits & 7 {
            0 => Self::Fresh,
            1 => Self::AwaitingHead,
            2 => Self::Busy,
            3 => Self::Idle,
            _ => Self::Closed,
        }
    }

    /// Holds a parser while serving nothing.
    fn is_waiting(self) -> bool {
        matches!(self, Self::AwaitingHead | Self::Idle)
    }

    /// May be closed for room: anything but a request in flight.
    fn is_evictable(self) -> bool {
        matches!(self, Self::Fresh | Self::AwaitingHead | Self::Idle)
    }
}

/// Why the registry closed a connection (the `reason` label of
/// `su_http_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    HeaderTimeout,
    IdleTimeout,
    /// The longest-idle connection, closed to make room for a new one.
    Evicted,
    /// The longest-waiting connection, closed to keep the waiting ones under their cap.
    TooManyWaiting,
}

impl CloseReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "evicted",
            Self::TooManyWaiting => "too_many_waiting",
        }
    }
}

/// One connection's phase, shared by its task (which changes it) and the registry (which
/// reads it and may close it).
pub(crate) struct Tracker {
    /// `millis since the registry's epoch << 3 | phase`.
    state: AtomicU64,
    epoch: Instant,
    /// The registry's count of waiting connections.
    waiting: Arc<AtomicUsize>,
    close: Notify,
}

/// What a read of request bytes meant for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadEffect {
    /// The first bytes of a new request after an idle spell.
    NewHead,
    /// More of a head already under way (or the first bytes of a fresh connection).
    SameHead,
    /// Bytes read while a request is served (its body, or pipelined requests).
    WhileBusy,
}

impl Tracker {
    fn new(epoch: Instant, waiting: Arc<AtomicUsize>) -> Self {
        let since = epoch.elapsed().as_millis() as u64;
        Self {
            state: AtomicU64::new((since << 3) | Phase::Fresh.bits()),
            epoch,
            waiting,
            close: Notify::new(),
        }
    }

    fn now_millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Moves to `phase` (keeping the start time when `keep_since`), unless closed; keeps the
    /// waiting count. Returns the phase it left.
    fn move_to(&self, phase: Phase, keep_since: bool) -> Phase {
        let now = self.now_millis();
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let old = Phase::from_bits(current);
            if old == Phase::Closed {
                return old;
            }
            let since = if keep_since { current >> 3 } else { now };
            let next = (since << 3) | phase.bits();
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    match (old.is_waiting(), phase.is_waiting()) {
                        (false, true) => {
                            self.waiting.fetch_add(1, Ordering::AcqRel);
                        }
                        (true, false) => {
                            self.waiting.fetch_sub(1, Ordering::AcqRel);
                        }
                        _ => {}
                    }
                    return old;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The phase and the millisecond (since the epoch) it began.
    pub(crate) fn load(&self) -> (Phase, u64) {
        let packed = self.state.load(Ordering::Acquire);
        (Phase::from_bits(packed), packed >> 3)
    }

    /// A fresh connection got its first bytes and a parser; its head clock keeps running
    /// from the connection's start.
    pub(crate) fn parser_created(&self) {
        if self.load().0 == Phase::Fresh {
            self.move_to(Phase::AwaitingHead, true);
        }
    }

    /// The connection read request bytes.
    pub(crate) fn bytes_read(&self) -> ReadEffect {
        match self.load().0 {
            Phase::Idle => {
                self.move_to(Phase::AwaitingHead, false);
                ReadEffect::NewHead
            }
            Phase::Busy => ReadEffect::WhileBusy,
            Phase::Fresh | Phase::AwaitingHead | Phase::Closed => ReadEffect::SameHead,
        }
    }

    /// The connection wrote response bytes: an idle connection whose response is still
    /// draining to a slow reader keeps its keep-alive time from the last write.
    pub(crate) fn bytes_written(&self) {
        if self.load().0 == Phase::Idle {
            self.move_to(Phase::Idle, false);
        }
    }

    /// Closes the connection for good: it leaves the waiting count and is told to close.
    fn close(&self) {
        self.move_to(Phase::Closed, true);
        self.close.notify_one();
    }

    /// Resolves once the registry decided to close this connection.
    pub(crate) async fn closed(&self) {
        self.close.notified().await;
    }
}

/// Marks the end of a request (answered, or dropped with its connection).
pub(crate) struct RequestGuard {
    tracker: Arc<Tracker>,
    registry: Arc<Registry>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.tracker.move_to(Phase::Idle, false) == Phase::Busy {
            self.registry.keep_waiting_under_cap();
        }
    }
}

/// The time limits the registry enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub header: Duration,
    pub keep_alive: Duration,
}

/// How many connections the registry keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Open connections.
    pub open: usize,
    /// Waiting connections (a parser held, no request served).
    pub waiting: usize,
}

/// All open connections.
pub(crate) struct Registry {
    epoch: Instant,
    deadlines: Deadlines,
    caps: Caps,
    next_id: AtomicU64,
    waiting: Arc<AtomicUsize>,
    open: Mutex<HashMap<u64, Arc<Tracker>>>,
}

impl Registry {
    pub(crate) fn new(deadlines: Deadlines, caps: Caps) -> Self {
        Self {
            epoch: Instant::now(),
            deadlines,
            caps: Caps {
                open: caps.open.max(1),
                waiting: caps.waiting.max(1),
            },
            next_id: AtomicU64::new(0),
            waiting: Arc::new(AtomicUsize::new(0)),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        // A panic while the map is held leaves it consistent: keep using it.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.connections().len()
    }

    /// Connections holding a parser while serving no request.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Adds a connection, in phase `Fresh`.
    pub(crate) fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracker = Arc::new(Tracker::new(self.epoch, self.waiting.clone()));
        let mut open = self.connections();
        open.insert(id, tracker.clone());
        metrics::gauge!("su_http_connections").set(open.len() as f64);
        Registration {
            id,
            tracker,
            registry: self.clone(),
        }
    }

    fn remove(&self, id: u64) {
        let mut open = self.connections();
        if let Some(tracker) = open.remove(&id) {
            tracker.move_to(Phase::Closed, true);
            metrics::gauge!("su_http_connections").set(open.len() as f64);
        }
    }

    /// True when a new connection needs room made for it first.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.caps.open
    }

    /// Closes up to `count` of the connections, among those `eligible`, whose phase began
    /// longest ago; returns how many it closed.
    fn close_oldest(
        &self,
        count: usize,
        eligible: impl Fn(Phase) -> bool,
        reason: CloseReason,
    ) -> usize {
        let mut open = self.connections();
        let mut candidates: Vec<(u64, u64)> = open
            .iter()
            .filter_map(|(id, tracker)| {
                let (phase, since) = tracker.load();
                eligible(phase).then_some((since, *id))
            })
            .collect();
        let count = count.min(candidates.len());
        if count == 0 {
            return 0;
        }
        candidates.select_nth_unstable(count - 1);
        for (_, id) in &candidates[..count] {
            if let Some(tracker) = open.remove(id) {
                tracker.close();
            }
        }
        metrics::gauge!("su_http_connections").set(open.len() as f64);
        metrics::counter!("su_http_connections_closed_total", "reason" => reason.label())
            .increment(count as u64);
        count
    }

    /// Closes the connections that have been fresh, idle or awaiting a head the longest (up
    /// to `count` of them; a busy one is never chosen), and says how many it closed.
    pub(crate) fn evict_longest_idle(&self, count: usize) -> usize {
        self.close_oldest(count, Phase::is_evictable, CloseReason::Evicted)
    }

    /// Closes the longest-waiting connections beyond the waiting cap.
    pub(crate) fn keep_waiting_under_cap(&self) {
        let excess = self.waiting().saturating_sub(self.caps.waiting);
        if excess > 0 {
            self.close_oldest(excess, Phase::is_waiting, CloseReason::TooManyWaiting);
        }
    }

    /// Closes every connection past its deadline; returns how many.
    pub(crate) fn expire(&self) -> usize {
        self.expire_at(self.epoch.elapsed().as_millis() as u64)
    }

    /// `expire` as of `now`, in milliseconds since the epoch.
    fn expire_at(&self, now: u64) -> usize {
        let header = self.deadlines.header.as_millis() as u64;
        let keep_alive = self.deadlines.keep_alive.as_millis() as u64;
        let mut open = self.connections();
        let mut expired = Vec::new();
        for (id, tracker) in open.iter() {
            let reason = match tracker.load() {
                (Phase::Fresh | Phase::AwaitingHead, since) if now >= since + header => {
                    CloseReason::HeaderTimeout
                }
                (Phase::Idle, since) if now >= since + keep_alive => CloseReason::IdleTimeout,
                _ => continue,
            };
            expired.push((*id, reason));
        }
        for (id, reason) in &expired {
            if let Some(tracker) = open.remove(id) {
                tracker.close();
                metrics::counter!("su_http_connections_closed_total", "reason" => reason.label())
                    .increment(1);
                tracing::debug!(reason = reason.label(), "connection closed");
            }
        }
        if !expired.is_empty() {
            metrics::gauge!("su_http_connections").set(open.len() as f64);
        }
        expired.len()
    }

    /// How often `expire` should run: a tenth of the shortest deadline, between 10 ms and
    /// 1 s, so a connection is closed at most that late.
    pub(crate) fn tick(&self) -> Duration {
        (self.deadlines.header.min(self.deadlines.keep_alive) / 10)
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// A connection's place in the registry; dropping it removes the connection.
pub(crate) struct Registration {
    id: u64,
    tracker: Arc<Tracker>,
    registry: Arc<Registry>,
}

impl Registration {
    pub(crate) fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// The first bytes came and a parser now exists: the connection is waiting, within the
    /// waiting cap.
    pub(crate) fn parser_created(&self) {
        self.tracker.parser_created();
        self.registry.keep_waiting_under_cap();
    }

    /// What starts requests on this connection, for its service.
    pub(crate) fn request_starter(&self) -> RequestStarter {
        RequestStarter {
            tracker: self.tracker.clone(),
            registry: self.registry.clone(),
        }
    }
}

/// Starts requests on a connection from the service (which outlives no registration).
#[derive(Clone)]
pub(crate) struct RequestStarter {
    tracker: Arc<Tracker>,
    registry: Arc<Registry>,
}

impl RequestStarter {
    /// A request head was parsed; the connection is busy until the guard is dropped.
    pub(crate) fn begin_request(&self) -> RequestGuard {
        self.tracker.move_to(Phase::Busy, false);
        RequestGuard {
            tracker: self.tracker.clone(),
            registry: self.registry.clone(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(waiting: usize) -> Arc<Registry> {
        Arc::new(Registry::new(
            Deadlines {
                header: Duration::from_millis(40),
                keep_alive: Duration::from_millis(80),
            },
            Caps { open: 3, waiting },
        ))
    }

    /// A connection that has served one request and is idle.
    fn idle(registry: &Arc<Registry>) -> Registration {
        let connection = registry.register();
        connection.parser_created();
        drop(connection.request_starter().begin_request());
        connection
    }

    #[test]
    fn phases_follow_reads_requests_and_answers() {
        let registry = registry(8);
        let connection = registry.register();
        let tracker = connection.tracker();
        assert_eq!(tracker.load().0, Phase::Fresh);
        assert_eq!(registry.waiting(), 0, "a fresh connection holds no parser");
        connection.parser_created();
        assert_eq!(tracker.load().0, Phase::AwaitingHead);
        assert_eq!(registry.waiting(), 1);
        assert_eq!(tracker.bytes_read(), ReadEffect::SameHead);
        let guard = connection.request_starter().begin_request();
        assert_eq!(registry.waiting(), 0, "a busy connection is not waiting");
        assert_eq!(tracker.bytes_read(), ReadEffect::WhileBusy);
        drop(guard);
        assert_eq!(tracker.load().0, Phase::Idle);
        assert_eq!(registry.waiting(), 1);
        assert_eq!(tracker.bytes_read(), ReadEffect::NewHead);
        assert_eq!(tracker.load().0, Phase::AwaitingHead);
        drop(connection);
        assert_eq!(registry.waiting(), 0, "a closed connection is not waiting");
    }

    #[test]
    fn a_slow_head_and_a_long_idle_spell_expire_but_a_busy_connection_does_not() {
        let registry = registry(8);
        let head = registry.register();
        let idle = idle(&registry);
        let busy = registry.register();
        let _request = busy.request_starter().begin_request();
        let started: Vec<u64> = [&head, &idle, &busy]
            .iter()
            .map(|connection| connection.tracker().load().1)
            .collect();
        let (earliest, latest) = (started[0], started[2]);
        assert_eq!(registry.expire_at(earliest + 39), 0, "nothing is due yet");
        assert_eq!(
            registry.expire_at(latest + 50),
            1,
            "only the head is due (40 ms)"
        );
        assert_eq!(registry.len(), 2);
        assert_eq!(
            registry.expire_at(latest + 90),
            1,
            "then the idle one (80 ms)"
        );
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.waiting(), 0);
        assert_eq!(registry.expire_at(latest + 1_000_000), 0);
        drop(head);
        assert_eq!(registry.len(), 1, "the busy connection stays");
    }

    #[test]
    fn eviction_takes_the_longest_idle_and_never_a_busy_one() {
        let registry = registry(8);
        let busy = registry.register();
        let _request = busy.request_starter().begin_request();
        std::thread::sleep(Duration::from_millis(5));
        let older = idle(&registry);
        std::thread::sleep(Duration::from_millis(5));
        let newer = registry.register();
        assert!(registry.is_full());
        assert_eq!(registry.evict_longest_idle(1), 1);
        let open = registry.connections();
        assert!(open.contains_key(&busy.id));
        assert!(!open.contains_key(&older.id), "the longest idle goes first");
        assert!(open.contains_key(&newer.id));
        drop(open);
        let _request = newer.request_starter().begin_request();
        assert_eq!(registry.evict_longest_idle(8), 0, "nothing idle is left");
    }

    #[test]
    fn beyond_the_waiting_cap_the_longest_waiting_connection_is_closed() {
        let registry = registry(1);
        let first = idle(&registry);
        std::thread::sleep(Duration::from_millis(5));
        let fresh = registry.register();
        assert_eq!(registry.len(), 2, "a fresh connection does not count");
        let second = idle(&registry);
        assert_eq!(registry.waiting(), 1);
        let open = registry.connections();
        assert!(!open.contains_key(&first.id), "the longest waiting goes");
        assert!(open.contains_key(&second.id) && open.contains_key(&fresh.id));
    }

    #[tokio::test]
    async fn a_closed_connection_is_told() {
        let registry = registry(1);
        let connection = registry.register();
        registry.evict_longest_idle(1);
        tokio::time::timeout(Duration::from_secs(1), connection.tracker().closed())
            .await
            .expect("the eviction reaches the connection");
    }
}
