#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::vault::VaultParams;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = VaultParams::decode(data) {
        assert_eq!(VaultParams::decode(&p.encode()).unwrap(), p);
    }
});
