//! Writes tests/vectors/account_proof.json (run from the repository root):
//!
//! ```text
//! cargo run -p sealback-proto --example gen_proof_vectors -- tests/vectors
//! ```
//! Ed25519 is deterministic, so fixed seeds and claims give the same tokens on every run.

use sealback_proto::proof::{Claims, OperatorSigner, Scope};
use serde_json::json;

const NOW: i64 = 1_795_000_000;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: gen_vectors DIR");
    let operator = OperatorSigner::from_seed(&[0x42; 32]);
    let other = OperatorSigner::from_seed(&[0x43; 32]);
    let claims = |account: &str, scope: Scope, iat: i64, exp: i64| Claims {
        account: account.into(),
        scope,
        iat,
        exp,
    };
    let valid = operator.issue(&claims("+15550100", Scope::Register, NOW - 10, NOW + 600));
    let login = operator.issue(&claims("+15550100", Scope::Login, NOW - 10, NOW + 600));
    let mut tampered = valid.clone().into_bytes();
    let at = "sbp1.".len() + 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let case = |name: &str, token: &str, account: &str, scope: &str, expected: &str| json!({"name": name, "token": token, "account": account, "wanted_scope": scope, "expected": expected});
    let cases = vec![
        case(
            "register proof admits registration",
            &valid,
            "+15550100",
            "register",
            "ok",
        ),
        case(
            "register proof admits login",
            &valid,
            "+15550100",
            "login",
            "ok",
        ),
        case(
            "login proof admits login",
            &login,
            "+15550100",
            "login",
            "ok",
        ),
        case(
            "login proof refuses registration",
            &login,
            "+15550100",
            "register",
            "wrong_scope",
        ),
        case(
            "another account",
            &valid,
            "+15550199",
            "login",
            "wrong_account",
        ),
        case(
            "signed by another operator",
            &other.issue(&claims("+15550100", Scope::Register, NOW - 10, NOW + 600)),
            "+15550100",
            "login",
            "bad_signature",
        ),
        case(
            "payload changed after signing",
            &tampered,
            "+15550100",
            "login",
            "bad_signature",
        ),
        case(
            "expired",
            &operator.issue(&claims("+15550100", Scope::Login, NOW - 700, NOW - 100)),
            "+15550100",
            "login",
            "expired",
        ),
        case(
            "valid for too long",
            &operator.issue(&claims("+15550100", Scope::Login, NOW, NOW + 2 * 86400)),
            "+15550100",
            "login",
            "expired",
        ),
        case(
            "issued in the future",
            &operator.issue(&claims("+15550100", Scope::Login, NOW + 3600, NOW + 4000)),
            "+15550100",
            "login",
            "expired",
        ),
        case(
            "no prefix",
            &valid["sbp1.".len()..],
            "+15550100",
            "login",
            "malformed",
        ),
        case("empty", "", "+15550100", "login", "missing"),
    ];
    let mut v = json!({
        "description": "Account proofs (SPEC §7c): Ed25519 over PROOF_CONTEXT ‖ payload; checked at `now` against `operator_public_key`.",
        "context": String::from_utf8_lossy(sealback_proto::proof::PROOF_CONTEXT),
        "operator_seed_hex": hex::encode([0x42u8; 32]),
        "operator_public_key": operator.public_key().to_text(),
        "now": NOW,
        "cases": cases,
    });
    // Keys sorted whatever serde_json's features are (`preserve_order` may be on).
    v.sort_all_objects();
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    std::fs::write(std::path::Path::new(&dir).join("account_proof.json"), text).unwrap();
    // Staged rollout buckets (SPEC §7d).
    let buckets: Vec<_> = [
        ("vault_passkey", "+15550100"),
        ("vault_passkey", "+15550101"),
        ("passkey", "+15550100"),
        ("password", ""),
        ("password", "ünïcode account"),
    ]
    .iter()
    .map(|(p, a)| json!({"protector": p, "account": a, "bucket": sealback_proto::rollout_bucket(p, a)}))
    .collect();
    let mut v = json!({
        "description": "Rollout buckets (SPEC §7d): first 8 bytes of SHA-256(\"sealback rollout 2026-11-26\" ‖ 0x00 ‖ protector ‖ 0x00 ‖ account), big-endian, mod 10,000; offered when bucket < percent × 100",
        "cases": buckets,
    });
    // Keys sorted whatever serde_json's features are (`preserve_order` may be on).
    v.sort_all_objects();
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    std::fs::write(std::path::Path::new(&dir).join("rollout.json"), text).unwrap();
}
