//! Turning off end-to-end encrypted backup, as a phone's "turn off" does: **the backups on
//! the drive are deleted**, all of them, for every device that uses this repository. Keeping
//! them while this device stops would leave encrypted copies that the person believes gone.
//!
//! The person confirms by typing [`CONFIRM_PHRASE`]; the engine checks it, so every front end
//! asks the same question. The order of deletion (SPEC §13):
//!
//! 1. an exclusive lock (a backup, restore or prune running elsewhere stops it: nothing is
//!    deleted then);
//! 2. the keys file: from this moment no key opens anything left on the drive (a copy of the
//!    old keys file, or a device that still holds the backup key, still could: the drive's
//!    trash or versioning may keep copies);
//! 3. snapshots, index files, packs;
//! 4. the locks, the space reserve, and the config last: an interrupted turn-off leaves a repository without a
//!    keys file, which [`finish_turn_off`] completes without unlocking.

use crate::error::{Error, Result};
use crate::layout;
use crate::lock::{RepoLock, LOCK_STALE};
use crate::repo::Repository;
use sealback_core::lock::LockKind;
use sealback_store::Store;

/// What the person types to confirm that the backups on the drive are to be deleted.
pub const CONFIRM_PHRASE: &str = "delete my backups";

/// What turning off deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnedOff {
    /// Snapshots deleted.
    pub snapshots: usize,
    /// The backup's objects deleted (snapshots, index files, packs, the keys file, the space reserve, the config;
    /// locks are deleted too but not counted).
    pub objects: usize,
}

/// Whether `typed` is the confirmation phrase (spaces around it and case do not matter).
pub fn confirmed(typed: &str) -> bool {
    typed.trim().eq_ignore_ascii_case(CONFIRM_PHRASE)
}

/// Refuses unless `typed` is the confirmation phrase (front ends check it before unlocking).
pub fn refuse_unconfirmed(typed: &str) -> Result<()> {
    if confirmed(typed) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "turning off deletes every backup in this repository; type \"{CONFIRM_PHRASE}\" to confirm. Nothing was deleted"
        )))
    }
}

/// Turns off end-to-end encrypted backup: deletes the repository (see the module docs), once
/// `typed` is [`CONFIRM_PHRASE`]. Drop the repository afterwards: nothing is left to use.
pub async fn turn_off(repo: &Repository, typed: &str) -> Result<TurnedOff> {
    refuse_unconfirmed(typed)?;
    let lock = RepoLock::acquire(repo, LockKind::Exclusive, "turn off backup").await?;
    let snapshots = repo.store().list(layout::SNAPSHOTS).await?.len();
    let deleted = delete_all(repo.store()).await;
    // The lock was deleted with the rest; releasing a missing lock succeeds.
    lock.release().await;
    let objects = deleted?;
    forget_index_cache(repo);
    Ok(TurnedOff { snapshots, objects })
}

/// Deletes this device's index cache of a repository that is gone (and its folder, which only
/// the cache is in): it would otherwise stay, naming the repository and its packs, for good.
/// A failure is logged; it harms nothing else.
fn forget_index_cache(repo: &Repository) {
    let Some(path) = repo.index_cache_path() else {
        return;
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete the index cache of the turned-off backup");
            return;
        }
    }
    if let Some(dir) = path.parent() {
        // Fails, as it should, when something else is in it.
        let _ = std::fs::remove_dir(dir);
    }
}

/// Completes a turn-off that was interrupted after the keys file was deleted (nothing can be
/// unlocked any more, so nothing is asked but the phrase). Refuses a repository that still has
/// its keys file: that one is turned off with [`turn_off`], after unlocking.
pub async fn finish_turn_off(store: &Store, typed: &str) -> Result<TurnedOff> {
    refuse_unconfirmed(typed)?;
    if store.exists(layout::KEYS).await? {
        return Err(Error::Invalid(
            "this backup still has its keys: unlock it to turn it off".into(),
        ));
    }
    if !has_repository_config(store).await? {
        return Err(Error::NotARepository(store.location().to_string()));
    }
    refuse_while_locked(store).await?;
    let snapshots = store.list(layout::SNAPSHOTS).await?.len();
    let objects = delete_all(store).await?;
    Ok(TurnedOff { snapshots, objects })
}

/// Fails with [`Error::Locked`] while any lock in `locks/` may belong to a running operation.
///
/// Without the keys file no lock can be opened, so its age is what the storage says: a holder
/// rewrites its lock every 5 minutes ([`crate::lock::LOCK_REFRESH`]), so a lock modified within
/// [`LOCK_STALE`] may be held. No new operation can start meanwhile (nothing can be unlocked),
/// so once every lock is stale none is running. A storage that does not say when a lock was
/// written counts it as fresh (fails closed). The lock the interrupted turn-off left itself
/// delays this by up to 30 minutes; the message says when to try again.
async fn refuse_while_locked(store: &Store) -> Result<()> {
    let now = std::time::SystemTime::now();
    let stale = std::time::Duration::from_nanos(LOCK_STALE.unsigned_abs());
    let mut wait = std::time::Duration::ZERO;
    for path in store.list(layout::LOCKS).await? {
        let left = match store.modified(&path).await {
            // Released between the listing and the look.
            Err(sealback_store::StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
            Ok(None) => stale,
            // A time ahead of this computer's clock counts as just now.
            Ok(Some(at)) => stale.saturating_sub(now.duration_since(at).unwrap_or_default()),
        };
        wait = wait.max(left);
    }
    if wait.is_zero() {
        return Ok(());
    }
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let stale_minutes = stale.as_secs() / 60;
    Err(Error::Locked(format!(
        "a backup, restore or clean-up may still be running on this backup from another device \
         (its lock on the drive was refreshed less than {stale_minutes} minutes ago), so nothing \
         was deleted. Try again in {minutes} min, when it will have finished or been abandoned"
    )))
}

/// Whether `store` holds what an interrupted turn-off left: a config without a keys file.
pub async fn is_half_turned_off(store: &Store) -> Result<bool> {
    Ok(!store.exists(layout::KEYS).await? && has_repository_config(store).await?)
}

/// Whether the location holds a sealback repository's config: a folder that merely has a
/// file named `config` (a `.git` folder, `~/.ssh`, a mistyped path) is not a repository
/// whose turn-off stopped halfway, and nothing in it is deleted.
async fn has_repository_config(store: &Store) -> Result<bool> {
    match store.read(layout::CONFIG).await {
        Ok(bytes) => Ok(sealback_core::config::RepoConfig::decode(&bytes).is_ok()),
        Err(sealback_store::StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes in the order of the module docs; returns how many objects went.
async fn delete_all(store: &Store) -> Result<usize> {
    let mut count = 0;
    store.delete(layout::KEYS).await?;
    count += 1;
    for dir in [layout::SNAPSHOTS, layout::INDEX, layout::PACKS] {
        for path in store.list(dir).await? {
            store.delete(&path).await?;
            count += 1;
        }
    }
    // Locks (this turn-off's own among them) are not the backup's data: not counted.
    for path in store.list(layout::LOCKS).await? {
        store.delete(&path).await?;
    }
    // The space reserve (for a prune on a full drive) goes with the repository it served.
    if store.exists(layout::RESERVE).await? {
        store.delete(layout::RESERVE).await?;
        count += 1;
    }
    store.delete(layout::CONFIG).await?;
    Ok(count + 1)
}
