#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::lock::LockRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = LockRecord::decode(data) {
        assert_eq!(r.encode(), data);
    }
});
