//! Automatic backups: when the next one is due, and whether the power supply allows it now.
//!
//! The rule (SPEC §14): a backup is due one period after the newest snapshot this device made
//! (daily 24 h, weekly 7 days, monthly 30 days), or at once when it has made none. With "only
//! on AC power", a due backup waits while the machine runs on battery; when the platform does
//! not say (no `Mains` supply under `/sys/class/power_supply`, or not Linux), it is not
//! blocked, and [`Power::Unknown`] lets the front end say so.
//!
//! The clock is injected ([`TimeSource`]): `sealback ui` and `sealback schedule` use the
//! system's, tests a [`ManualClock`] they move forward, so a scheduled backup fires without
//! waiting. [`Waker`] lets a test (or a settings change) make the loop look again at once.

use crate::repo::Repository;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// How often automatic backups run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// No automatic backups.
    #[default]
    Off,
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
    /// Every 30 days.
    Monthly,
}

impl Frequency {
    /// The time between backups; `None` when off.
    pub fn period_ns(self) -> Option<i64> {
        match self {
            Frequency::Off => None,
            Frequency::Daily => Some(NS_PER_DAY),
            Frequency::Weekly => Some(7 * NS_PER_DAY),
            Frequency::Monthly => Some(30 * NS_PER_DAY),
        }
    }

    /// The name used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Off => "off",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
        }
    }

    /// Parses `off`, `daily`, `weekly` or `monthly`.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Frequency::Off,
            Frequency::Daily,
            Frequency::Weekly,
            Frequency::Monthly,
        ]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// The automatic-backup settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// How often.
    pub frequency: Frequency,
    /// Wait while the machine runs on battery.
    pub only_on_ac_power: bool,
}

/// What the platform says about the power supply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    /// On AC power (a `Mains` supply is online).
    Mains,
    /// On battery (every `Mains` supply is offline).
    Battery,
    /// The platform does not say.
    Unknown,
}

/// Reads the power state from a `/sys/class/power_supply`-like folder: each supply is a folder
/// with a `type` file; a `Mains` supply's `online` file is `1` while plugged in.
pub fn read_power(power_supply_dir: &Path) -> Power {
    let Ok(entries) = std::fs::read_dir(power_supply_dir) else {
        return Power::Unknown;
    };
    let read = |p: &Path, f: &str| std::fs::read_to_string(p.join(f)).map(|t| t.trim().to_string());
    let mut mains_seen = false;
    for entry in entries.flatten() {
        let path = entry.path();
        if read(&path, "type").ok().as_deref() != Some("Mains") {
            continue;
        }
        match read(&path, "online").as_deref() {
            Ok("1") => return Power::Mains,
            Ok(_) => mains_seen = true,
            Err(_) => {}
        }
    }
    if mains_seen {
        Power::Battery
    } else {
        Power::Unknown
    }
}

/// The power state of this machine (Linux's `/sys/class/power_supply`).
pub fn system_power() -> Power {
    read_power(Path::new("/sys/class/power_supply"))
}

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Automatic backups are off.
    Off,
    /// Back up now.
    Due,
    /// Nothing until `due_unix_ns`.
    NotYet {
        /// When the next backup is due.
        due_unix_ns: i64,
    },
    /// Due, but waiting for AC power.
    WaitingForPower {
        /// When it became due.
        due_unix_ns: i64,
    },
}

/// When the next backup is due after `last_backup_ns` (`None`: never backed up, so due from
/// the start of time, i.e. now); `None` when automatic backups are off.
pub fn next_due(schedule: &Schedule, last_backup_ns: Option<i64>) -> Option<i64> {
    let period = schedule.frequency.period_ns()?;
    Some(last_backup_ns.map_or(i64::MIN, |last| last.saturating_add(period)))
}

/// The decision for `now` (the rule in the module docs).
pub fn decide(
    schedule: &Schedule,
    last_backup_ns: Option<i64>,
    now: i64,
    power: Power,
) -> Decision {
    let Some(due) = next_due(schedule, last_backup_ns) else {
        return Decision::Off;
    };
    if now < due {
        return Decision::NotYet { due_unix_ns: due };
    }
    if schedule.only_on_ac_power && power == Power::Battery {
        return Decision::WaitingForPower { due_unix_ns: due };
    }
    Decision::Due
}

/// The newest snapshot `hostname` made, in nanoseconds since the Unix epoch.
pub async fn last_backup_ns(
    repo: &Repository,
    hostname: &str,
) -> crate::error::Result<Option<i64>> {
    Ok(repo
        .list_snapshots()
        .await?
        .iter()
        .filter(|(_, s)| s.hostname == hostname)
        .map(|(_, s)| s.time_unix_ns)
        .max())
}

/// A source of the current time for the scheduler.
pub trait TimeSource: Send + Sync {
    /// Now, in nanoseconds since the Unix epoch.
    fn now_unix_ns(&self) -> i64;
}

impl TimeSource for crate::Clock {
    fn now_unix_ns(&self) -> i64 {
        crate::Clock::now_unix_ns(self)
    }
}

/// A clock a test sets.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now_unix_ns`.
    pub fn new(now_unix_ns: i64) -> Self {
        Self(AtomicI64::new(now_unix_ns))
    }
    /// Sets it.
    pub fn set(&self, now_unix_ns: i64) {
        self.0.store(now_unix_ns, Ordering::SeqCst);
    }
}

impl TimeSource for ManualClock {
    fn now_unix_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Wakes a scheduler loop before its next look (a test moved the clock, a setting changed).
#[derive(Debug, Default)]
pub struct Waker(tokio::sync::Notify);

impl Waker {
    /// Makes the loop look again now.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits until woken or `at_most` has passed (the loop looks again at least that often,
    /// for the power state and for clocks that jump).
    pub async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.0.notified()).await;
    }
}
