//! The local index cache's layout: round trips, and refusal of anything cut, changed or
//! foreign.

use proptest::prelude::*;
use sealback_core::index_cache::{self, CacheMac, Head, Record, Tail};
use sealback_core::object::ObjectType;
use sealback_core::pack::BlobEntry;
use sealback_core::{Id, Keyring, RepoId, RootKey};

fn keyring(seed: u8) -> Keyring {
    Keyring::new(RepoId([seed; 16]), vec![RootKey::from_bytes([seed; 32])])
}

fn records(ids: &[[u8; 32]], packs: u32) -> Vec<Record> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    ids.iter()
        .enumerate()
        .map(|(i, id)| Record {
            pack: i as u32 % packs,
            entry: BlobEntry {
                ty: [ObjectType::Data, ObjectType::Tree, ObjectType::ContentList][i % 3],
                id: Id(*id),
                epoch: (i % 2 == 0).then_some(i as u32),
                offset: i as u32 * 7,
                length: 33 + i as u32,
                raw_length: i as u32,
            },
        })
        .collect()
}

fn head(keyring: &Keyring, packs: u32, covered: u8) -> Head {
    Head {
        repo_id: keyring.repo_id(),
        packs: (0..packs).map(|p| Id([p as u8; 32])).collect(),
        covered: (0..covered).map(|c| Id([c; 32])).collect(),
    }
}

proptest! {
    #[test]
    fn round_trips(ids in prop::collection::vec(any::<[u8; 32]>(), 0..300), packs in 1u32..5, covered in 0u8..4) {
        let k = keyring(1);
        let head = head(&k, packs, covered);
        let records = records(&ids, packs);
        let bytes = index_cache::encode(&k, &head, &records);
        let (h, fanout, r) = index_cache::decode(&bytes, Some(CacheMac::new(&k))).unwrap();
        prop_assert_eq!(h, head);
        prop_assert_eq!(r, records.clone());
        prop_assert_eq!(*fanout.last().unwrap() as usize, records.len());
        // Every record sits in its bucket.
        let bits = index_cache::fanout_bits(records.len() as u64);
        for (i, rec) in records.iter().enumerate() {
            let b = index_cache::bucket(&rec.entry.id, bits);
            let start = if b == 0 { 0 } else { fanout[b - 1] as usize };
            prop_assert!(start <= i && i < fanout[b] as usize);
        }
    }

    #[test]
    fn any_change_is_refused(ids in prop::collection::vec(any::<[u8; 32]>(), 1..50), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let k = keyring(2);
        let bytes = index_cache::encode(&k, &head(&k, 2, 1), &records(&ids, 2));
        let mut bad = bytes.clone();
        let at = at.index(bad.len());
        bad[at] ^= 1 << bit;
        prop_assert!(index_cache::decode(&bad, Some(CacheMac::new(&k))).is_err());
        for len in [0, bytes.len() / 2, bytes.len() - 1] {
            prop_assert!(index_cache::decode(&bytes[..len], Some(CacheMac::new(&k))).is_err());
        }
    }
}

#[test]
fn another_repositorys_key_does_not_verify() {
    let k = keyring(3);
    let bytes = index_cache::encode(&k, &head(&k, 1, 1), &records(&[[5; 32]], 1));
    assert!(index_cache::decode(&bytes, Some(CacheMac::new(&k))).is_ok());
    assert!(index_cache::decode(&bytes, Some(CacheMac::new(&keyring(4)))).is_err());
    // Same repository id, another root key (not the genesis key this repository has).
    let same_id = Keyring::new(k.repo_id(), vec![RootKey::from_bytes([9; 32])]);
    assert!(index_cache::decode(&bytes, Some(CacheMac::new(&same_id))).is_err());
}

#[test]
fn layout_adds_up_or_is_refused() {
    let tail = Tail {
        bits: 3,
        records: 10,
    };
    let head_len = 4 + 1 + 16 + 4 + 4;
    let len = head_len + 10 * 56 + (4 << 3) + 9 + 32;
    let layout = tail.layout(len).unwrap();
    assert_eq!(layout.head_len, head_len);
    assert_eq!(layout.fanout_at, head_len + 560);
    assert!(tail.layout(len - 1).is_err());
    assert!(Tail {
        bits: 3,
        records: u64::MAX
    }
    .layout(len)
    .is_err());
    assert!(Tail::decode(&[17, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
}

#[test]
fn fanout_bits_keep_buckets_small() {
    assert_eq!(index_cache::fanout_bits(0), 0);
    assert_eq!(index_cache::fanout_bits(300_000), 15);
    assert_eq!(index_cache::fanout_bits(1 << 30), 16);
}
