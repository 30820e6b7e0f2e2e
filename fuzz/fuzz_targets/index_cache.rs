#![no_main]
//! The local index cache (core::index_cache): any bytes are refused or decoded, never a panic;
//! what decodes re-encodes (under a fixed key) to a file that decodes, MAC checked, to the same.
use libfuzzer_sys::fuzz_target;
use sealback_core::index_cache::{self, CacheMac};
use sealback_core::{Keyring, RepoId, RootKey};

fuzz_target!(|data: &[u8]| {
    if let Ok((head, _fanout, records)) = index_cache::decode(data, None) {
        let keyring = Keyring::new(head.repo_id, vec![RootKey::from_bytes([9; 32])]);
        let encoded = index_cache::encode(&keyring, &head, &records);
        let (head2, _, records2) = index_cache::decode(&encoded, Some(CacheMac::new(&keyring)))
            .expect("a re-encoded cache decodes");
        assert_eq!(head2, head);
        assert_eq!(records2, records);
        // A MAC under another repository's key never verifies.
        let other = Keyring::new(RepoId([1; 16]), vec![RootKey::from_bytes([8; 32])]);
        assert!(index_cache::decode(&encoded, Some(CacheMac::new(&other))).is_err());
    }
});
