//! Automatic backups: when the next one is due, and whether the power supply allows it now.
//!
//! The rule (SPEC §14): a backup is due one period after the newest snapshot this device made
//! (daily 24 h, weekly 7 days, monthly one calendar month in UTC: from 31 January to the
//! last day of February), or at once when it has made none. With "only
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
    /// Every calendar month (UTC), on the same day of the month, or the month's last day.
    Monthly,
}

impl Frequency {
    /// When the backup after one made at `last_ns` is due; `None` when off.
    pub fn after(self, last_ns: i64) -> Option<i64> {
        match self {
            Frequency::Off => None,
            Frequency::Daily => Some(last_ns.saturating_add(NS_PER_DAY)),
            Frequency::Weekly => Some(last_ns.saturating_add(7 * NS_PER_DAY)),
            Frequency::Monthly => Some(one_month_after(last_ns)),
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
    match last_backup_ns {
        _ if schedule.frequency == Frequency::Off => None,
        Some(last) => schedule.frequency.after(last),
        None => Some(i64::MIN),
    }
}

/// The same time of day, one calendar month later (UTC); the 29th to 31st of a month become
/// the last day of a shorter next month.
fn one_month_after(t: i64) -> i64 {
    use crate::forget::{civil_from_days, days_from_civil};
    let next_month = |year: i64, month: u32| {
        if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        }
    };
    let (days, time_of_day) = (t.div_euclid(NS_PER_DAY), t.rem_euclid(NS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let (year, month) = next_month(year, month);
    let first_of_next = days_from_civil(year, month, 1);
    let (after_y, after_m) = next_month(year, month);
    let length = days_from_civil(after_y, after_m, 1) - first_of_next;
    let day = i64::from(day).min(length);
    (first_of_next + day - 1)
        .saturating_mul(NS_PER_DAY)
        .saturating_add(time_of_day)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forget::{civil_from_days, days_from_civil};

    fn at(y: i64, m: u32, d: u32, hour: i64) -> i64 {
        days_from_civil(y, m, d) * NS_PER_DAY + hour * 3_600_000_000_000
    }

    #[test]
    fn monthly_is_a_calendar_month_not_30_days() {
        let monthly = Frequency::Monthly;
        assert_eq!(monthly.after(at(2025, 1, 15, 9)), Some(at(2025, 2, 15, 9)));
        // 31 days in January, 28 in February 2025, 29 in February 2024.
        assert_eq!(monthly.after(at(2025, 1, 31, 9)), Some(at(2025, 2, 28, 9)));
        assert_eq!(monthly.after(at(2024, 1, 31, 9)), Some(at(2024, 2, 29, 9)));
        assert_eq!(
            monthly.after(at(2025, 3, 31, 23)),
            Some(at(2025, 4, 30, 23))
        );
        assert_eq!(monthly.after(at(2025, 12, 20, 0)), Some(at(2026, 1, 20, 0)));
        assert_eq!(monthly.after(at(2025, 2, 1, 0)), Some(at(2025, 3, 1, 0)));
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn a_device_that_never_backed_up_is_due_at_once_unless_off() {
        let s = |frequency| Schedule {
            frequency,
            only_on_ac_power: false,
        };
        assert_eq!(next_due(&s(Frequency::Monthly), None), Some(i64::MIN));
        assert_eq!(next_due(&s(Frequency::Off), None), None);
        assert_eq!(
            decide(&s(Frequency::Daily), Some(0), NS_PER_DAY - 1, Power::Mains),
            Decision::NotYet {
                due_unix_ns: NS_PER_DAY
            }
        );
    }
}
