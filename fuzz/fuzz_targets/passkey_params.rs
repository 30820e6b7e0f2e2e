#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::passkey::PasskeyParams;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PasskeyParams::decode(data) {
        assert_eq!(p.encode(), data);
    }
});
