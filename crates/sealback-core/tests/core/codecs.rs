use proptest::prelude::*;
use sealback_core::chunker::{Chunker, ChunkerParams};
use sealback_core::config::RepoConfig;
use sealback_core::index::IndexFile;
use sealback_core::object::ObjectType;
use sealback_core::pack::{self, BlobEntry};
use sealback_core::secret::SubKey;
use sealback_core::snapshot::{Content, Node, NodeKind, Snapshot, Summary, Tree};
use sealback_core::{Id, RepoId};

fn id() -> impl Strategy<Value = Id> {
    any::<[u8; 32]>().prop_map(Id)
}

fn node_kind() -> impl Strategy<Value = NodeKind> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u8>(),
            proptest::collection::vec(id(), 0..5),
            any::<bool>()
        )
            .prop_map(|(size, flags, ids, lists)| NodeKind::File {
                size,
                flags,
                content: if lists {
                    Content::Lists(ids)
                } else {
                    Content::Blobs(ids)
                }
            }),
        id().prop_map(|subtree| NodeKind::Dir { subtree }),
        proptest::collection::vec(any::<u8>(), 0..50)
            .prop_map(|target| NodeKind::Symlink { target }),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    proptest::collection::btree_map(
        "[a-zA-Z0-9 ._-]{1,20}",
        (any::<u32>(), any::<i64>(), 0u32..1_000_000_000, node_kind()),
        0..8,
    )
    .prop_filter_map("names must be valid", |m| {
        if m.keys().any(|k| k == "." || k == "..") {
            return None;
        }
        Some(Tree {
            nodes: m
                .into_iter()
                .map(|(name, (mode, mtime_s, mtime_ns, kind))| Node {
                    name: name.into_bytes(),
                    mode,
                    mtime_s,
                    mtime_ns,
                    kind,
                })
                .collect(),
        })
    })
}

proptest! {
    #[test]
    fn tree_round_trip(t in tree()) {
        prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn snapshot_round_trip(time in any::<i64>(), host in ".{0,30}", paths in proptest::collection::vec(".{0,40}", 0..4), tree in id(), parent in proptest::option::of(id()), tags in proptest::collection::vec("[a-z]{0,10}", 0..3), n in any::<[u64; 5]>()) {
        let s = Snapshot { time_unix_ns: time, hostname: host, paths, tree, parent, tags, summary: Summary { files: n[0], dirs: n[1], bytes_read: n[2], bytes_added: n[3], blobs_added: n[4] }, left_out: vec![] };
        prop_assert_eq!(Snapshot::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn index_round_trip(packs in proptest::collection::vec((id(), any::<bool>(), proptest::collection::vec((id(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), 1u8..4), 1..5)), 0..4)) {
        // Each pack is all version 1 (no epochs) or all version 2.
        let f = IndexFile { packs: packs.into_iter().map(|(p, v2, es)| (p, es.into_iter().map(|(id, epoch, offset, length, raw_length, t)| BlobEntry { ty: ObjectType::from_u8(t).unwrap(), id, epoch: v2.then_some(epoch), offset, length, raw_length }).collect())).collect() };
        prop_assert_eq!(IndexFile::decode(&f.encode()).unwrap(), f);
    }

    #[test]
    fn version_1_index_files_still_decode(packs in proptest::collection::vec((id(), proptest::collection::vec((id(), any::<u32>(), any::<u32>(), any::<u32>(), 1u8..4), 0..5)), 0..4)) {
        // The version 1 layout, written by hand: no pack version byte, 45-byte entries.
        let mut body = vec![1u8];
        body.extend_from_slice(&(packs.len() as u32).to_be_bytes());
        for (p, es) in &packs {
            body.extend_from_slice(&p.0);
            body.extend_from_slice(&(es.len() as u32).to_be_bytes());
            for (id, offset, length, raw_length, t) in es {
                body.push(*t);
                body.extend_from_slice(&id.0);
                for v in [offset, length, raw_length] {
                    body.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        let f = IndexFile::decode(&body).unwrap();
        prop_assert_eq!(f.packs.len(), packs.len());
        for ((p, es), (q, fs)) in packs.iter().zip(&f.packs) {
            prop_assert_eq!(p, q);
            let expected: Vec<BlobEntry> = es.iter().map(|(id, offset, length, raw_length, t)| BlobEntry { ty: ObjectType::from_u8(*t).unwrap(), id: *id, epoch: None, offset: *offset, length: *length, raw_length: *raw_length }).collect();
            prop_assert_eq!(&expected, fs);
        }
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Tree::decode(&bytes);
        let _ = Snapshot::decode(&bytes);
        let _ = IndexFile::decode(&bytes);
        let _ = RepoConfig::decode(&bytes);
        let _ = sealback_core::keyslot::KeySlotFile::decode(&bytes);
        let _ = pack::decode_header(&bytes, pack::VERSION_1, 1000);
        let _ = pack::decode_header(&bytes, pack::VERSION, 1000);
        let _ = sealback_core::vault::VaultParams::decode(&bytes);
        let _ = sealback_core::vault::VaultPasskeyParams::decode(&bytes);
    }

    #[test]
    fn vault_passkey_params_round_trip(id in proptest::option::of(any::<[u8; 16]>()), url in ".{0,80}", account in ".{1,60}", rp_id in "[a-z.]{1,60}", share in any::<[u8; 32]>()) {
        let (vault_id, legacy_url) = match id {
            Some(id) => (Some(sealback_core::vault::VaultId(id)), None),
            None => (None, Some(url)),
        };
        let p = sealback_core::vault::VaultPasskeyParams { vault_id, legacy_url, account, rp_id, storage_share: zeroize::Zeroizing::new(share) };
        prop_assert_eq!(sealback_core::vault::VaultPasskeyParams::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn vault_params_round_trip(url in proptest::option::of(".{0,80}"), account in ".{1,60}", key in proptest::collection::vec(any::<u8>(), 0..64)) {
        let p = sealback_core::vault::VaultParams { legacy_url: url, account, server_public_key: key };
        prop_assert_eq!(sealback_core::vault::VaultParams::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn chunks_respect_bounds_and_cover_the_input(len in 0usize..200_000, seed in any::<u8>()) {
        let params = ChunkerParams { min: 2048, avg_bits: 13, max: 32768 };
        let c = Chunker::new(&SubKey::from_bytes([seed; 32]), params);
        let mut data = vec![0u8; len];
        rand_core::Rng::fill_bytes(&mut crate::rng(seed), &mut data);
        let lengths = c.split_all(&data);
        prop_assert_eq!(lengths.iter().sum::<usize>(), len);
        for (i, &n) in lengths.iter().enumerate() {
            prop_assert!(n <= params.max);
            if i + 1 < lengths.len() { prop_assert!(n >= params.min); }
        }
    }
}

#[test]
fn chunk_boundaries_resynchronise_after_an_insertion() {
    let params = ChunkerParams {
        min: 2048,
        avg_bits: 13,
        max: 65536,
    };
    let c = Chunker::new(&SubKey::from_bytes([5; 32]), params);
    let mut data = vec![0u8; 1 << 20];
    rand_core::Rng::fill_bytes(&mut crate::rng(5), &mut data);
    let mut edited = data.clone();
    edited.splice(1000..1000, b"inserted".iter().copied());
    let chunks = |d: &[u8]| {
        let mut out = std::collections::HashSet::new();
        let mut off = 0;
        for n in c.split_all(d) {
            out.insert(d[off..off + n].to_vec());
            off += n;
        }
        out
    };
    let (a, b) = (chunks(&data), chunks(&edited));
    let shared = a.intersection(&b).count();
    assert!(
        shared + 3 >= a.len(),
        "only {shared} of {} chunks survive an 8-byte insertion",
        a.len()
    );
}

#[test]
fn streaming_cut_agrees_with_whole_buffer_cut() {
    let c = Chunker::new(&SubKey::from_bytes([1; 32]), ChunkerParams::V1);
    let mut data = vec![0u8; 5 << 20];
    rand_core::Rng::fill_bytes(&mut crate::rng(6), &mut data);
    let whole = c.split_all(&data);
    // Feeding a prefix that is shorter than max never decides early.
    assert_eq!(c.cut(&data[..ChunkerParams::V1.min], false), None);
    let first = c
        .cut(
            &data[..ChunkerParams::V1.max.min(data.len())],
            data.len() <= ChunkerParams::V1.max,
        )
        .unwrap();
    assert_eq!(first, whole[0]);
}

#[test]
fn config_round_trip_and_version_check() {
    let c = RepoConfig {
        repo_id: RepoId([7; 16]),
    };
    let mut b = c.encode();
    assert_eq!(RepoConfig::decode(&b).unwrap(), c);
    b[9] = 2;
    let e = RepoConfig::decode(&b).unwrap_err().to_string();
    assert!(e.contains("newer sealback"), "{e}");
}
