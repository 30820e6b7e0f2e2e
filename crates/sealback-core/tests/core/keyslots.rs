use sealback_core::keyslot::{
    KeySlot, KeySlotFile, ProtectorType, SlotId, SlotKem, SlotTemplate, UnlockError,
};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_core::{Keyring, ProtectorSecret, RepoId, RootKey};

fn template(name: &str) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name: name.into(),
        created_unix: 1,
        params: vec![],
    }
}

fn setup() -> (Keyring, KeySlotFile, RecoveryKey) {
    let mut rng = crate::rng(11);
    let repo = RepoId::random(&mut rng);
    let keyring = Keyring::new(repo, vec![RootKey::random(&mut rng)]);
    let key = RecoveryKey::generate(&mut rng);
    let mut file = KeySlotFile::new(&keyring);
    let slot = KeySlot::enroll(&keyring, template("paper"), &key.to_secret(), &mut rng).unwrap();
    file.add(&keyring, slot).unwrap();
    (keyring, file, key)
}

fn unlock(file: &KeySlotFile, key: &RecoveryKey) -> Result<Keyring, UnlockError> {
    let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
    let mut p = RecoveryKeyProtector(RecoveryKey::parse(&digits).unwrap());
    let file = KeySlotFile::decode(&file.encode()).expect("round trip");
    file.unlock(&mut p).map(|u| u.keyring)
}

#[test]
fn the_right_key_unlocks_and_another_does_not() {
    let (keyring, file, key) = setup();
    let k = unlock(&file, &key).unwrap();
    assert_eq!(k.current_root(), keyring.current_root());
    let other = RecoveryKey::generate(&mut crate::rng(99));
    assert!(matches!(
        unlock(&file, &other),
        Err(UnlockError::WrongSecret { .. })
    ));
}

#[test]
fn any_of_several_slots_unlocks() {
    let (keyring, mut file, key) = setup();
    let second = RecoveryKey::generate(&mut crate::rng(12));
    file.add(
        &keyring,
        KeySlot::enroll(
            &keyring,
            template("second"),
            &second.to_secret(),
            &mut crate::rng(13),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        unlock(&file, &key).unwrap().current_root(),
        keyring.current_root()
    );
    assert_eq!(
        unlock(&file, &second).unwrap().current_root(),
        keyring.current_root()
    );
}

struct Cancelling;
impl Protector for Cancelling {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::RECOVERY_KEY
    }
    fn secret_for(&mut self, _: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Err(ProtectorError::Cancelled("closed the prompt".into()))
    }
}

struct Passkey;
impl Protector for Passkey {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::PASSKEY_PRF
    }
    fn secret_for(&mut self, _: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        unreachable!("there is no passkey slot")
    }
}

#[test]
fn protector_errors_and_missing_slot_types_are_reported() {
    let (_, file, _) = setup();
    assert!(matches!(
        file.unlock(&mut Cancelling),
        Err(UnlockError::Protector(ProtectorError::Cancelled(_)))
    ));
    assert!(matches!(
        file.unlock(&mut Passkey),
        Err(UnlockError::NoSlot { .. })
    ));
}

#[test]
fn a_substituted_root_key_is_refused() {
    // The storage operator cannot re-seal a key of its choosing to the slot's public key:
    // the attestation, keyed by the protector secret, no longer verifies.
    let (_, mut file, key) = setup();
    let mut attacker_rng = crate::rng(66);
    let attacker_keyring = Keyring::new(file.repo_id, vec![RootKey::random(&mut attacker_rng)]);
    let genuine = file.slots[0].clone();
    // Enrol a throwaway slot under the attacker's key, then move its sealed entry into the genuine
    // slot (re-sealing to the genuine public key needs only public data; here the entry is the
    // attacker's own, which is enough to show the attestation binds the entry).
    let fake = KeySlot::enroll(
        &attacker_keyring,
        template("x"),
        &key.to_secret(),
        &mut attacker_rng,
    )
    .unwrap();
    file.slots[0].sealed = fake.sealed.clone();
    file.slots[0].salt = genuine.salt;
    assert!(matches!(
        unlock(&file, &key),
        Err(UnlockError::Tampered { .. }) | Err(UnlockError::WrongSecret { .. })
    ));
    // Same salt and public key as the genuine slot, the attacker's sealed entry:
    let mut forged = genuine.clone();
    forged.sealed = KeySlot::enroll_with(
        &attacker_keyring,
        template("paper"),
        &key.to_secret(),
        genuine.id,
        genuine.salt,
        &mut attacker_rng,
    )
    .unwrap()
    .sealed;
    // (The attacker would not know the secret; even with an entry sealed to the right public
    // key, the attestation is over the genuine entry.)
    file.slots[0] = forged;
    assert!(matches!(
        unlock(&file, &key),
        Err(UnlockError::Tampered { .. })
    ));
}

#[test]
fn unknown_protector_types_and_slot_layouts_are_skipped_and_kept() {
    let (keyring, mut file, key) = setup();
    let mut odd = file.slots[0].clone();
    odd.protector_type = ProtectorType(999);
    // Its own id: two records with one id are refused (SPEC §6.2).
    odd.id = SlotId([0x77; 16]);
    // Written by a newer client, which vouches for them (here: a format-1 file upgraded).
    file.vouch = None;
    file.slots.insert(0, odd);
    file.foreign_slots.push(vec![42, 1, 2, 3]);
    assert_eq!(file.upgrade(&keyring).unwrap().len(), 3);
    let bytes = file.encode();
    let back = KeySlotFile::decode(&bytes).unwrap();
    assert_eq!(back.foreign_slots, vec![vec![42, 1, 2, 3]]);
    assert_eq!(back.encode(), bytes);
    assert_eq!(
        unlock(&back, &key).unwrap().current_root(),
        keyring.current_root()
    );
}

#[test]
fn rotation_excludes_the_removed_protector_and_keeps_old_keys() {
    let (keyring, mut file, key) = setup();
    let lost = RecoveryKey::generate(&mut crate::rng(20));
    let lost_slot = KeySlot::enroll(
        &keyring,
        template("lost phone"),
        &lost.to_secret(),
        &mut crate::rng(21),
    )
    .unwrap();
    let lost_id: SlotId = lost_slot.id;
    file.add(&keyring, lost_slot).unwrap();
    let before = file.clone();

    let (rotated, dropped) = file
        .rotate(&keyring, Some(lost_id), &mut crate::rng(22))
        .unwrap();
    assert_eq!(dropped, 0);
    assert_eq!(rotated.current_epoch(), 1);
    assert_ne!(rotated.current_root(), keyring.current_root());
    assert_eq!(&rotated.roots()[0], keyring.current_root());
    // The remaining protector opens the new epoch and, through the keyring, the old one.
    let k = unlock(&file, &key).unwrap();
    assert_eq!(k.current_root(), rotated.current_root());
    assert_eq!(&k.roots()[0], keyring.current_root());
    // Content ids stay stable across the rotation, so deduplication keeps working.
    assert_eq!(
        k.content_id()
            .blob_id(sealback_core::ObjectType::Data, b"x"),
        keyring
            .content_id()
            .blob_id(sealback_core::ObjectType::Data, b"x")
    );
    // The removed protector is gone...
    assert!(matches!(
        unlock(&file, &lost),
        Err(UnlockError::WrongSecret { .. })
    ));
    // ...and putting its old slot back gives it only the old epoch: its attested entry is at
    // epoch 0, and it has no entry for epoch 1.
    let mut replay = file.clone();
    replay.slots.push(before.slots[1].clone());
    assert!(matches!(
        unlock(&replay, &lost),
        Err(UnlockError::Tampered { .. })
    ));

    // Unlocking after a rotation offers the slot re-attested at the new epoch.
    let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
    let unlocked = file
        .unlock(&mut RecoveryKeyProtector(
            RecoveryKey::parse(&digits).unwrap(),
        ))
        .unwrap();
    let updated = unlocked
        .reattested
        .expect("attested at epoch 0, current epoch 1");
    assert_eq!((updated.attested_epoch, updated.sealed.len()), (1, 1));
    assert!(file.replace_slot(&rotated, updated).unwrap());
    assert_eq!(
        unlock(&file, &key).unwrap().current_root(),
        rotated.current_root()
    );
    let again = file
        .unlock(&mut RecoveryKeyProtector(
            RecoveryKey::parse(&digits).unwrap(),
        ))
        .unwrap();
    assert!(again.reattested.is_none());
    // The lost key's replayed epoch-0 slot still does not reach epoch 1.
    let mut replay = file.clone();
    replay.slots.push(before.slots[1].clone());
    assert!(matches!(
        unlock(&replay, &lost),
        Err(UnlockError::Tampered { .. })
    ));
}

#[test]
fn debug_output_never_shows_keys() {
    let (keyring, _, _) = setup();
    let root_hex = hex::encode(keyring.current_root().expose_secret());
    let dbg = format!(
        "{keyring:?} {:?} {:?}",
        keyring.current_root(),
        ProtectorSecret::new(vec![1, 2, 3])
    );
    assert!(!dbg.contains(&root_hex[..16]));
    assert!(dbg.contains("redacted"));
}

fn unlocked(file: &KeySlotFile, key: &RecoveryKey) -> sealback_core::keyslot::Unlocked {
    let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
    let file = KeySlotFile::decode(&file.encode()).expect("round trip");
    file.unlock(&mut RecoveryKeyProtector(
        RecoveryKey::parse(&digits).unwrap(),
    ))
    .unwrap()
}

/// The drive's operator adds a slot for a secret it holds: it can make the slot (anyone can),
/// but not the MAC, so the slot is reported, and rotation and enrolment refuse to seal to it.
#[test]
fn a_slot_the_mac_does_not_cover_is_reported_and_never_sealed_to() {
    let (keyring, mut file, key) = setup();
    let attacker_secret = RecoveryKey::generate(&mut crate::rng(70)).to_secret();
    let attacker_ring = Keyring::new(file.repo_id, vec![RootKey::random(&mut crate::rng(71))]);
    let intruder = KeySlot::enroll(
        &attacker_ring,
        template("paper copy"),
        &attacker_secret,
        &mut crate::rng(72),
    )
    .unwrap();
    file.slots.push(intruder.clone());

    let u = unlocked(&file, &key);
    assert_eq!(u.unvouched.len(), 1);
    assert_eq!(u.unvouched[0].id, intruder.id.to_hex());
    assert!(UnlockError::Unvouched {
        slots: u.unvouched.clone()
    }
    .to_string()
    .contains("\"paper copy\""));

    let before = file.clone();
    let refused = file.rotate(&keyring, None, &mut crate::rng(73));
    assert!(
        matches!(refused, Err(UnlockError::Unvouched { .. })),
        "{refused:?}"
    );
    assert_eq!(file, before, "a refused rotation changes nothing");
    let extra = KeySlot::enroll(
        &keyring,
        template("x"),
        &key.to_secret(),
        &mut crate::rng(74),
    )
    .unwrap();
    assert!(file.add(&keyring, extra).is_err());
    // Removing the intruder is allowed, and leaves a file that vouches for all it holds.
    assert!(file.remove(&keyring, intruder.id).unwrap());
    assert!(unlocked(&file, &key).unvouched.is_empty());
}

#[test]
fn a_changed_keyring_epoch_or_mac_fails_the_keys_file() {
    let (keyring, mut file, key) = setup();
    let lost = KeySlot::enroll(
        &keyring,
        template("b"),
        &key.to_secret(),
        &mut crate::rng(80),
    )
    .unwrap();
    file.add(&keyring, lost).unwrap();
    let (rotated, _) = file.rotate(&keyring, None, &mut crate::rng(81)).unwrap();
    let unlock_err = |f: &KeySlotFile| {
        let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
        f.unlock(&mut RecoveryKeyProtector(
            RecoveryKey::parse(&digits).unwrap(),
        ))
        .map(|_| ())
        .unwrap_err()
    };
    let mut flipped = file.clone();
    flipped.vouch.as_mut().unwrap().mac[5] ^= 0x10;
    assert!(matches!(unlock_err(&flipped), UnlockError::KeysFile { .. }));
    // A vouched slot that disappears is noticed too.
    let mut dropped = file.clone();
    dropped.slots.pop();
    assert!(matches!(unlock_err(&dropped), UnlockError::KeysFile { .. }));
    // The MAC of one epoch does not verify under another's key.
    assert!(file.unvouched(&rotated).unwrap().unwrap().is_empty());
    assert!(file.unvouched(&keyring).is_err());
}

#[test]
fn a_format_1_file_unlocks_and_upgrades_listing_its_slots() {
    let (keyring, mut file, key) = setup();
    file.vouch = None;
    let bytes = file.encode();
    assert_eq!(bytes[6], 1, "format 1 on disk");
    let mut old = KeySlotFile::decode(&bytes).unwrap();
    let u = unlocked(&old, &key);
    assert!(u.needs_upgrade && u.unvouched.is_empty());
    // A format-1 file is not changed before it is upgraded.
    assert!(old.rotate(&u.keyring, None, &mut crate::rng(90)).is_err());
    let listed = old.upgrade(&u.keyring).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "paper");
    assert_eq!(old.encode()[6], 2);
    let again = unlocked(&old, &key);
    assert!(!again.needs_upgrade);
    assert_eq!(again.keyring.current_root(), keyring.current_root());
    assert!(old.upgrade(&keyring).is_none());
}

/// The all-zero key, 1 and 2^255-19 (p itself): low-order points or non-canonical encodings
/// of them; every Diffie-Hellman with them is zero.
fn low_order_x25519_keys() -> [[u8; 32]; 3] {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1;
    [[0u8; 32], one, p]
}

#[test]
fn low_order_public_keys_are_refused_when_parsed() {
    let (keyring, mut file, _) = setup();
    file.add(&keyring, x25519_slot(&keyring, "old", b"old secret", 0x31))
        .unwrap();
    let bytes = file.encode();
    let pk = file.slots[1].public_key.clone();
    assert_eq!(pk.len(), 32);
    let at = bytes.windows(32).position(|w| w == pk).unwrap();
    for bad in low_order_x25519_keys() {
        let mut b = bytes.clone();
        b[at..at + 32].copy_from_slice(&bad);
        assert!(KeySlotFile::decode(&b).is_err(), "{}", hex::encode(bad));
    }
}

/// X-Wing does not refuse a low-order X25519 part itself: a slot with one would rest on
/// ML-KEM alone. The parser must refuse it, like a low-order X25519 slot.
#[test]
fn attack_xwing_key_with_low_order_x25519_part_is_refused_when_parsed() {
    let (_, file, _) = setup();
    let bytes = file.encode();
    let pk = &file.slots[0].public_key;
    assert_eq!(pk.len(), 1216);
    let at = bytes.windows(pk.len()).position(|w| w == &pk[..]).unwrap() + 1184;
    for bad in low_order_x25519_keys() {
        let mut b = bytes.clone();
        b[at..at + 32].copy_from_slice(&bad);
        assert!(KeySlotFile::decode(&b).is_err(), "{}", hex::encode(bad));
    }
}

#[test]
fn attack_xwing_key_with_ml_kem_coefficients_out_of_range_is_refused_when_parsed() {
    let (_, file, _) = setup();
    let bytes = file.encode();
    let pk = &file.slots[0].public_key;
    let at = bytes.windows(pk.len()).position(|w| w == &pk[..]).unwrap();
    let mut b = bytes.clone();
    // The first 12-bit coefficient becomes 4095, above q - 1 = 3328 (FIPS 203 modulus check).
    b[at] = 0xff;
    b[at + 1] |= 0x0f;
    assert!(KeySlotFile::decode(&b).is_err());
}

/// A version-1 (X25519) slot for `secret`, as clients before X-Wing wrote.
fn x25519_slot(keyring: &Keyring, name: &str, secret: &[u8], seed: u8) -> KeySlot {
    KeySlot::enroll_x25519_with(
        keyring,
        template(name),
        &ProtectorSecret::new(secret.to_vec()),
        SlotId([seed; 16]),
        [seed; 32],
        &mut crate::rng(seed),
    )
    .unwrap()
}

struct Raw(Vec<u8>);

impl Protector for Raw {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::RECOVERY_KEY
    }
    fn secret_for(&mut self, _: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok(Some(ProtectorSecret::new(self.0.clone())))
    }
}

#[test]
fn new_slots_are_xwing_and_round_trip() {
    let (keyring, file, key) = setup();
    let slot = &file.slots[0];
    assert_eq!(slot.kem, SlotKem::XWing);
    assert_eq!(
        (slot.public_key.len(), slot.sealed[0].enc.len()),
        (1216, 1120)
    );
    let bytes = file.encode();
    let back = KeySlotFile::decode(&bytes).unwrap();
    assert_eq!(back, file);
    assert_eq!(back.encode(), bytes);
    let u = unlocked(&back, &key);
    assert_eq!(u.keyring.current_root(), keyring.current_root());
    assert!(u.reattested.is_none() && u.unvouched.is_empty());
}

#[test]
fn rotation_seals_to_a_mix_of_x25519_and_xwing_slots() {
    let (keyring, mut file, key) = setup();
    file.add(&keyring, x25519_slot(&keyring, "old", b"old secret", 0x31))
        .unwrap();
    let (rotated, _) = file.rotate(&keyring, None, &mut crate::rng(40)).unwrap();
    let file = KeySlotFile::decode(&file.encode()).unwrap();
    let enc_lens: Vec<usize> = file.slots.iter().map(|s| s.sealed[1].enc.len()).collect();
    assert_eq!(enc_lens, vec![1120, 32]);
    assert_eq!(
        unlocked(&file, &key).keyring.current_root(),
        rotated.current_root()
    );
    let old = file.unlock(&mut Raw(b"old secret".to_vec())).unwrap();
    assert_eq!(old.keyring.current_root(), rotated.current_root());
    assert_eq!(old.keyring.roots()[0], keyring.roots()[0]);
}

#[test]
fn an_x25519_slot_moves_to_xwing_when_its_own_protector_unlocks() {
    let (keyring, mut file, _) = setup();
    let old = x25519_slot(&keyring, "old", b"old secret", 0x31);
    file.add(&keyring, old.clone()).unwrap();
    let (rotated, _) = file.rotate(&keyring, None, &mut crate::rng(40)).unwrap();
    // Without a random number generator it is only re-attested, still X25519.
    let plain = file.unlock(&mut Raw(b"old secret".to_vec())).unwrap();
    assert_eq!(plain.reattested.unwrap().kem, SlotKem::X25519);
    let u = file
        .unlock_and_upgrade(&mut Raw(b"old secret".to_vec()), &mut crate::rng(41))
        .unwrap();
    let upgraded = u.reattested.unwrap();
    assert_eq!((upgraded.id, upgraded.kem), (old.id, SlotKem::XWing));
    assert_eq!((upgraded.salt, upgraded.attested_epoch), (old.salt, 1));
    assert_eq!(upgraded.sealed.len(), 1);
    assert!(file.replace_slot(&rotated, upgraded).unwrap());
    let file = KeySlotFile::decode(&file.encode()).unwrap();
    let again = file
        .unlock_and_upgrade(&mut Raw(b"old secret".to_vec()), &mut crate::rng(42))
        .unwrap();
    assert!(again.reattested.is_none() && again.unvouched.is_empty());
    assert_eq!(again.keyring.roots(), rotated.roots());
    assert!(file.slots.iter().all(|s| s.kem == SlotKem::XWing));
}

#[test]
fn attack_flipped_xwing_enc_fails_cleanly() {
    let (_, file, key) = setup();
    let bytes = file.encode();
    let enc = &file.slots[0].sealed[0].enc;
    let at = bytes
        .windows(enc.len())
        .position(|w| w == &enc[..])
        .unwrap();
    for offset in [0, 500, 1087, 1088, 1119] {
        let mut b = bytes.clone();
        b[at + offset] ^= 0x80;
        let damaged = KeySlotFile::decode(&b).unwrap();
        let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
        let mut p = RecoveryKeyProtector(RecoveryKey::parse(&digits).unwrap());
        assert!(
            matches!(damaged.unlock(&mut p), Err(UnlockError::Tampered { .. })),
            "offset {offset}"
        );
    }
}

/// The entry a rotation sealed is not covered by the attestation (it covers the older one):
/// a flipped enc there reaches X-Wing decapsulation, which never fails (implicit rejection),
/// so it must show as a root key that does not open, not as a panic or a wrong key.
#[test]
fn attack_flipped_xwing_enc_of_an_unattested_entry_fails_cleanly() {
    let (keyring, mut file, key) = setup();
    file.rotate(&keyring, None, &mut crate::rng(40)).unwrap();
    let bytes = file.encode();
    let enc = &file.slots[0].sealed[1].enc;
    assert_eq!(file.slots[0].attested_epoch, 0);
    let at = bytes
        .windows(enc.len())
        .position(|w| w == &enc[..])
        .unwrap();
    for offset in [0, 1087, 1088, 1119] {
        let mut b = bytes.clone();
        b[at + offset] ^= 0x01;
        let damaged = KeySlotFile::decode(&b).unwrap();
        let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
        let mut p = RecoveryKeyProtector(RecoveryKey::parse(&digits).unwrap());
        match damaged.unlock(&mut p) {
            Err(UnlockError::Tampered { detail, .. }) => {
                assert_eq!(detail, "sealed root key does not open", "offset {offset}")
            }
            other => panic!("offset {offset}: {other:?}"),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any file a writer makes (format 2 with its MAC, or format 1) decodes to itself, and the
    /// keys it was made under find every slot vouched for.
    #[test]
    fn keys_files_round_trip(
        names in proptest::collection::vec("[a-z ]{0,20}", 1..4),
        params in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        foreign in proptest::collection::vec(
            proptest::collection::vec(3u8..=255, 1..40), 0..3),
        rotations in 0u8..3,
        format1 in proptest::prelude::any::<bool>(),
    ) {
        let mut rng = crate::rng(names.len() as u8);
        let mut keyring = Keyring::new(RepoId([3; 16]), vec![RootKey::random(&mut rng)]);
        let mut file = KeySlotFile::new(&keyring);
        for (i, name) in names.iter().enumerate() {
            let secret = ProtectorSecret::new(vec![i as u8; 32]);
            let mut t = template(name);
            t.params = params.clone();
            let slot = KeySlot::enroll(&keyring, t, &secret, &mut rng).unwrap();
            file.add(&keyring, slot).unwrap();
        }
        for _ in 0..rotations {
            keyring = file.rotate(&keyring, None, &mut rng).unwrap().0;
        }
        file.vouch = None;
        file.foreign_slots = foreign;
        if !format1 {
            file.upgrade(&keyring).unwrap();
        }
        let back = KeySlotFile::decode(&file.encode()).unwrap();
        proptest::prop_assert_eq!(&back, &file);
        let unvouched = back.unvouched(&keyring).unwrap();
        proptest::prop_assert_eq!(unvouched.map(|u| u.len()), (!format1).then_some(0));
    }
}

/// A rename is a label beside the slots (format 3), covered by the keys file's MAC: the slot's
/// own name stays as attested, and the file drops back to format 2 when no label is left.
#[test]
fn a_renamed_slot_keeps_its_attested_name_and_the_file_moves_to_format_3_and_back() {
    let (keyring, mut file, key) = setup();
    let id = file.slots[0].id;
    file.rename(&keyring, id, "  paper copy in the drawer ")
        .unwrap();
    assert_eq!(file.format_version(), 3);
    assert_eq!(file.encode()[6], 3);
    assert_eq!(
        file.display_name(&file.slots[0]),
        "paper copy in the drawer"
    );
    assert_eq!(
        file.slots[0].name, "paper",
        "the attested name is unchanged"
    );
    let back = KeySlotFile::decode(&file.encode()).unwrap();
    assert_eq!(back, file);
    assert!(unlocked(&file, &key).unvouched.is_empty());
    unlock(&file, &key).unwrap();
    // Renamed back to the name it was made with: no label, format 2 again.
    file.rename(&keyring, id, "paper").unwrap();
    assert!(file.labels.is_empty());
    assert_eq!(file.encode()[6], 2);
    unlock(&file, &key).unwrap();
    for bad in ["", "   ", &"x".repeat(257)] {
        assert!(file.rename(&keyring, id, bad).is_err(), "{bad:?}");
    }
    assert!(file.rename(&keyring, SlotId([9; 16]), "x").is_err());
}

/// Attack: whoever writes to the drive changes a key's name (to make the person remove the
/// wrong key, or trust one that is not theirs) or strips the names by writing the file back as
/// format 2. The MAC covers the labels and the version: both fail the keys file.
#[test]
fn attack_a_changed_or_stripped_label_fails_the_keys_file() {
    let (keyring, mut file, key) = setup();
    let second = KeySlot::enroll(
        &keyring,
        template("phone"),
        &key.to_secret(),
        &mut crate::rng(90),
    )
    .unwrap();
    file.add(&keyring, second.clone()).unwrap();
    file.rename(&keyring, second.id, "old phone (lost)")
        .unwrap();
    let digits = String::from_utf8(key.to_secret().expose_secret().to_vec()).unwrap();
    let try_unlock = |bytes: &[u8]| {
        let f = KeySlotFile::decode(bytes).expect("still parses");
        f.unlock(&mut RecoveryKeyProtector(
            RecoveryKey::parse(&digits).unwrap(),
        ))
        .map(|_| ())
    };
    let bytes = file.encode();
    try_unlock(&bytes).unwrap();
    // The label's text, edited in place ("lost" -> "kept").
    let at = bytes.windows(4).position(|w| w == b"lost").unwrap();
    let mut edited = bytes.clone();
    edited[at..at + 4].copy_from_slice(b"kept");
    assert!(matches!(
        try_unlock(&edited),
        Err(UnlockError::KeysFile { .. })
    ));
    // The labels stripped and the file written back as format 2, with the MAC it had.
    let mut stripped = file.clone();
    stripped.labels.clear();
    let stripped = stripped.encode();
    assert_eq!(stripped[6], 2);
    assert!(matches!(
        try_unlock(&stripped),
        Err(UnlockError::KeysFile { .. })
    ));
}

#[test]
fn removing_or_rotating_away_a_renamed_slot_drops_its_label() {
    let (keyring, mut file, key) = setup();
    let second = KeySlot::enroll(
        &keyring,
        template("phone"),
        &key.to_secret(),
        &mut crate::rng(91),
    )
    .unwrap();
    file.add(&keyring, second.clone()).unwrap();
    file.rename(&keyring, second.id, "lost phone").unwrap();
    let mut removed = file.clone();
    removed.remove(&keyring, second.id).unwrap();
    assert!(removed.labels.is_empty());
    assert_eq!(removed.format_version(), 2);
    let (rotated, _) = file
        .rotate(&keyring, Some(second.id), &mut crate::rng(92))
        .unwrap();
    assert!(file.labels.is_empty());
    assert!(file.unvouched(&rotated).unwrap().unwrap().is_empty());
}

/// Labels that would not re-encode to the same bytes are refused when parsed.
#[test]
fn malformed_label_sections_are_refused() {
    let (keyring, mut file, key) = setup();
    let second = KeySlot::enroll(
        &keyring,
        template("phone"),
        &key.to_secret(),
        &mut crate::rng(93),
    )
    .unwrap();
    file.add(&keyring, second.clone()).unwrap();
    file.rename(&keyring, second.id, "b").unwrap();
    file.rename(&keyring, file.slots[0].id, "a").unwrap();
    let good = file.clone();
    let decode = |f: &KeySlotFile| KeySlotFile::decode(&f.encode());
    decode(&good).unwrap();
    let mut swapped = good.clone();
    swapped.labels.reverse();
    assert!(decode(&swapped).is_err(), "out of slot order");
    let mut twice = good.clone();
    twice.labels[1].slot = twice.labels[0].slot;
    assert!(decode(&twice).is_err(), "two labels for one slot");
    let mut stranger = good.clone();
    stranger.labels[0].slot = SlotId([7; 16]);
    assert!(decode(&stranger).is_err(), "a label for no slot");
    let mut empty = good;
    empty.labels[0].label.clear();
    assert!(decode(&empty).is_err(), "an empty label");
}

/// Attack: a name that makes one key look like another where people choose which key to remove:
/// terminal escapes (`key list` prints names as they are) that rewrite the line, or bidi
/// overrides that show "enohp tsol" as "lost phone". Such a name comes from a rename, from a
/// slot made elsewhere, or from the drive (`key list` and a locked page read the keys file
/// without a key, so nothing in it is checked yet). A rename refuses such characters, a label
/// carrying them is refused when parsed, and every name is shown with them escaped.
#[test]
fn attack_control_and_bidi_characters_in_a_key_name_are_refused_or_shown_escaped() {
    let (keyring, mut file, key) = setup();
    let id = file.slots[0].id;
    for spoof in [
        "Pixel 9\u{1b}[2K\rpaper copy",
        "\u{202e}enohp tsol",
        "paper\u{2066} copy",
        "new\nline",
        "zero\u{200b}width",
    ] {
        assert!(file.rename(&keyring, id, spoof).is_err(), "{spoof:?}");
    }
    // An emoji sequence joined with U+200D is a name people use: kept.
    file.rename(&keyring, id, "family \u{1f468}\u{200d}\u{1f469}")
        .unwrap();
    // A label written by whoever holds the file bytes (the drive, read without a key).
    let mut forged = file.clone();
    forged.labels[0].label = "\u{202e}enohp tsol".into();
    assert!(KeySlotFile::decode(&forged.encode()).is_err());
    // A slot made with such a name (its own name is attested, and old files carry any): shown
    // escaped.
    let spoofing = KeySlot::enroll(
        &keyring,
        template("Pixel\u{1b}[2K\u{202e}9"),
        &key.to_secret(),
        &mut crate::rng(94),
    )
    .unwrap();
    file.add(&keyring, spoofing.clone()).unwrap();
    let shown = file.display_name(&file.slots[1]).to_string();
    assert_eq!(shown, "Pixel\\u{1b}[2K\\u{202e}9");
    assert!(!shown.chars().any(|c| c.is_control()));
}
