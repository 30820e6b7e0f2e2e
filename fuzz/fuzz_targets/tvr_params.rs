#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_tvr::{RealmRecord, TvrParams};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TvrParams::decode(data) {
        assert_eq!(p.encode(), data);
        assert_eq!(TvrParams::decode(&p.encode()).unwrap(), p);
    }
    if let Ok(r) = RealmRecord::decode(data) {
        assert_eq!(&r.encode()[..], data);
    }
});
