#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::config::RepoConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = RepoConfig::decode(data) {
        assert_eq!(c.encode(), data);
    }
});
