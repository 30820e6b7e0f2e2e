#![no_main]
//! Pack framing and header parsing, both versions, under a keyring of two epochs (a version 2
//! trailer is tried under each).
use libfuzzer_sys::fuzz_target;
use sealback_core::pack::{decode_header, read_header, VERSION, VERSION_1};
use sealback_core::{Id, Keyring, RepoId, RootKey};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring::new(
        RepoId([1; 16]),
        vec![RootKey::from_bytes([2; 32]), RootKey::from_bytes([3; 32])],
    );
    let _ = read_header(&keyring, &Id([3; 32]), data);
    let _ = decode_header(data, VERSION_1, data.len());
    let _ = decode_header(data, VERSION, data.len());
});
