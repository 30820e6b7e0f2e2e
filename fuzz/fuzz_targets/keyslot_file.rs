#![no_main]
//! Keyslot files come from storage the operator controls: parse, re-encode, and try to unlock.
use libfuzzer_sys::fuzz_target;
use sealback_core::keyslot::KeySlotFile;
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = KeySlotFile::decode(data) {
        let again = KeySlotFile::decode(&file.encode()).expect("an encoded file decodes");
        assert_eq!(again, file, "decode/encode must round-trip");
        let key = RecoveryKey::parse(&"1".repeat(63).chars().chain(std::iter::once('0')).collect::<String>());
        if let Ok(key) = key {
            let _ = file.unlock(&mut RecoveryKeyProtector(key));
        }
    }
});
