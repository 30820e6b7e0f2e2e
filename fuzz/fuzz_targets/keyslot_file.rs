#![no_main]
//! Keyslot files come from storage the operator controls: parse (formats 1, 2 and 3 with its
//! labels), re-encode,
//! check the MAC of format 2 against some key, and try to unlock (and move an X25519 slot to
//! X-Wing, as the engine does).
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealback_core::keyslot::KeySlotFile;
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_core::{Keyring, RootKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = KeySlotFile::decode(data) {
        let again = KeySlotFile::decode(&file.encode()).expect("an encoded file decodes");
        assert_eq!(again, file, "decode/encode must round-trip");
        let some_key = Keyring::new(file.repo_id, vec![RootKey::from_bytes([1; 32])]);
        let _ = file.unvouched(&some_key);
        let key = RecoveryKey::parse(&"1".repeat(63).chars().chain(std::iter::once('0')).collect::<String>());
        if let Ok(key) = key {
            let mut rng = ChaCha20Rng::from_seed([7; 32]);
            let _ = file.unlock_and_upgrade(&mut RecoveryKeyProtector(key), &mut rng);
        }
    }
});
