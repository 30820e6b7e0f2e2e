//! Flags suspicious login activity from one client address: a burst of attempts, or guessing
//! against many accounts. Flags go to the audit trail, the log (address and kind only, never an
//! account) and the metrics; they do not block (rate limits do).

use crate::keyed::KeyedState;
use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// When to flag a client address.
#[derive(Clone, Copy, Debug)]
pub struct MonitorOptions {
    /// More login attempts than this within `burst_window` seconds is a burst.
    pub burst_attempts: u32,
    /// Seconds.
    pub burst_window: i64,
    /// Login attempts against more distinct accounts than this within `accounts_window`.
    pub many_accounts: u32,
    /// Seconds.
    pub accounts_window: i64,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self {
            burst_attempts: 30,
            burst_window: 60,
            many_accounts: 5,
            accounts_window: 600,
        }
    }
}

/// What was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Many attempts in a short time.
    Burst,
    /// Attempts against many accounts.
    ManyAccounts,
}

impl Flag {
    /// The name used in the audit trail and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Burst => "burst",
            Flag::ManyAccounts => "many_accounts",
        }
    }
}

#[derive(Default)]
struct Activity {
    attempts: VecDeque<i64>,
    /// (last seen, keyed hash of the account): accounts are not kept in memory as text.
    accounts: VecDeque<(i64, u64)>,
    burst_flagged: Option<i64>,
    accounts_flagged: Option<i64>,
}

/// Watches login attempts per client address.
pub struct Monitor {
    options: MonitorOptions,
    hasher: RandomState,
    sources: Mutex<KeyedState<Activity>>,
}

impl Monitor {
    /// A monitor with these thresholds.
    pub fn new(options: MonitorOptions) -> Self {
        Self {
            options,
            hasher: RandomState::new(),
            sources: Mutex::new(KeyedState::new("audit monitor")),
        }
    }

    /// Notes a login attempt; returns the flags this attempt raised (each at most once per
    /// window and address).
    pub fn observe(&self, source: &str, account: &str, now: i64) -> Vec<Flag> {
        let o = self.options;
        let account = self.hasher.hash_one(account);
        let horizon = o.burst_window.max(o.accounts_window);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        // An address idle for longer than both windows holds nothing that matters: pruned.
        let a = sources.entry(
            source,
            |a: &Activity| {
                a.attempts.back().is_some_and(|t| now - t < horizon)
                    || a.accounts.back().is_some_and(|(t, _)| now - t < horizon)
            },
            Activity::default,
        );
        let mut raised = Vec::new();

        a.attempts.push_back(now);
        while a
            .attempts
            .front()
            .is_some_and(|t| now - t >= o.burst_window)
        {
            a.attempts.pop_front();
        }
        // Only the threshold matters: keep no more than one over it.
        while a.attempts.len() > o.burst_attempts as usize + 1 {
            a.attempts.pop_front();
        }
        if a.attempts.len() > o.burst_attempts as usize
            && a.burst_flagged.is_none_or(|t| now - t >= o.burst_window)
        {
            a.burst_flagged = Some(now);
            raised.push(Flag::Burst);
        }

        a.accounts.retain(|(_, h)| *h != account);
        a.accounts.push_back((now, account));
        while a
            .accounts
            .front()
            .is_some_and(|(t, _)| now - t >= o.accounts_window)
        {
            a.accounts.pop_front();
        }
        while a.accounts.len() > o.many_accounts as usize + 1 {
            a.accounts.pop_front();
        }
        if a.accounts.len() > o.many_accounts as usize
            && a.accounts_flagged
                .is_none_or(|t| now - t >= o.accounts_window)
        {
            a.accounts_flagged = Some(now);
            raised.push(Flag::ManyAccounts);
        }
        raised
    }
}
