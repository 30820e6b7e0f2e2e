#![no_main]
//! The passkey store envelope, including its capped Argon2id cost.
use libfuzzer_sys::fuzz_target;
use sealback_core::passkey::{StoreEnvelope, MAX_KDF_LANES, MAX_KDF_MEMORY_KIB, MAX_KDF_PASSES};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = StoreEnvelope::decode(data) {
        assert!(e.kdf.memory_kib <= MAX_KDF_MEMORY_KIB);
        assert!(e.kdf.passes <= MAX_KDF_PASSES && e.kdf.lanes <= MAX_KDF_LANES);
        assert_eq!(e.encode(), data);
    }
});
