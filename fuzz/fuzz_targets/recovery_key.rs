#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::recovery::RecoveryKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(k) = RecoveryKey::parse(s) {
            assert_eq!(RecoveryKey::parse(&k.display_groups()).unwrap(), k);
        }
    }
});
