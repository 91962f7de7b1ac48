//! The live schedule's seam: who learns that a process's entries became durable.
//!
//! Whoever makes entries durable (the committer after each synced write, a standby's follower
//! after each replicated page) calls `Notifier::publish(process, nonce)`. Waiting reads and
//! streams `subscribe` to one process and sleep on a `tokio::sync::watch` until its value
//! changes; they then read the store themselves. Nobody polls the store while nothing is
//! written, and a publish for a process nobody watches is one map lookup.
//!
//! The map holds a channel only while someone is subscribed: the last `Subscription` to go
//! removes it. `LivePermits` caps how many waiting reads and streams run at once.

use crate::domain::Id;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Per-process "durable up to nonce N" channels, created on demand.
#[derive(Default)]
pub struct Notifier {
    channels: Mutex<HashMap<Id, watch::Sender<u64>>>,
}

impl Notifier {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Entries of `process` up to `nonce` are durable. Subscribers wake if it is news to them.
    pub fn publish(&self, process: &Id, nonce: u64) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(process) {
            sender.send_if_modified(|durable| {
                // Any publish wakes: a standby's first page may bring nonce 0.
                *durable = (*durable).max(nonce);
                true
            });
        }
    }

    /// Watches `process`: the receiver wakes on every later `publish` for it. Subscribe
    /// before reading the store, so nothing written in between is missed.
    pub fn subscribe(self: &Arc<Self>, process: &Id) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = match channels.get(process) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                channels.insert(*process, sender);
                receiver
            }
        };
        Subscription {
            notifier: self.clone(),
            process: *process,
            receiver: Some(receiver),
        }
    }

    /// Processes someone is watching.
    pub fn watched(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One watcher of one process; the channel goes when its last watcher does.
pub struct Subscription {
    notifier: Arc<Notifier>,
    process: Id,
    receiver: Option<watch::Receiver<u64>>,
}

impl Subscription {
    /// Resolves at the next publish for the process (at once if one came since the last
    /// call). Never resolves if the notifier is gone, which it is not while this exists.
    pub async fn changed(&mut self) {
        match self.receiver.as_mut() {
            Some(receiver) => {
                if receiver.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self
            .notifier
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(self.receiver.take());
        if channels
            .get(&self.process)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.process);
        }
    }
}

/// The cap on waiting reads and streams open at once (`SU_MAX_LIVE_READS`).
#[derive(Clone)]
pub struct LivePermits {
    semaphore: Arc<Semaphore>,
    cap: usize,
}

/// A waiting read's or stream's place under the cap, given back when dropped.
pub type LivePermit = OwnedSemaphorePermit;

impl LivePermits {
    pub fn new(cap: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS))),
            cap,
        }
    }

    /// A place, or `None` when `cap` are taken.
    pub fn try_acquire(&self) -> Option<LivePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }

    /// Places taken now.
    pub fn in_use(&self) -> usize {
        self.cap
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.semaphore.available_permits())
    }
}

/// What the HTTP layer holds for live reads.
#[derive(Clone)]
pub struct Live {
    pub notifier: Arc<Notifier>,
    pub permits: LivePermits,
    /// Turns true when the server stops: streams end and waiting reads answer.
    stop: watch::Receiver<bool>,
}

impl Live {
    pub fn new(notifier: Arc<Notifier>, cap: usize, stop: watch::Receiver<bool>) -> Self {
        Self {
            notifier,
            permits: LivePermits::new(cap),
            stop,
        }
    }

    /// Resolves once the server is stopping (never, if nobody can tell it to).
    pub async fn stopping(&self) {
        let mut stop = self.stop.clone();
        if stop.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_publish_wakes_the_process_s_subscribers_and_the_channel_goes_with_the_last() {
        let notifier = Notifier::new();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        notifier.publish(&a, 3);
        assert_eq!(notifier.watched(), 0, "nobody watches: nothing is kept");
        let mut first = notifier.subscribe(&a);
        let mut second = notifier.subscribe(&a);
        let mut other = notifier.subscribe(&b);
        assert_eq!(notifier.watched(), 2);
        notifier.publish(&a, 5);
        tokio::time::timeout(Duration::from_secs(1), first.changed())
            .await
            .expect("first woke");
        tokio::time::timeout(Duration::from_secs(1), second.changed())
            .await
            .expect("second woke");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.changed())
                .await
                .is_err(),
            "another process's watcher sleeps"
        );
        drop(first);
        assert_eq!(notifier.watched(), 2);
        drop(second);
        assert_eq!(notifier.watched(), 1);
        drop(other);
        assert_eq!(notifier.watched(), 0);
    }

    #[test]
    fn permits_stop_at_the_cap() {
        let permits = LivePermits::new(2);
        let one = permits.try_acquire().expect("one");
        let _two = permits.try_acquire().expect("two");
        assert!(permits.try_acquire().is_none());
        assert_eq!(permits.in_use(), 2);
        drop(one);
        assert!(permits.try_acquire().is_some());
    }
}
