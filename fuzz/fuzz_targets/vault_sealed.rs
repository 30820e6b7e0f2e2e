#![no_main]
//! The vault's stored-value parsers: a sealed value (version 2 or 1) and a bound record, fed
//! arbitrary bytes. Nothing may panic, and nothing forged may open.
use libfuzzer_sys::fuzz_target;
use sealback_vault::db::RecordKind;
use sealback_vault::integrity::{generation_of, Integrity};
use sealback_vault::sealer::{Sealer, SoftwareSealer};
use std::sync::{Arc, OnceLock};

fn sealer() -> &'static Arc<SoftwareSealer> {
    static SEALER: OnceLock<(tempfile::TempDir, Arc<SoftwareSealer>)> = OnceLock::new();
    &SEALER
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let sealer = SoftwareSealer::open_or_create(&dir.path().join("key")).unwrap();
            (dir, Arc::new(sealer))
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let sealer = sealer();
    assert!(sealer.open(b"ctx", data).is_none());
    let _ = generation_of(data);
    let integrity = Integrity::new(sealer.clone());
    assert!(integrity
        .open_record(RecordKind::Password, "account", data)
        .is_none());
});
