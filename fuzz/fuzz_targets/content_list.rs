#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::snapshot::decode_content_list;

fuzz_target!(|data: &[u8]| {
    if let Ok(ids) = decode_content_list(data) {
        assert_eq!(ids.len() * 32, data.len());
    }
});
