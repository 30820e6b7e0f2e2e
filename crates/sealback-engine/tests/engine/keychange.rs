//! Changing a password key in place (`Repository::change_key`): the one-password rule, the
//! order of the steps, and what a failure at each step leaves behind.

use super::{init, same_key};
use sealback_core::keyslot::{KeySlot, ProtectorType, SlotTemplate};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::ProtectorSecret;
use sealback_engine::keychange::{password_slot, ChangeKeyError};
use sealback_engine::{ErrorKind, Repository};
use sealback_store::Store;

/// Stands for the vault: hands out the secret it was given for every password slot.
struct Vaulted(Vec<u8>);

impl Protector for Vaulted {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::VAULT_PASSWORD
    }
    fn secret_for(&mut self, _: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok(Some(ProtectorSecret::new(self.0.clone())))
    }
}

fn password_template(name: &str) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::VAULT_PASSWORD,
        name: name.into(),
        created_unix: 0,
        params: vec![],
    }
}

#[tokio::test]
async fn a_second_password_is_refused_with_change_it_instead() {
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    repo.add_slot(password_template("pw"), &ProtectorSecret::new(vec![1; 32]))
        .await
        .unwrap();
    let e = repo
        .add_slot(password_template("pw2"), &ProtectorSecret::new(vec![2; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other);
    assert!(e.to_string().contains("change it instead"), "{e}");
    assert_eq!(repo.keyslots().slots.len(), 2, "nothing was added");
}

#[tokio::test]
async fn change_replaces_the_slot_in_place_and_the_old_secret_opens_nothing() {
    let store = Store::open("memory://").unwrap();
    let (mut repo, recovery) = init(&store).await;
    let old = repo
        .add_slot(password_template("pw"), &ProtectorSecret::new(vec![1; 32]))
        .await
        .unwrap();
    let mut activated = false;
    let changed = repo
        .change_key(
            old,
            password_template("pw"),
            &ProtectorSecret::new(vec![2; 32]),
            true,
            async || {
                activated = true;
                Ok::<_, String>(())
            },
        )
        .await
        .unwrap();
    assert!(activated);
    assert_eq!(changed.removed, old);
    assert_eq!(changed.new_epoch, Some(1), "rotated as asked");
    let keys = repo.keyslots();
    assert_eq!(keys.slots.len(), 2, "the recovery key and one password");
    assert_eq!(password_slot(keys).unwrap().id, changed.new_slot);
    assert!(Repository::open(store.clone(), &mut Vaulted(vec![1; 32]))
        .await
        .is_err());
    Repository::open(store.clone(), &mut Vaulted(vec![2; 32]))
        .await
        .unwrap();
    Repository::open(store, &mut same_key(&recovery))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refused_activation_takes_the_pending_slot_out_and_the_old_password_still_works() {
    let store = Store::open("memory://").unwrap();
    let (mut repo, _) = init(&store).await;
    let old = repo
        .add_slot(password_template("pw"), &ProtectorSecret::new(vec![1; 32]))
        .await
        .unwrap();
    let before = repo.keyslots().clone();
    let e = repo
        .change_key(
            old,
            password_template("pw"),
            &ProtectorSecret::new(vec![2; 32]),
            false,
            async || Err("the vault is unreachable"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        ChangeKeyError::NotActivated { cleanup: None, .. }
    ));
    let after = repo.keyslots();
    assert_eq!(
        after.slots.iter().map(|s| s.id).collect::<Vec<_>>(),
        before.slots.iter().map(|s| s.id).collect::<Vec<_>>()
    );
    Repository::open(store, &mut Vaulted(vec![1; 32]))
        .await
        .unwrap();
}

/// Attack on a real repository on disk: whoever writes to the drive edits a key's new name in
/// the keys file (to have the person remove the wrong key). The MAC covers it: the repository
/// refuses to open (an integrity failure) instead of showing the false name.
#[tokio::test]
async fn attack_an_edited_key_name_on_the_drive_fails_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("drive").to_str().unwrap()).unwrap();
    let (mut repo, recovery) = init(&store).await;
    let id = repo.keyslots().slots[0].id;
    repo.rename_slot(id, "paper copy, drawer").await.unwrap();
    let opened = Repository::open(store.clone(), &mut same_key(&recovery))
        .await
        .unwrap();
    let keys = opened.keyslots();
    assert_eq!(keys.display_name(&keys.slots[0]), "paper copy, drawer");
    let path = tmp.path().join("drive").join("keys");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(6).position(|w| w == b"drawer").unwrap();
    bytes[at..at + 6].copy_from_slice(b"garden");
    std::fs::write(&path, bytes).unwrap();
    let e = Repository::open(store, &mut same_key(&recovery))
        .await
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}
