//! Packs (SPEC §9): version 2 round trips, binds every blob to its id, type and epoch and its
//! header to the pack id, pads every sealed length to a Padmé length, and shows no structure;
//! version 1 packs still read.

use proptest::prelude::*;
use sealback_core::object::{self, padme, Compression, ObjectError, ObjectType};
use sealback_core::pack::{self, BlobEntry, PackBuilder, PackError};
use sealback_core::{Id, Keyring, RepoId, RootKey};

/// A keyring with root keys for epochs `0..epochs`, from `first` on.
fn keyring(first: u8, epochs: u8) -> Keyring {
    let roots = (0..epochs)
        .map(|e| RootKey::from_bytes([first + e; 32]))
        .collect();
    Keyring::new(RepoId([1; 16]), roots)
}

/// A version 2 pack of `bodies` (data blobs), and its entries.
fn build(
    k: &Keyring,
    pack_id: &Id,
    bodies: &[Vec<u8>],
    rng: &mut impl rand_core::CryptoRng,
) -> (Vec<u8>, Vec<BlobEntry>) {
    let mut b = PackBuilder::new();
    for body in bodies {
        let id = k.content_id().blob_id(ObjectType::Data, body);
        let s = pack::seal_blob(k, ObjectType::Data, &id, body, Compression::Zstd(3), rng);
        b.add(ObjectType::Data, id, s.epoch, &s.bytes, body.len());
    }
    b.finish(k, pack_id, rng)
}

fn bodies() -> Vec<Vec<u8>> {
    (0..5u8).map(|i| vec![i; 100 + 700 * i as usize]).collect()
}

fn is_auth_failure(e: &ObjectError) -> bool {
    matches!(e, ObjectError::Authentication { .. })
}

#[test]
fn packs_round_trip_and_bind_their_id() {
    let k = keyring(2, 1);
    let pid = Id([3; 32]);
    let (bytes, entries) = build(&k, &pid, &bodies(), &mut crate::rng(8));
    assert_eq!(&bytes[..5], b"SBPK\x02");
    assert_eq!(pack::read_header(&k, &pid, &bytes).unwrap(), entries);
    for (e, body) in entries.iter().zip(bodies()) {
        let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
        assert_eq!(pack::open_blob(&k, e, sealed, 1 << 20).unwrap(), body);
    }
    assert!(
        pack::read_header(&k, &Id([4; 32]), &bytes).is_err(),
        "a renamed pack is detected"
    );
    assert!(
        pack::read_header(&keyring(9, 1), &pid, &bytes).is_err(),
        "another repository's keys open nothing"
    );
    for cut in [1, pack::TRAILER_LEN, bytes.len() - 5] {
        assert!(pack::read_header(&k, &pid, &bytes[..bytes.len() - cut]).is_err());
    }
}

#[test]
fn every_bit_of_header_and_trailer_is_authenticated() {
    let k = keyring(2, 1);
    let pid = Id([3; 32]);
    let (bytes, entries) = build(&k, &pid, &bodies(), &mut crate::rng(9));
    let last = entries.last().unwrap();
    let blobs_end = (last.offset + last.length) as usize;
    for i in blobs_end..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(pack::read_header(&k, &pid, &bad).is_err(), "byte {i}");
    }
}

#[test]
fn a_blob_is_bound_to_its_id_type_and_epoch() {
    let k = keyring(2, 2);
    let pid = Id([3; 32]);
    let (bytes, entries) = build(&k, &pid, &bodies(), &mut crate::rng(10));
    let e = entries[2];
    assert_eq!(e.epoch, Some(1), "written in the current epoch");
    let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
    let wrong_id = BlobEntry {
        id: Id([0; 32]),
        ..e
    };
    let wrong_type = BlobEntry {
        ty: ObjectType::Tree,
        ..e
    };
    let wrong_epoch = BlobEntry {
        epoch: Some(0),
        ..e
    };
    for bad in [wrong_id, wrong_type, wrong_epoch] {
        let err = pack::open_blob(&k, &bad, sealed, 1 << 20).unwrap_err();
        assert!(is_auth_failure(&err), "{bad:?}: {err}");
    }
    // The same bytes read as a version 1 object are refused too.
    let as_v1 = BlobEntry { epoch: None, ..e };
    assert!(pack::open_blob(&k, &as_v1, sealed, 1 << 20).is_err());
    let unknown = BlobEntry {
        epoch: Some(7),
        ..e
    };
    assert!(matches!(
        pack::open_blob(&k, &unknown, sealed, 1 << 20),
        Err(ObjectError::UnknownEpoch { epoch: 7, .. })
    ));
}

#[test]
fn a_pack_written_in_an_older_epoch_is_read_after_a_rotation() {
    let old = keyring(2, 1);
    let pid = Id([3; 32]);
    let (bytes, entries) = build(&old, &pid, &bodies(), &mut crate::rng(11));
    let rotated = keyring(2, 3);
    assert_eq!(pack::read_header(&rotated, &pid, &bytes).unwrap(), entries);
    assert!(entries.iter().all(|e| e.epoch == Some(0)));
}

#[test]
fn sealed_blobs_and_headers_have_padme_lengths() {
    let k = keyring(2, 1);
    let pid = Id([3; 32]);
    // Incompressible bodies of every length from 1 to 600: many distinct sizes.
    let bodies: Vec<Vec<u8>> = (1..600usize)
        .map(|n| {
            (0..n)
                .map(|i| blake3::hash(&[i as u8, (i >> 8) as u8, n as u8]).as_bytes()[0])
                .collect()
        })
        .collect();
    let (bytes, entries) = build(&k, &pid, &bodies, &mut crate::rng(12));
    let mut lengths = std::collections::BTreeSet::new();
    for e in &entries {
        assert_eq!(padme(e.length as usize), e.length as usize, "{e:?}");
        lengths.insert(e.length);
    }
    // 599 distinct body sizes (sealed: 54 to 652 bytes) show as 40 stored sizes.
    assert_eq!(lengths.len(), 40);
    let last = entries.last().unwrap();
    let header_len = bytes.len() - pack::TRAILER_LEN - (last.offset + last.length) as usize;
    assert_eq!(padme(header_len), header_len);
}

#[test]
fn padme_is_the_papers_function() {
    // Values from the definition (PETS 2019, §4): E = floor(log2 L), S = floor(log2 E) + 1,
    // the low E - S bits are rounded up.
    for (len, padded) in [
        (0, 0),
        (1, 1),
        (2, 2),
        (9, 10),
        (100, 104),
        (1000, 1024),
        (1025, 1088),
        (4149, 4352),
        (1 << 20, 1 << 20),
        ((1 << 20) + 53, (1 << 20) + (1 << 15)),
    ] {
        assert_eq!(padme(len), padded, "padme({len})");
    }
}

proptest! {
    #[test]
    fn padme_rounds_up_little_and_is_idempotent(len in 0usize..(1 << 40)) {
        let p = padme(len);
        prop_assert!(p >= len);
        prop_assert_eq!(padme(p), p);
        if len >= 256 {
            prop_assert!((p - len) as f64 / len as f64 <= 1.0 / 16.0);
        }
    }

    #[test]
    fn pack_round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..12), seed in any::<u8>()) {
        let k = keyring(2, 1);
        let pid = Id([seed; 32]);
        let (bytes, entries) = build(&k, &pid, &bodies, &mut crate::rng(seed));
        prop_assert_eq!(&pack::read_header(&k, &pid, &bytes).unwrap(), &entries);
        for (e, body) in entries.iter().zip(&bodies) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            prop_assert_eq!(&pack::open_blob(&k, e, sealed, 1 << 20).unwrap(), body);
        }
    }

    #[test]
    fn pack_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let k = keyring(2, 2);
        let mut v2 = b"SBPK\x02".to_vec();
        v2.extend_from_slice(&bytes);
        let _ = pack::read_header(&k, &Id([3; 32]), &bytes);
        let _ = pack::read_header(&k, &Id([3; 32]), &v2);
    }
}

/// A version 1 pack as the version 1 writer made it: clear object headers, the header's
/// length in clear at the end.
fn build_v1(k: &Keyring, pack_id: &Id, bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<BlobEntry>) {
    let mut rng = crate::rng(13);
    let mut bytes = b"SBPK\x01".to_vec();
    let mut entries = vec![];
    for body in bodies {
        let id = k.content_id().blob_id(ObjectType::Data, body);
        let s = object::seal(
            k,
            ObjectType::Data,
            &id,
            body,
            Compression::Zstd(3),
            &mut rng,
        );
        entries.push(BlobEntry {
            ty: ObjectType::Data,
            id,
            epoch: None,
            offset: bytes.len() as u32,
            length: s.bytes.len() as u32,
            raw_length: body.len() as u32,
        });
        bytes.extend_from_slice(&s.bytes);
    }
    let mut header = vec![1u8];
    header.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in &entries {
        header.push(e.ty as u8);
        header.extend_from_slice(&e.id.0);
        for v in [e.offset, e.length, e.raw_length] {
            header.extend_from_slice(&v.to_be_bytes());
        }
    }
    let h = object::seal(
        k,
        ObjectType::PackHeader,
        pack_id,
        &header,
        Compression::Zstd(3),
        &mut rng,
    );
    bytes.extend_from_slice(&h.bytes);
    bytes.extend_from_slice(&(h.bytes.len() as u32).to_be_bytes());
    (bytes, entries)
}

#[test]
fn version_1_packs_are_still_read() {
    let k = keyring(2, 1);
    let pid = Id([3; 32]);
    let (bytes, entries) = build_v1(&k, &pid, &bodies());
    assert_eq!(pack::read_header(&k, &pid, &bytes).unwrap(), entries);
    for (e, body) in entries.iter().zip(bodies()) {
        let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
        assert_eq!(pack::open_blob(&k, e, sealed, 1 << 20).unwrap(), body);
    }
    assert!(pack::read_header(&k, &Id([4; 32]), &bytes).is_err());
}

#[test]
fn an_unknown_pack_version_is_refused_by_name() {
    let k = keyring(2, 1);
    let (mut bytes, _) = build(&k, &Id([3; 32]), &bodies(), &mut crate::rng(14));
    bytes[4] = 3;
    match pack::read_header(&k, &Id([3; 32]), &bytes) {
        Err(PackError::Format(e)) => assert!(e.to_string().contains("version"), "{e}"),
        other => panic!("{other:?}"),
    }
}
