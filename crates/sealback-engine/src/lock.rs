//! Repository locks (SPEC §11a): `prune` deletes data, so it must never run while another
//! sealback is between uploading packs and writing the snapshot that refers to them.
//!
//! The design is restic's, on any storage that lists what was written before (S3, WebDAV, Google
//! Drive, OneDrive and local folders do): every operation writes `locks/<random id>` *first* and
//! lists `locks/` *second*. Of two operations that start together at least the second to list
//! sees the other's lock, so they cannot both miss each other; when in doubt both back off.
//!
//! - Backup, restore, check and forget take a **shared** lock: they refuse to start while a
//!   prune holds the repository.
//! - Prune takes an **exclusive** lock: it refuses to start while anything else holds one.
//! - A holder rewrites its lock every [`LOCK_REFRESH`]. A lock not refreshed for
//!   [`LOCK_STALE`], or held by a process of this machine that no longer exists, is stale: the
//!   next operation to take a lock deletes it and goes ahead.
//! - Because a stale lock's owner may only be paused (a laptop lid closed mid-backup), a holder
//!   confirms that its lock still exists before each commit point (the index and snapshot of a
//!   backup; the deletions of a prune) and stops with [`Error::LockLost`] when it was removed.
//!
//! A lock that cannot be read (damaged, or written under keys this session does not have) is
//! treated as held: only `sealback locks --remove-all`, run by someone who knows nothing else is
//! running, removes it.

use crate::error::{Error, Result};
use crate::layout;
use crate::os_rng;
use crate::repo::{Repository, MAX_METADATA_LEN};
use sealback_core::lock::{LockKind, LockRecord};
use sealback_core::object::{self, Compression, ObjectType};
use sealback_core::Id;
use sealback_store::Store;

const NS_PER_SEC: i64 = 1_000_000_000;
/// How often a holder rewrites its lock.
pub const LOCK_REFRESH_SECS: i64 = 5 * 60;
/// [`LOCK_REFRESH_SECS`] in nanoseconds.
pub const LOCK_REFRESH: i64 = LOCK_REFRESH_SECS * NS_PER_SEC;
/// A lock older than this (30 minutes, six missed refreshes) is stale.
pub const LOCK_STALE: i64 = 30 * 60 * NS_PER_SEC;

/// A lock found in storage.
#[derive(Clone, Debug)]
pub struct FoundLock {
    /// Its id (`locks/<id>`).
    pub id: Id,
    /// Its contents, or why they could not be read.
    pub record: std::result::Result<LockRecord, String>,
    /// Whether it is stale by the repository's clock.
    pub stale: bool,
}

impl FoundLock {
    /// A description for messages.
    pub fn describe(&self, now_unix_ns: i64) -> String {
        match &self.record {
            Ok(r) => format!(
                "{} lock of `{}` on {} (process {}), refreshed {} ago",
                match r.kind {
                    LockKind::Shared => "a shared",
                    LockKind::Exclusive => "an exclusive",
                },
                r.operation,
                r.hostname,
                r.pid,
                human_age(now_unix_ns.saturating_sub(r.time_unix_ns))
            ),
            Err(why) => format!("lock {} that cannot be read ({why})", self.id.short()),
        }
    }
}

fn human_age(ns: i64) -> String {
    let s = ns.max(0) / NS_PER_SEC;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// A lock this process holds. Release it with [`RepoLock::release`]; if it is dropped instead
/// (the operation's future was cancelled), deleting it is left to a background task.
#[derive(Debug)]
pub struct RepoLock {
    id: Id,
    record: LockRecord,
    store: Store,
    released: bool,
}

impl RepoLock {
    /// Takes a lock of `kind` for `operation`, or fails with [`Error::Locked`] naming the holder
    /// that prevents it. Stale locks of others are deleted on the way.
    pub async fn acquire(repo: &Repository, kind: LockKind, operation: &str) -> Result<Self> {
        Self::acquire_inner(repo, kind, operation, false).await
    }

    /// [`RepoLock::acquire`] for an operation that frees space (`prune`, `forget`): when the
    /// drive is too full for the lock, the space reserve ([`layout::RESERVE`]) is deleted to
    /// make room for it. The operation puts the reserve back when it is done.
    pub async fn acquire_to_free_space(
        repo: &Repository,
        kind: LockKind,
        operation: &str,
    ) -> Result<Self> {
        Self::acquire_inner(repo, kind, operation, true).await
    }

    async fn acquire_inner(
        repo: &Repository,
        kind: LockKind,
        operation: &str,
        may_use_reserve: bool,
    ) -> Result<Self> {
        let now = repo.clock().now_unix_ns();
        let record = LockRecord {
            kind,
            time_unix_ns: now,
            hostname: hostname(),
            pid: std::process::id(),
            operation: operation.to_string(),
        };
        let id = Id::random(&mut os_rng());
        match write_lock(repo, &id, &record).await {
            Err(Error::DriveFull { .. }) if may_use_reserve => {
                tracing::info!("the drive is full: using the space reserve for the lock");
                repo.store().delete(layout::RESERVE).await?;
                write_lock(repo, &id, &record).await?;
            }
            written => written?,
        }
        let lock = Self {
            id,
            record,
            store: repo.store().clone(),
            released: false,
        };
        // Any failure from here on releases the lock just written, so it does not block
        // others for 30 minutes.
        let blocking = match find_blocking(repo, &lock.id, kind, now).await {
            Ok(b) => b,
            Err(e) => {
                lock.release().await;
                return Err(e);
            }
        };
        if let Some(holder) = blocking {
            lock.release().await;
            return Err(Error::Locked(format!(
                "cannot {operation} now: the repository is held by {holder}; nothing was changed. \
                 Try again when it has finished (`sealback locks` lists the locks)"
            )));
        }
        tracing::debug!(lock = %lock.id.short(), operation, "lock taken");
        Ok(lock)
    }

    /// Rewrites the lock when [`LOCK_REFRESH`] has passed since it was last written.
    pub async fn refresh_if_due(&mut self, repo: &Repository) -> Result<()> {
        if repo.clock().now_unix_ns() - self.record.time_unix_ns >= LOCK_REFRESH {
            self.confirm(repo).await?;
        }
        Ok(())
    }

    /// Checks that the lock is still in storage (nobody judged it stale and removed it) and
    /// rewrites it with the current time. Called before every commit point.
    pub async fn confirm(&mut self, repo: &Repository) -> Result<()> {
        let path = layout::lock(&self.id);
        if !repo.store().exists(&path).await? {
            return Err(Error::LockLost {
                operation: self.record.operation.clone(),
            });
        }
        self.record.time_unix_ns = repo.clock().now_unix_ns();
        write_lock(repo, &self.id, &self.record).await
    }

    /// Deletes the lock. A failure is logged, not returned: the lock then goes stale.
    pub async fn release(mut self) {
        self.released = true;
        let path = layout::lock(&self.id);
        if let Err(e) = self.store.delete(&path).await {
            tracing::warn!(error = %e, %path, "could not remove the lock; it will be judged stale in 30 minutes");
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // The operation was cancelled: remove the lock in the background if a runtime is
        // still there, or let it go stale.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let path = layout::lock(&self.id);
            rt.spawn(async move {
                let _ = store.delete(&path).await;
            });
        }
    }
}

/// Deletes the stale locks of others and describes the first live lock that conflicts with
/// one of `kind`.
async fn find_blocking(
    repo: &Repository,
    own: &Id,
    kind: LockKind,
    now: i64,
) -> Result<Option<String>> {
    let mut blocking = None;
    for other in list_locks(repo).await?.iter().filter(|l| l.id != *own) {
        if other.stale {
            tracing::warn!(lock = %other.describe(now), "removing a stale lock");
            repo.store().delete(&layout::lock(&other.id)).await?;
            continue;
        }
        let conflicts = match (&other.record, kind) {
            (Err(_), _) => true,
            (Ok(_), LockKind::Exclusive) => true,
            (Ok(r), LockKind::Shared) => r.kind == LockKind::Exclusive,
        };
        if conflicts && blocking.is_none() {
            blocking = Some(other.describe(now));
        }
    }
    Ok(blocking)
}

async fn write_lock(repo: &Repository, id: &Id, record: &LockRecord) -> Result<()> {
    let mut rng = os_rng();
    let sealed = object::seal(
        repo.keyring(),
        ObjectType::Lock,
        id,
        &record.encode(),
        Compression::None,
        &mut rng,
    );
    repo.store().write(&layout::lock(id), sealed.bytes).await?;
    Ok(())
}

/// Every lock in the repository, with whether it is stale by the repository's clock.
pub async fn list_locks(repo: &Repository) -> Result<Vec<FoundLock>> {
    let now = repo.clock().now_unix_ns();
    let this_host = hostname();
    let mut out = vec![];
    for path in repo.store().list(layout::LOCKS).await? {
        let Some(id) = layout::id_of(&path) else {
            continue;
        };
        let bytes = match repo.store().read(&path).await {
            Ok(b) => b,
            // Released between the listing and the read.
            Err(sealback_store::StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let record = object::open(
            repo.keyring(),
            ObjectType::Lock,
            &id,
            &bytes,
            MAX_METADATA_LEN,
        )
        .map_err(|e| e.to_string())
        .and_then(|body| LockRecord::decode(&body).map_err(|e| e.to_string()));
        let stale = match &record {
            Ok(r) => {
                now.saturating_sub(r.time_unix_ns) > LOCK_STALE
                    || (r.hostname == this_host && !process_exists(r.pid))
            }
            Err(_) => false,
        };
        out.push(FoundLock { id, record, stale });
    }
    Ok(out)
}

/// Removes stale locks, or with `all` every lock. Returns what was removed.
pub async fn remove_locks(repo: &Repository, all: bool) -> Result<Vec<FoundLock>> {
    let mut removed = vec![];
    for lock in list_locks(repo).await? {
        if all || lock.stale {
            repo.store().delete(&layout::lock(&lock.id)).await?;
            removed.push(lock);
        }
    }
    Ok(removed)
}

/// This machine's name, as recorded in locks.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process of this machine exists. Where that cannot be told (no `/proc`), it is
/// assumed to, so only the age makes its lock stale.
fn process_exists(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
