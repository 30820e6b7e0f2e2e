//! Rate limits: `governor`'s keyed GCRA limiter per key (an account, or a client address),
//! driven by the vault's injected clock so that tests move it like every other deadline.
//!
//! Limits are per vault process (several processes behind a balancer each allow the rate); the
//! guess limit, which is what protects a record, is exact across processes regardless.

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// The vault's clock as governor sees it: the latest time any check was made at (the vault's
/// clock is injected per call; it never goes back here).
#[derive(Clone, Default)]
struct VaultTime(Arc<AtomicI64>);

impl GovernorClock for VaultTime {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Duration::from_secs(self.0.load(Ordering::SeqCst).max(0) as u64)
    }
}

/// Keys whose state is pruned (idle keys dropped) once this many are held.
const PRUNE_AT: usize = 100_000;

/// Rate limits for one kind of key.
pub struct RateLimiter {
    gcra: Option<Gcra<String, HashMapStateStore<String>, VaultTime, NoOpMiddleware<Duration>>>,
    time: VaultTime,
}

impl RateLimiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: RateLimit) -> Self {
        let time = VaultTime::default();
        let gcra = NonZeroU32::new(limit.per_minute).map(|n| {
            Gcra::new(
                Quota::per_minute(n),
                HashMapStateStore::default(),
                time.clone(),
            )
        });
        Self { gcra, time }
    }

    /// Takes one request's worth for `key` at `now` (Unix seconds); when the key is over its
    /// limit, returns how many seconds until it is not.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        let Some(gcra) = &self.gcra else {
            return Ok(());
        };
        self.time.0.fetch_max(now, Ordering::SeqCst);
        if gcra.len() >= PRUNE_AT {
            // Keys that have refilled hold no information: an attacker cycling addresses or
            // accounts cannot grow the map without bound.
            gcra.retain_recent();
        }
        gcra.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.time.now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}
