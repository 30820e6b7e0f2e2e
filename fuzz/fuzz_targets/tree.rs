#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_core::snapshot::{validate_name, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        assert_eq!(t.encode(), data);
        for n in &t.nodes {
            assert!(validate_name(&n.name).is_ok());
        }
    }
});
