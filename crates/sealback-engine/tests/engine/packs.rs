//! What a pack file tells someone who holds it but no key (issue 13, item 4).
//!
//! The attacks here read a real repository on disk the way the storage operator can: bytes only,
//! no keyring. Each test asserts that the attack learns nothing; on the version 1 pack layout
//! (a clear `01 ‖ type ‖ epoch` header before every object, the header length in clear) they
//! recovered every blob boundary and size.

use super::{backup_at, init};
use sealback_corpus::ChatStoreSpec;
use sealback_store::Store;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every pack file under a repository folder.
pub(crate) fn pack_files(repo_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![repo_dir.join("packs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The keyless scan: offsets where a version 1 object header of a blob type in epoch 0 starts
/// (`01 ‖ 01|02|03 ‖ 00000000`, 48 fixed bits, so a chance match is about one in 10^14 per
/// byte). Consecutive hits are blob boundaries and their distance the blob's exact size.
fn scan_for_blob_headers(pack: &[u8]) -> Vec<(usize, u8)> {
    pack.windows(6)
        .enumerate()
        .filter(|(_, w)| w[0] == 1 && (1..=3).contains(&w[1]) && w[2..6] == [0, 0, 0, 0])
        .map(|(i, w)| (i, w[1]))
        .collect()
}

/// The keyless trailer read: the last four bytes as the length of a pack header object that
/// announces itself (`01 ‖ 10 ‖ epoch 0`); from it, where the blobs end.
fn header_from_trailer(pack: &[u8]) -> Option<usize> {
    let len = u32::from_be_bytes(pack.get(pack.len().checked_sub(4)?..)?.try_into().ok()?);
    let start = pack.len().checked_sub(4 + len as usize)?;
    (pack.get(start..start + 6)? == [1, 0x10, 0, 0, 0, 0]).then_some(start)
}

/// The keyless scan over every pack of a repository: (blob headers found, pack headers found
/// from the trailer).
pub(crate) fn keyless_scan(repo_dir: &Path) -> (usize, usize) {
    pack_files(repo_dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .map(|b| {
            (
                scan_for_blob_headers(&b).len(),
                usize::from(header_from_trailer(&b).is_some()),
            )
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

async fn backed_up_chat_store() -> (tempfile::TempDir, PathBuf, sealback_engine::Repository) {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("chats");
    sealback_corpus::generate(&chats, &ChatStoreSpec::tiny(13)).unwrap();
    let repo_dir = tmp.path().join("repo");
    let store = Store::open(repo_dir.to_str().unwrap()).unwrap();
    let (mut repo, _) = init(&store).await;
    backup_at(&mut repo, &chats, 1).await.unwrap();
    (tmp, repo_dir, repo)
}

#[tokio::test]
async fn a_keyless_scan_of_packs_finds_no_blob_boundaries() {
    let (_tmp, repo_dir, repo) = backed_up_chat_store().await;
    // The truth, from the (encrypted) index: where every stored blob starts and how long it is.
    let truth: BTreeSet<(String, usize, usize)> = repo
        .index_entries()
        .unwrap()
        .into_iter()
        .map(|l| {
            (
                l.pack.to_hex(),
                l.entry.offset as usize,
                l.entry.length as usize,
            )
        })
        .collect();
    assert!(truth.len() > 100, "only {} blobs", truth.len());
    let packs = pack_files(&repo_dir);
    assert!(!packs.is_empty());
    let mut recovered = BTreeSet::new();
    let mut hits_total = 0usize;
    let mut headers_found = 0usize;
    for path in &packs {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let hits = scan_for_blob_headers(&bytes);
        hits_total += hits.len();
        let end = header_from_trailer(&bytes);
        headers_found += usize::from(end.is_some());
        // A blob ends where the next one starts, or where the pack header starts.
        let ends = hits.iter().skip(1).map(|(o, _)| Some(*o)).chain([end]);
        for ((offset, _ty), end) in hits.iter().zip(ends) {
            if let Some(end) = end {
                recovered.insert((name.clone(), *offset, end - offset));
            }
        }
    }
    let exact = recovered.intersection(&truth).count();
    assert_eq!(
        (hits_total, exact, headers_found),
        (0, 0, 0),
        "without a key, a scan of {} packs found {hits_total} blob headers, the exact place and \
         size of {exact} of the {} blobs, and {headers_found} pack headers from the trailer",
        packs.len(),
        truth.len(),
    );
}
