#![no_main]
//! Pack framing and header parsing.
use libfuzzer_sys::fuzz_target;
use sealback_core::pack::{decode_header, read_header};
use sealback_core::{Id, Keyring, RepoId, RootKey};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring::new(RepoId([1; 16]), vec![RootKey::from_bytes([2; 32])]);
    let _ = read_header(&keyring, &Id([3; 32]), data);
    let _ = decode_header(data, data.len());
});
