#![no_main]
//! The version 2 pack reader on bytes after a valid prefix, and every blob entry it could be
//! given: headers, trailers and headerless blobs must fail cleanly, whatever their length.
use libfuzzer_sys::fuzz_target;
use sealback_core::object::{open_headerless, ObjectType};
use sealback_core::pack::{open_blob, read_header, BlobEntry};
use sealback_core::{Id, Keyring, RepoId, RootKey};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring::new(RepoId([1; 16]), vec![RootKey::from_bytes([2; 32])]);
    let mut pack = b"SBPK\x02".to_vec();
    pack.extend_from_slice(data);
    let _ = read_header(&keyring, &Id([3; 32]), &pack);
    for ty in [ObjectType::Data, ObjectType::PackHeader, ObjectType::PackTrailer] {
        let _ = open_headerless(&keyring, ty, 0, &Id([3; 32]), data, 1 << 20);
    }
    let entry = BlobEntry {
        ty: ObjectType::Data,
        id: Id([4; 32]),
        epoch: Some(0),
        offset: 5,
        length: data.len() as u32,
        raw_length: 0,
    };
    let _ = open_blob(&keyring, &entry, data, 1 << 20);
});
