//! Changing keys in place: change password (a new slot takes the place of an old one) and
//! rename.
//!
//! A password key's secret lives at the key vault, wrapped under the password; changing the
//! password registers a new record there, which replaces the old one at once (the vault keeps
//! one password record per account). So the order matters, or a failure half-way would leave
//! a slot whose secret nobody can fetch any more:
//!
//! 1. the new slot is added to the keys file (a secret nobody can fetch yet, sealed like any
//!    other slot; the old slot still opens everything);
//! 2. the caller activates it (registers the new password at the vault with the new secret);
//!    if that fails, the new slot is taken out again and nothing else changed;
//! 3. the old slot is removed, in the same write with a rotation of the backup key when asked.
//!
//! One backup has at most one password key: adding a second would replace the vault's record
//! of the first and leave a slot that no password opens. [`refuse_second_password`] is the
//! rule; callers check it before registering anything at the vault.

use crate::repo::Repository;
use crate::{os_rng, Error};
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotId, SlotTemplate};
use sealback_core::ProtectorSecret;

/// What a key change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedKey {
    /// The slot that now opens the backup in place of the old one.
    pub new_slot: SlotId,
    /// The slot removed.
    pub removed: SlotId,
    /// The new key epoch, when the backup key was replaced too.
    pub new_epoch: Option<u32>,
}

/// Why a key change stopped, and in what state it left the keys file.
#[derive(Debug, thiserror::Error)]
pub enum ChangeKeyError<E> {
    /// Nothing was changed.
    #[error(transparent)]
    Unchanged(Error),
    /// The new key could not be activated (the vault refused it, or was unreachable): the old
    /// key still works. `cleanup` is set when the pending slot could not be taken out again.
    #[error("the new key could not be set up: {error}")]
    NotActivated {
        /// What activation said.
        error: E,
        /// Why the pending slot is still in the keys file, if it is.
        cleanup: Option<Error>,
    },
    /// The new key works (and the old one no longer does at the vault), but the old slot could
    /// not be removed from the keys file: remove it with `key remove`.
    #[error("the new key works, but the old key {} could not be removed from the keys file ({error}); remove it with `sealback key remove {}`", .old.to_hex(), .old.to_hex())]
    OldSlotLeft {
        /// The new slot.
        new_slot: SlotId,
        /// The old slot, still in the file.
        old: SlotId,
        /// Why.
        error: Error,
    },
}

/// The backup's password key, if it has one (the first vault-password slot).
pub fn password_slot(keys: &KeySlotFile) -> Option<&KeySlot> {
    keys.slots
        .iter()
        .find(|s| s.protector_type == ProtectorType::VAULT_PASSWORD)
}

/// Refuses to add a password when the backup has one: registering a second password at the
/// vault would replace the first one's record and leave its slot dead, each try of the old
/// password spending a guess.
pub fn refuse_second_password(keys: &KeySlotFile) -> Result<(), Error> {
    match password_slot(keys) {
        Some(existing) => Err(Error::Invalid(format!(
            "this backup already has a password ({:?}); change it instead (`sealback key change-password`, or Change password in Settings)",
            existing.name
        ))),
        None => Ok(()),
    }
}

impl Repository {
    /// Replaces the slot `old` by a new one made from `template` and `secret` (see the module
    /// documentation for the order). `activate` makes the new secret fetchable (for a password:
    /// registers it at the vault); it runs after the new slot is stored and before the old one
    /// goes. With `rotate`, the backup key is replaced as the old slot goes (as `key remove
    /// --rotate` does).
    pub async fn change_key<E>(
        &mut self,
        old: SlotId,
        template: SlotTemplate,
        secret: &ProtectorSecret,
        rotate: bool,
        activate: impl AsyncFnOnce() -> Result<(), E>,
    ) -> Result<ChangedKey, ChangeKeyError<E>> {
        if !self.keyslots().slots.iter().any(|s| s.id == old) {
            return Err(ChangeKeyError::Unchanged(Error::Invalid(format!(
                "no keyslot {} (see `sealback key list`)",
                old.to_hex()
            ))));
        }
        let new_slot = self
            .add_slot_unchecked(template, secret)
            .await
            .map_err(ChangeKeyError::Unchanged)?;
        if let Err(error) = activate().await {
            let cleanup = self.remove_slot(new_slot, false).await.err();
            return Err(ChangeKeyError::NotActivated { error, cleanup });
        }
        match self.remove_slot(old, rotate).await {
            Ok(removed) => Ok(ChangedKey {
                new_slot,
                removed: old,
                new_epoch: removed.new_epoch,
            }),
            Err(error) => Err(ChangeKeyError::OldSlotLeft {
                new_slot,
                old,
                error,
            }),
        }
    }

    /// Renames a slot: the name people see from now on, kept as a label the keys file's MAC
    /// covers (keys file format 3, SPEC §6.2). The name it was made with stays in the slot.
    pub async fn rename_slot(&mut self, id: SlotId, name: &str) -> Result<(), Error> {
        let mut next = self.keyslots().clone();
        next.rename(self.keyring(), id, name)
            .map_err(crate::repo::change_error)?;
        self.write_keyslots(next).await
    }

    /// Enrolls a slot under an id chosen beforehand: a threshold-realm password slot binds
    /// its id into the password's salt (SPEC §7f.2), so the id exists before the slot does.
    pub async fn add_slot_as(
        &mut self,
        id: SlotId,
        template: SlotTemplate,
        secret: &ProtectorSecret,
    ) -> Result<SlotId, Error> {
        let mut salt = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut os_rng(), &mut salt);
        let slot = KeySlot::enroll_with(self.keyring(), template, secret, id, salt, &mut os_rng())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut next = self.keyslots().clone();
        next.add(self.keyring(), slot)
            .map_err(crate::repo::change_error)?;
        self.write_keyslots(next).await?;
        Ok(id)
    }

    /// Enrolls a slot without the one-password rule (the pending slot of a change).
    pub(crate) async fn add_slot_unchecked(
        &mut self,
        template: SlotTemplate,
        secret: &ProtectorSecret,
    ) -> Result<SlotId, Error> {
        let slot = KeySlot::enroll(self.keyring(), template, secret, &mut os_rng())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let id = slot.id;
        let mut next = self.keyslots().clone();
        next.add(self.keyring(), slot)
            .map_err(crate::repo::change_error)?;
        self.write_keyslots(next).await?;
        Ok(id)
    }
}
