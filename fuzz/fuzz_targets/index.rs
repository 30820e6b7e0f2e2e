#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::index::IndexFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = IndexFile::decode(data) {
        assert_eq!(f.encode(), data);
    }
});
