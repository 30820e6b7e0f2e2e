#![no_main]
use libfuzzer_sys::fuzz_target;
use sealback_proto::proof::{verify, OperatorSigner, Scope, VaultId};
use std::sync::OnceLock;

// A fixed operator, so that well-formed tokens the fuzzer builds from the seed corpus reach
// the payload parser after the signature check.
fn operator() -> &'static OperatorSigner {
    static OP: OnceLock<OperatorSigner> = OnceLock::new();
    OP.get_or_init(|| OperatorSigner::from_seed(&[0x42; 32]))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let key = operator().public_key();
        // Never panics; a token that verifies names the account it was checked for, and this
        // vault or (version 1, logins only) none.
        let vault = VaultId([0x5a; 16]);
        if let Ok(claims) = verify(token, &[key], vault, "+15550100", Scope::Login, 1_795_000_000)
        {
            assert_eq!(claims.account, "+15550100");
            assert!(claims.aud.is_none_or(|aud| aud == vault));
        }
    }
});
