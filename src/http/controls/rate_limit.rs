//! Write rate limits: one token bucket per client (an IP, or an owner address) in a map of
//! bounded size. When the map is full the least recently seen client is forgotten: its
//! bucket has refilled the longest, and a full bucket is what a new client starts with.
//! Pure: the caller passes the time in.

use crate::config::RateLimit;
use lru::LruCache;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// One client's tokens, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of `burst` tokens refilled at `per_minute`, for at most `capacity` clients.
pub(crate) struct RateLimiter<K: Hash + Eq> {
    buckets: LruCache<K, Bucket>,
    per_second: f64,
    burst: f64,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub(crate) fn new(limit: RateLimit, capacity: usize) -> Self {
        Self {
            buckets: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
            per_second: f64::from(limit.per_minute.max(1)) / 60.0,
            burst: f64::from(limit.burst.max(1)),
        }
    }

    /// The bucket's tokens at `now`, refilled since it was last seen.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    /// Takes one token of `client`'s bucket at `now`, or says how long until one is there.
    pub(crate) fn take(&mut self, client: K, now: Instant) -> Result<(), Duration> {
        let tokens = match self.buckets.peek(&client) {
            Some(bucket) => self.refilled(bucket, now),
            None => {
                self.make_room(now);
                self.burst
            }
        };
        if tokens >= 1.0 {
            self.buckets.put(
                client,
                Bucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
            );
            return Ok(());
        }
        self.buckets.put(client, Bucket { tokens, at: now });
        Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
    }

    /// Forgets the least recently seen client when the map is full, counting it when its
    /// bucket was not full yet (the limit then forgets something: the map is too small).
    fn make_room(&mut self, now: Instant) {
        if self.buckets.len() < self.buckets.cap().get() {
            return;
        }
        if let Some((_, oldest)) = self.buckets.pop_lru() {
            if self.refilled(&oldest, now) < self.burst {
                metrics::counter!("su_rate_limit_forgotten_total").increment(1);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// Whole seconds a client is told to wait (`Retry-After`), at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32, capacity: usize) -> RateLimiter<u32> {
        RateLimiter::new(RateLimit { per_minute, burst }, capacity)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut limiter = limiter(60, 3, 10);
        for _ in 0..3 {
            assert_eq!(limiter.take(1, start), Ok(()));
        }
        let wait = limiter.take(1, start).unwrap_err();
        assert_eq!(retry_after_secs(wait), 1);
        // Another client has its own bucket.
        assert_eq!(limiter.take(2, start), Ok(()));
        // One token per second at 60 per minute.
        assert_eq!(limiter.take(1, start + Duration::from_millis(1000)), Ok(()));
        assert!(
            limiter
                .take(1, start + Duration::from_millis(1500))
                .is_err()
        );
        // The bucket never holds more than the burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.take(1, later), Ok(()));
        }
        assert!(limiter.take(1, later).is_err());
    }

    #[test]
    fn retry_after_says_when_a_token_is_back() {
        let start = Instant::now();
        let mut limiter = limiter(6, 1, 10);
        assert_eq!(limiter.take(7, start), Ok(()));
        let wait = limiter.take(7, start).unwrap_err();
        assert_eq!(retry_after_secs(wait), 10);
        let wait = limiter.take(7, start + Duration::from_secs(4)).unwrap_err();
        assert_eq!(retry_after_secs(wait), 6);
        assert_eq!(limiter.take(7, start + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn refused_attempts_do_not_dig_a_deeper_hole() {
        let start = Instant::now();
        let mut limiter = limiter(60, 1, 10);
        assert_eq!(limiter.take(1, start), Ok(()));
        for _ in 0..100 {
            assert!(limiter.take(1, start).is_err());
        }
        assert_eq!(limiter.take(1, start + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn the_map_stays_bounded_and_forgets_the_least_recent_client() {
        let start = Instant::now();
        let mut limiter = limiter(60, 1, 100);
        for client in 0..10_000 {
            let _ = limiter.take(client, start);
        }
        assert_eq!(limiter.len(), 100);
        // The most recent clients are still limited; the first ones were forgotten.
        assert!(limiter.take(9_999, start).is_err());
        assert_eq!(limiter.take(0, start), Ok(()));
    }
}
