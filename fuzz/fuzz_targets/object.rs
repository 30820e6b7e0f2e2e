#![no_main]
//! Any bytes opened as any object type under a fixed keyring must fail cleanly.
use libfuzzer_sys::fuzz_target;
use sealback_core::object::{open, ObjectType};
use sealback_core::{Id, Keyring, RepoId, RootKey};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring::new(RepoId([1; 16]), vec![RootKey::from_bytes([2; 32])]);
    for ty in [ObjectType::Data, ObjectType::Snapshot, ObjectType::Index] {
        let _ = open(&keyring, ty, &Id([3; 32]), data, 1 << 20);
    }
});
