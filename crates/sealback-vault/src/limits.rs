//! Rate limits: a token bucket per key (an account, or a client address), refilled at a steady
//! rate, driven by the injected clock.
//!
//! Limits are per vault process (several processes behind a balancer each allow the rate); the
//! guess limit, which is what protects a record, is exact across processes regardless.

use crate::keyed::KeyedState;
use std::sync::Mutex;

/// A limit: `per_minute` requests, with bursts up to the same number. Zero turns it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute (and the burst size); 0 = unlimited.
    pub per_minute: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit { per_minute: 0 };
}

struct Bucket {
    tokens: f64,
    updated: i64,
}

/// Token buckets for one kind of key.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<KeyedState<Bucket>>,
}

impl RateLimiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(KeyedState::new("rate limiter")),
        }
    }

    /// Takes one token for `key` at `now` (Unix seconds); when none is left, returns how many
    /// seconds until one is.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        let capacity = self.limit.per_minute as f64;
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // A bucket that has refilled holds no state: it is pruned.
        let bucket = buckets.entry(
            key,
            |b| b.tokens + (now - b.updated) as f64 * per_second < capacity,
            || Bucket {
                tokens: capacity,
                updated: now,
            },
        );
        let elapsed = (now - bucket.updated).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now.max(bucket.updated);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}
