#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::vault::VaultPasskeyParams;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = VaultPasskeyParams::decode(data) {
        assert_eq!(VaultPasskeyParams::decode(&p.encode()).unwrap(), p);
    }
});
