//! Rollback detection: what this device last saw of a repository.
//!
//! Whoever controls the storage can serve an older, consistent state of a repository (or delete
//! its newest snapshots with their data); a device that never saw the newer state cannot tell.
//! A device that did can: it records the newest snapshot it has seen (id and time) in a small
//! local file, and warns when the repository's newest snapshot is older than that. `forget`
//! never removes the newest snapshot of a group through keep rules, so the warning does not
//! fire on ordinary pruning; forgetting the newest snapshot by id on another device does make
//! it fire once, after which the record follows the repository again.
//!
//! `check` turns the same comparison into a problem (exit 4): the newest snapshot this device
//! saw is gone and nothing newer replaced it.
//!
//! A second record holds the highest key epoch this device has seen. A keys file of a lower
//! epoch is refused before anything is unlocked: it is an older, authentic keys file put back,
//! which would undo a rotation (the next backup would be written under the old root key, which
//! the removed protector still opens). The same record notes that this device has seen the
//! keys file in format 2 (authenticated by its MAC): a format-1 file is refused from then on,
//! or whoever writes to the drive could strip the MAC, add a key of its own, and have the next
//! unlock's upgrade vouch for it.
//!
//! The check must be made on the very bytes that are then unlocked: a cloud drive can answer
//! each read differently, so [`crate::Repository::open_guarded`] makes it, not its caller.
//!
//! The records are plain JSON (ids, times and epochs are not secret); losing them loses the
//! protection, never data.

use crate::error::{Error, Result};
use sealback_core::keyslot::{self, KeySlotFile, SlotId};
use sealback_core::snapshot::Snapshot;
use sealback_core::Id;
use std::path::{Path, PathBuf};

/// The newest snapshot this device has seen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenSnapshot {
    /// Its id (hex).
    pub snapshot: String,
    /// Its time, nanoseconds since the Unix epoch.
    pub time_unix_ns: i64,
}

/// The repository looks older than what this device saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackSuspected {
    /// What this device saw.
    pub seen: SeenSnapshot,
    /// The newest snapshot in the repository now, if any.
    pub newest: Option<SeenSnapshot>,
}

impl std::fmt::Display for RollbackSuspected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &str| s.get(..8).unwrap_or(s).to_string();
        write!(
            f,
            "this backup looks rolled back: this device saw snapshot {} but the newest one in storage is {}. \
             Someone with access to the cloud drive may have removed newer snapshots or restored an old copy; \
             if you did not forget that snapshot yourself, do not rely on `latest`",
            short(&self.seen.snapshot),
            self.newest
                .as_ref()
                .map(|n| format!("{} (older)", short(&n.snapshot)))
                .unwrap_or_else(|| "none".into())
        )
    }
}

/// The record file of a repository under `dir`.
pub fn record_path(dir: &Path, repo_id_hex: &str) -> PathBuf {
    dir.join(format!("{repo_id_hex}.json"))
}

/// The key-epoch record file of a repository under `dir`.
pub fn key_epoch_path(dir: &Path, repo_id_hex: &str) -> PathBuf {
    dir.join(format!("{repo_id_hex}.keys.json"))
}

/// What this device has seen of one repository's keys file: the highest key epoch, the
/// highest format (a record written before formats were noted reads as 0), and the slots this
/// device removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenKeyEpoch {
    /// The epoch.
    pub key_epoch: u32,
    /// The keys file format (2: authenticated by its MAC).
    #[serde(default)]
    pub keys_format: u8,
    /// Ids (hex) of the slots this device removed. A removal without rotation keeps the epoch,
    /// so only this tells the keys file from before the removal, put back, from the current
    /// one: that older file is authentic, and the next rotation would seal to the removed key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_slots: Vec<String>,
}

fn read_seen_keys(path: &Path) -> Result<Option<SeenKeyEpoch>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice::<SeenKeyEpoch>(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The format of a keys file: 2 when it carries the MAC, 1 otherwise.
fn keys_format(file: &KeySlotFile) -> u8 {
    if file.vouch.is_some() {
        keyslot::FILE_VERSION
    } else {
        keyslot::FILE_VERSION_1
    }
}

/// Refuses a keys file whose epoch is below the highest this device has seen (call it before
/// unlocking; the epoch need not be authenticated to be refused).
pub fn check_key_epoch(path: &Path, epoch: u32) -> Result<()> {
    match read_seen_keys(path)? {
        Some(seen) if epoch < seen.key_epoch => Err(Error::KeysRolledBack {
            seen: seen.key_epoch,
            found: epoch,
            record: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a keys file older than this device has seen: of a lower epoch, or of format 1 once
/// this device has seen format 2 (a downgrade that would let the next upgrade vouch for a key
/// slipped in meanwhile). Call it on the bytes about to be unlocked, before unlocking.
pub fn check_keys_file(path: &Path, file: &KeySlotFile) -> Result<()> {
    check_key_epoch(path, file.current_epoch)?;
    let Some(seen) = read_seen_keys(path)? else {
        return Ok(());
    };
    if keys_format(file) < seen.keys_format {
        return Err(Error::KeysDowngraded {
            seen: seen.keys_format,
            found: keys_format(file),
            record: path.to_path_buf(),
        });
    }
    match file
        .slots
        .iter()
        .find(|s| seen.removed_slots.contains(&s.id.to_hex()))
    {
        Some(slot) => Err(Error::KeysReplayed {
            slot: format!("{} ({:?})", slot.id.to_hex(), slot.name),
            record: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Moves the record up to `epoch` (call it with the epoch of an unlocked, verified keys file).
pub fn record_key_epoch(path: &Path, epoch: u32) -> Result<()> {
    record(path, epoch, 0, &[])
}

/// Moves the record up to the epoch and format of `file`, a keys file that an unlock verified
/// (or that this device just wrote), and adds `removed`, the slots this device removed from it.
pub fn record_keys_file(path: &Path, file: &KeySlotFile, removed: &[SlotId]) -> Result<()> {
    record(path, file.current_epoch, keys_format(file), removed)
}

fn record(path: &Path, epoch: u32, format: u8, removed: &[SlotId]) -> Result<()> {
    let seen = read_seen_keys(path)?;
    let mut next = seen.clone().unwrap_or_default();
    next.key_epoch = next.key_epoch.max(epoch);
    next.keys_format = next.keys_format.max(format);
    for id in removed.iter().map(SlotId::to_hex) {
        if !next.removed_slots.contains(&id) {
            next.removed_slots.push(id);
        }
    }
    if seen.as_ref() == Some(&next) {
        return Ok(());
    }
    let text = serde_json::to_vec(&next).expect("plain struct");
    write_atomically(path, &text)
}

fn write_atomically(path: &Path, text: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Compares `snapshots` with the record at `path` and moves the record forward to the newest
/// of them. Returns the suspicion, if any; the record is then left as it was, so the warning
/// repeats until the person acts (or a newer snapshot appears).
pub fn check_and_record(
    path: &Path,
    snapshots: &[(Id, Snapshot)],
) -> Result<Option<RollbackSuspected>> {
    check_and_record_times(path, snapshots.iter().map(|(id, s)| (*id, s.time_unix_ns)))
}

/// [`check_and_record`] from snapshot ids and times only: after a backup, the new snapshot
/// alone moves the record forward without listing the repository again.
pub fn check_and_record_times(
    path: &Path,
    snapshots: impl IntoIterator<Item = (Id, i64)> + Clone,
) -> Result<Option<RollbackSuspected>> {
    let newest = snapshots
        .clone()
        .into_iter()
        .max_by_key(|(id, t)| (*t, *id))
        .map(|(id, t)| SeenSnapshot {
            snapshot: id.to_hex(),
            time_unix_ns: t,
        });
    let seen: Option<SeenSnapshot> = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Some(seen) = seen {
        let still_there = snapshots
            .into_iter()
            .any(|(id, _)| id.to_hex() == seen.snapshot);
        let older = newest
            .as_ref()
            .is_none_or(|n| n.time_unix_ns < seen.time_unix_ns);
        if !still_there && older {
            return Ok(Some(RollbackSuspected { seen, newest }));
        }
        if newest.as_ref().is_none_or(|n| *n == seen) {
            return Ok(None);
        }
    }
    if let Some(newest) = newest {
        let text = serde_json::to_vec(&newest).expect("plain struct");
        write_atomically(path, &text)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: i64) -> Snapshot {
        Snapshot {
            time_unix_ns: t,
            hostname: "h".into(),
            paths: vec!["/c".into()],
            tree: Id([0; 32]),
            parent: None,
            tags: vec![],
            summary: Default::default(),
            left_out: vec![],
        }
    }

    #[test]
    fn a_repository_older_than_what_was_seen_is_flagged_and_a_newer_one_moves_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = record_path(dir.path(), "ab");
        let a = (Id([1; 32]), snap(10));
        let b = (Id([2; 32]), snap(20));
        let c = (Id([3; 32]), snap(30));
        assert_eq!(
            check_and_record(&path, std::slice::from_ref(&a)).unwrap(),
            None
        );
        assert_eq!(
            check_and_record(&path, &[a.clone(), b.clone()]).unwrap(),
            None
        );
        // Pruned by keep rules: the newest stays, nothing to say.
        assert_eq!(
            check_and_record(&path, std::slice::from_ref(&b)).unwrap(),
            None
        );
        // Rolled back to the state with only `a`.
        let warn = check_and_record(&path, std::slice::from_ref(&a))
            .unwrap()
            .unwrap();
        assert_eq!(warn.seen.snapshot, b.0.to_hex());
        assert!(warn.to_string().contains("looks rolled back"), "{warn}");
        // It keeps warning; an empty repository too.
        assert!(check_and_record(&path, std::slice::from_ref(&a))
            .unwrap()
            .is_some());
        assert!(check_and_record(&path, &[]).unwrap().is_some());
        // A newer snapshot (a backup since) moves the record on.
        assert_eq!(check_and_record(&path, &[a, c.clone()]).unwrap(), None);
        assert_eq!(check_and_record(&path, &[c]).unwrap(), None);
    }

    #[test]
    fn a_lower_key_epoch_is_refused_and_the_record_only_moves_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_epoch_path(dir.path(), "ab");
        check_key_epoch(&path, 0).unwrap();
        record_key_epoch(&path, 2).unwrap();
        check_key_epoch(&path, 2).unwrap();
        check_key_epoch(&path, 3).unwrap();
        let e = check_key_epoch(&path, 1).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Integrity);
        assert!(e.to_string().contains("epoch 2"), "{e}");
        record_key_epoch(&path, 1).unwrap();
        assert!(
            check_key_epoch(&path, 1).is_err(),
            "the record never moves down"
        );
    }
}
