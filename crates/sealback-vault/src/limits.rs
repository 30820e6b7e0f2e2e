//! Rate limits: a token bucket per key (an account, or a client address), refilled at a steady
//! rate, driven by the injected clock.
//!
//! Limits are per vault process (several processes behind a balancer each allow the rate); the
//! guess limit, which is what protects a record, is exact across processes regardless.

use std::collections::HashMap;
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

/// Buckets are pruned of the ones that have refilled (they hold no state) when there are this
/// many, and then again at twice what is left, so pruning costs O(1) per request amortised.
const PRUNE_FIRST: usize = 100_000;
/// More live buckets than this (a flood from as many addresses) are all forgotten.
const HARD_CAP: usize = 1_000_000;

struct Buckets {
    map: HashMap<String, Bucket>,
    prune_at: usize,
}

/// Token buckets for one kind of key.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                prune_at: PRUNE_FIRST,
            }),
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
        let mut state = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if state.map.len() >= state.prune_at {
            state
                .map
                .retain(|_, b| b.tokens + (now - b.updated) as f64 * per_second < capacity);
            if state.map.len() > HARD_CAP {
                tracing::warn!("rate limiter: too many live buckets; forgetting them");
                state.map.clear();
            }
            state.prune_at = PRUNE_FIRST.max(2 * state.map.len());
        }
        let bucket = state.map.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
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
