//! Forget: remove snapshots by keep rules (or by id). Forgetting deletes only the snapshot
//! manifests; the data they alone used stays in storage until [`prune`](crate::prune::prune).
//!
//! Rules work like restic's, per group of snapshots with the same host and paths, newest
//! first: `last` keeps the newest N snapshots; `hourly`, `daily`, `weekly`, `monthly` and
//! `yearly` keep the newest snapshot of each of the last N hours, days, ISO weeks (Monday to
//! Sunday), months and years that have snapshots; `within` keeps every snapshot younger than a
//! duration. A snapshot that any rule keeps is kept. Calendar periods are in UTC, so a schedule
//! reads the same on every device that shares the backup.

use crate::error::{Error, Result};
use crate::layout;
use crate::lock::RepoLock;
use crate::repo::{pick_snapshot, Repository};
use sealback_core::lock::LockKind;
use sealback_core::snapshot::Snapshot;
use sealback_core::Id;

const NS_PER_HOUR: i64 = 3_600_000_000_000;
const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;

/// Which snapshots to keep. All counts zero and no `within`: no rule, which `forget` refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    /// The newest N.
    pub last: u32,
    /// The newest of each of the last N hours.
    pub hourly: u32,
    /// The newest of each of the last N days.
    pub daily: u32,
    /// The newest of each of the last N ISO weeks.
    pub weekly: u32,
    /// The newest of each of the last N months.
    pub monthly: u32,
    /// The newest of each of the last N years.
    pub yearly: u32,
    /// Every snapshot younger than this many nanoseconds.
    pub within_ns: Option<i64>,
}

impl KeepPolicy {
    /// Whether no rule is given.
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within_ns.is_none()
    }
}

/// What the policy decided for one snapshot.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The snapshot.
    pub id: Id,
    /// Its manifest.
    pub snapshot: Snapshot,
    /// The rules that keep it (`last`, `daily`, ...); empty means it is removed.
    pub kept_by: Vec<&'static str>,
}

impl Decision {
    /// Whether the snapshot stays.
    pub fn keep(&self) -> bool {
        !self.kept_by.is_empty()
    }
}

/// Applies `policy` to `snapshots` (any order) at time `now_unix_ns`. Returns one decision per
/// snapshot, grouped by host and paths, newest first within a group.
pub fn apply_policy(
    policy: &KeepPolicy,
    snapshots: &[(Id, Snapshot)],
    now_unix_ns: i64,
) -> Vec<Decision> {
    let mut sorted: Vec<&(Id, Snapshot)> = snapshots.iter().collect();
    sorted.sort_by(|(ia, a), (ib, b)| {
        (
            &a.hostname,
            &a.paths,
            std::cmp::Reverse((a.time_unix_ns, ia)),
        )
            .cmp(&(
                &b.hostname,
                &b.paths,
                std::cmp::Reverse((b.time_unix_ns, ib)),
            ))
    });
    type Bucket = fn(i64) -> i64;
    let rules: [(&'static str, u32, Bucket); 5] = [
        ("hourly", policy.hourly, |t| t.div_euclid(NS_PER_HOUR)),
        ("daily", policy.daily, |t| t.div_euclid(NS_PER_DAY)),
        ("weekly", policy.weekly, iso_week),
        ("monthly", policy.monthly, |t| {
            let (y, m, _) = civil_from_days(t.div_euclid(NS_PER_DAY));
            y * 12 + i64::from(m)
        }),
        ("yearly", policy.yearly, |t| {
            civil_from_days(t.div_euclid(NS_PER_DAY)).0
        }),
    ];
    let mut out = Vec::with_capacity(sorted.len());
    let mut group: Option<(&String, &Vec<String>)> = None;
    let mut last_left = 0;
    let mut left = [0u32; 5];
    let mut last_bucket: [Option<i64>; 5] = [None; 5];
    for (id, snap) in sorted {
        if group != Some((&snap.hostname, &snap.paths)) {
            group = Some((&snap.hostname, &snap.paths));
            last_left = policy.last;
            for (i, rule) in rules.iter().enumerate() {
                left[i] = rule.1;
                last_bucket[i] = None;
            }
        }
        let mut kept_by = vec![];
        if last_left > 0 {
            last_left -= 1;
            kept_by.push("last");
        }
        for (i, (name, _, bucket)) in rules.iter().enumerate() {
            let b = bucket(snap.time_unix_ns);
            if left[i] > 0 && last_bucket[i] != Some(b) {
                left[i] -= 1;
                last_bucket[i] = Some(b);
                kept_by.push(name);
            }
        }
        if let Some(within) = policy.within_ns {
            if now_unix_ns.saturating_sub(snap.time_unix_ns) <= within {
                kept_by.push("within");
            }
        }
        out.push(Decision {
            id: *id,
            snapshot: snap.clone(),
            kept_by,
        });
    }
    out
}

/// ISO week number since the epoch (weeks start on Monday; 1970-01-01 was a Thursday).
fn iso_week(t: i64) -> i64 {
    (t.div_euclid(NS_PER_DAY) + 3).div_euclid(7)
}

/// Year, month (1-12) and day of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of a year, month (1-12) and day (the inverse of
/// [`civil_from_days`]; Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What `forget` did (or, with `dry_run`, would do).
#[derive(Clone, Debug)]
pub struct ForgetReport {
    /// Every snapshot and what became of it.
    pub decisions: Vec<Decision>,
    /// Whether nothing was deleted.
    pub dry_run: bool,
}

impl ForgetReport {
    /// How many snapshots were (or would be) removed.
    pub fn removed(&self) -> usize {
        self.decisions.iter().filter(|d| !d.keep()).count()
    }
}

/// What to forget.
#[derive(Clone, Debug)]
pub enum ForgetTarget {
    /// Snapshots that no rule of the policy keeps.
    Policy(KeepPolicy),
    /// These snapshots (ids or unique prefixes).
    Snapshots(Vec<String>),
}

/// Removes snapshots. Refuses an empty policy (that would remove everything) and an id that
/// matches no snapshot or several.
pub async fn forget(
    repo: &mut Repository,
    target: &ForgetTarget,
    dry_run: bool,
) -> Result<ForgetReport> {
    if let ForgetTarget::Policy(p) = target {
        if p.is_empty() {
            return Err(Error::Invalid(
                "no keep rule given, which would forget every snapshot; give at least one of \
                 --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, \
                 --keep-yearly, --keep-within (or snapshot ids)"
                    .into(),
            ));
        }
    }
    // Forgetting is how a full drive is freed: it may take its lock from the space reserve.
    let lock = RepoLock::acquire_to_free_space(repo, LockKind::Shared, "forget").await?;
    let result = forget_locked(repo, target, dry_run).await;
    lock.release().await;
    repo.restore_reserve().await;
    result
}

async fn forget_locked(
    repo: &Repository,
    target: &ForgetTarget,
    dry_run: bool,
) -> Result<ForgetReport> {
    let all = repo.list_snapshots().await?;
    let decisions = match target {
        ForgetTarget::Policy(policy) => apply_policy(policy, &all, repo.clock().now_unix_ns()),
        ForgetTarget::Snapshots(queries) => {
            let mut drop = std::collections::HashSet::new();
            for q in queries {
                drop.insert(pick_snapshot(&all, q)?.0);
            }
            all.into_iter()
                .rev()
                .map(|(id, snapshot)| Decision {
                    id,
                    snapshot,
                    kept_by: if drop.contains(&id) {
                        vec![]
                    } else {
                        vec!["not named"]
                    },
                })
                .collect()
        }
    };
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep()) {
            repo.store().delete(&layout::snapshot(&d.id)).await?;
            tracing::info!(snapshot = %d.id.short(), "forgot snapshot");
        }
    }
    Ok(ForgetReport { decisions, dry_run })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn snap(host: &str, t: i64) -> Snapshot {
        Snapshot {
            time_unix_ns: t,
            hostname: host.into(),
            paths: vec!["/chats".into()],
            tree: Id([0; 32]),
            parent: None,
            tags: vec![],
            summary: Default::default(),
            left_out: vec![],
        }
    }

    fn snaps(host: &str, times: &[i64]) -> Vec<(Id, Snapshot)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                id[8] = host.len() as u8;
                (Id(id), snap(host, *t))
            })
            .collect()
    }

    fn kept_times(d: &[Decision]) -> Vec<i64> {
        d.iter()
            .filter(|d| d.keep())
            .map(|d| d.snapshot.time_unix_ns)
            .collect()
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        // 1970-01-05 was the first Monday: a new ISO week starts there.
        assert_eq!(iso_week(3 * NS_PER_DAY), iso_week(0));
        assert_eq!(iso_week(4 * NS_PER_DAY), iso_week(0) + 1);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_of_the_last_days() {
        // Every 6 hours for 10 days, starting at midnight of day 20,000.
        let base = 20_000 * NS_PER_DAY;
        let times: Vec<i64> = (0..40).map(|i| base + i * 6 * NS_PER_HOUR).collect();
        let policy = KeepPolicy {
            daily: 7,
            ..Default::default()
        };
        let d = apply_policy(&policy, &snaps("phone", &times), 0);
        let expected: Vec<i64> = (0..7)
            .map(|day| base + (9 - day) * NS_PER_DAY + 18 * NS_PER_HOUR)
            .collect();
        assert_eq!(kept_times(&d), expected);
        assert!(d
            .iter()
            .filter(|d| d.keep())
            .all(|d| d.kept_by == ["daily"]));
    }

    #[test]
    fn rules_add_up_and_name_themselves() {
        // Daily snapshots for 5 weeks from day 20,000 (a Friday, 2024-10-04).
        let base = 20_000 * NS_PER_DAY + 12 * NS_PER_HOUR;
        let times: Vec<i64> = (0..35).map(|i| base + i * NS_PER_DAY).collect();
        let policy = KeepPolicy {
            last: 2,
            weekly: 3,
            ..Default::default()
        };
        let d = apply_policy(&policy, &snaps("phone", &times), 0);
        let kept: Vec<(i64, Vec<&str>)> = d
            .iter()
            .filter(|d| d.keep())
            .map(|d| {
                (
                    (d.snapshot.time_unix_ns - base) / NS_PER_DAY,
                    d.kept_by.clone(),
                )
            })
            .collect();
        // Newest is day 34 (last, weekly), day 33 (last); the weeks before end on Sundays.
        let sunday = |day: i64| (20_000 + day + 3).rem_euclid(7) == 6;
        assert_eq!(kept[0], (34, vec!["last", "weekly"]));
        assert_eq!(kept[1], (33, vec!["last"]));
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(
            kept[2..]
                .iter()
                .all(|(day, by)| sunday(*day) && by == &["weekly"]),
            "{kept:?}"
        );
    }

    #[test]
    fn groups_by_host_and_paths_and_within_keeps_recent_ones() {
        let mut all = snaps("phone", &[10, 20, 30]);
        all.extend(snaps("tablet", &[15, 25]));
        let d = apply_policy(
            &KeepPolicy {
                last: 1,
                ..Default::default()
            },
            &all,
            0,
        );
        assert_eq!(kept_times(&d), vec![30, 25]);
        let d = apply_policy(
            &KeepPolicy {
                within_ns: Some(12),
                ..Default::default()
            },
            &all,
            30,
        );
        assert_eq!(kept_times(&d), vec![30, 20, 25]);
    }

    proptest! {
        #[test]
        fn policies_keep_the_newest_respect_their_counts_and_ignore_order(
            times in proptest::collection::vec(0i64..400 * NS_PER_DAY, 1..60),
            last in 0u32..4, hourly in 0u32..4, daily in 0u32..6, weekly in 0u32..4,
            monthly in 0u32..4, yearly in 0u32..3, seed in any::<u64>(),
        ) {
            let policy = KeepPolicy { last, hourly, daily, weekly, monthly, yearly, within_ns: None };
            let all = snaps("phone", &times);
            let d = apply_policy(&policy, &all, 0);
            prop_assert_eq!(d.len(), all.len());
            let kept = d.iter().filter(|d| d.keep()).count() as u32;
            prop_assert!(kept <= last + hourly + daily + weekly + monthly + yearly);
            if !policy.is_empty() {
                prop_assert!(d[0].keep(), "the newest snapshot is always kept");
            }
            // Every snapshot kept by `daily` is the newest of its day.
            for k in d.iter().filter(|d| d.kept_by.contains(&"daily")) {
                let day = k.snapshot.time_unix_ns.div_euclid(NS_PER_DAY);
                prop_assert!(!d.iter().any(|o| o.snapshot.time_unix_ns.div_euclid(NS_PER_DAY) == day
                    && (o.snapshot.time_unix_ns, o.id) > (k.snapshot.time_unix_ns, k.id)));
            }
            // The order snapshots are listed in changes nothing.
            let mut shuffled = all.clone();
            let n = shuffled.len();
            for i in 0..n {
                shuffled.swap(i, (seed.wrapping_mul(i as u64 + 1) % n as u64) as usize);
            }
            let again = apply_policy(&policy, &shuffled, 0);
            let key = |v: &[Decision]| v.iter().map(|d| (d.id, d.kept_by.clone())).collect::<Vec<_>>();
            prop_assert_eq!(key(&d), key(&again));
        }
    }
}
