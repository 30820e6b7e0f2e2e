use proptest::prelude::*;
use sealback_core::object::{open, seal, Compression, ObjectError, ObjectType, OVERHEAD};
use sealback_core::{Id, Keyring, RepoId, RootKey};

fn keyring(b: u8) -> Keyring {
    Keyring::new(RepoId([b; 16]), vec![RootKey::from_bytes([b; 32])])
}

#[test]
fn every_flipped_bit_and_every_truncation_fails() {
    let k = keyring(1);
    let id = Id([9; 32]);
    let sealed = seal(
        &k,
        ObjectType::Data,
        &id,
        b"secret message",
        Compression::None,
        &mut crate::rng(1),
    )
    .bytes;
    assert_eq!(sealed.len(), OVERHEAD + 14);
    for byte in 0..sealed.len() {
        for bit in 0..8 {
            let mut t = sealed.clone();
            t[byte] ^= 1 << bit;
            assert!(
                open(&k, ObjectType::Data, &id, &t, 1024).is_err(),
                "flip at {byte}.{bit} accepted"
            );
        }
    }
    for len in 0..sealed.len() {
        assert!(
            open(&k, ObjectType::Data, &id, &sealed[..len], 1024).is_err(),
            "truncation to {len} accepted"
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(open(&k, ObjectType::Data, &id, &longer, 1024).is_err());
}

#[test]
fn objects_are_bound_to_id_type_and_keys() {
    let k = keyring(1);
    let id = Id([9; 32]);
    let sealed = seal(
        &k,
        ObjectType::Snapshot,
        &id,
        b"x",
        Compression::None,
        &mut crate::rng(2),
    )
    .bytes;
    assert!(matches!(
        open(&k, ObjectType::Snapshot, &Id([8; 32]), &sealed, 16),
        Err(ObjectError::Authentication { .. })
    ));
    assert!(matches!(
        open(&k, ObjectType::Index, &id, &sealed, 16),
        Err(ObjectError::WrongType { .. })
    ));
    assert!(matches!(
        open(&keyring(2), ObjectType::Snapshot, &id, &sealed, 16),
        Err(ObjectError::Authentication { .. })
    ));
    let mut epoch = sealed.clone();
    epoch[5] = 1;
    assert!(matches!(
        open(&k, ObjectType::Snapshot, &id, &epoch, 16),
        Err(ObjectError::UnknownEpoch { epoch: 1, .. })
    ));
}

#[test]
fn compression_is_kept_only_when_it_pays_and_bombs_are_refused() {
    let k = keyring(3);
    let id = Id([1; 32]);
    let text = vec![b'a'; 100_000];
    let s = seal(
        &k,
        ObjectType::Data,
        &id,
        &text,
        Compression::Zstd(3),
        &mut crate::rng(3),
    );
    assert!(s.compressed && s.bytes.len() < 1_000);
    assert_eq!(
        open(&k, ObjectType::Data, &id, &s.bytes, 100_000).unwrap(),
        text
    );
    assert!(matches!(
        open(&k, ObjectType::Data, &id, &s.bytes, 99_999),
        Err(ObjectError::Decompression { .. })
    ));
    let mut noise = vec![0u8; 10_000];
    rand_core::Rng::fill_bytes(&mut crate::rng(4), &mut noise);
    let s = seal(
        &k,
        ObjectType::Data,
        &id,
        &noise,
        Compression::Zstd(3),
        &mut crate::rng(3),
    );
    assert!(!s.compressed);
    assert_eq!(s.bytes.len(), noise.len() + OVERHEAD);
}

#[test]
fn the_same_plaintext_seals_differently_each_time() {
    let k = keyring(1);
    let id = Id([9; 32]);
    let a = seal(
        &k,
        ObjectType::Data,
        &id,
        b"same",
        Compression::None,
        &mut crate::rng(1),
    )
    .bytes;
    let b = seal(
        &k,
        ObjectType::Data,
        &id,
        b"same",
        Compression::None,
        &mut crate::rng(2),
    )
    .bytes;
    assert_ne!(a, b);
}

proptest! {
    #[test]
    fn seal_open_round_trip(body in proptest::collection::vec(any::<u8>(), 0..5000), compress in any::<bool>(), seed in any::<u8>()) {
        let k = keyring(7);
        let id = Id([seed; 32]);
        let c = if compress { Compression::Zstd(1) } else { Compression::None };
        let s = seal(&k, ObjectType::Tree, &id, &body, c, &mut crate::rng(seed));
        prop_assert_eq!(open(&k, ObjectType::Tree, &id, &s.bytes, 5000).unwrap(), body);
    }
}
