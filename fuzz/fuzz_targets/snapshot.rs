#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::decode(data) {
        assert_eq!(s.encode(), data);
    }
});
