//! Writes tests/vectors/account_proof.json (run from the repository root):
//!
//! ```text
//! cargo run -p sealback-proto --example gen_proof_vectors -- tests/vectors
//! ```
//! Ed25519 is deterministic, so fixed seeds and claims give the same tokens on every run.

use sealback_proto::proof::{Claims, OperatorSigner, Scope, VaultId};
use serde_json::json;

const NOW: i64 = 1_795_000_000;
/// The vault checking the proofs, and another one.
const VAULT: VaultId = VaultId([0x5a; 16]);
const OTHER_VAULT: VaultId = VaultId([0xa5; 16]);

/// One vector: `token` checked by the vault `audience` for `account` and `wanted`.
fn case(
    name: &str,
    token: &str,
    audience: VaultId,
    account: &str,
    wanted: &str,
    expected: &str,
) -> serde_json::Value {
    json!({"name": name, "token": token, "audience": audience.to_hex(), "account": account,
        "wanted_scope": wanted, "expected": expected})
}

/// `token` with its first `from` prefix replaced by `to`.
fn relabel(token: &str, from: &str, to: &str) -> String {
    format!("{to}{}", token.strip_prefix(from).unwrap())
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: gen_vectors DIR");
    let operator = OperatorSigner::from_seed(&[0x42; 32]);
    let other = OperatorSigner::from_seed(&[0x43; 32]);
    let claims = |account: &str, scope: Scope, aud: Option<VaultId>, iat: i64, exp: i64| Claims {
        account: account.into(),
        scope,
        aud,
        iat,
        exp,
    };
    let for_vault = |scope: Scope| claims("+15550100", scope, Some(VAULT), NOW - 10, NOW + 600);
    let valid = operator.issue(&for_vault(Scope::Register));
    let login = operator.issue(&for_vault(Scope::Login));
    let v1_register = operator.issue(&claims(
        "+15550100",
        Scope::Register,
        None,
        NOW - 10,
        NOW + 600,
    ));
    let v1_login = operator.issue(&claims(
        "+15550100",
        Scope::Login,
        None,
        NOW - 10,
        NOW + 600,
    ));
    let mut tampered = valid.clone().into_bytes();
    let at = "sbp2.".len() + 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let at_vault = |name: &str, token: &str, account: &str, wanted: &str, expected: &str| {
        case(name, token, VAULT, account, wanted, expected)
    };
    let cases = vec![
        at_vault(
            "register proof admits registration",
            &valid,
            "+15550100",
            "register",
            "ok",
        ),
        at_vault(
            "register proof admits login",
            &valid,
            "+15550100",
            "login",
            "ok",
        ),
        at_vault(
            "login proof admits login",
            &login,
            "+15550100",
            "login",
            "ok",
        ),
        at_vault(
            "login proof refuses registration",
            &login,
            "+15550100",
            "register",
            "wrong_scope",
        ),
        at_vault(
            "another account",
            &valid,
            "+15550199",
            "login",
            "wrong_account",
        ),
        case(
            "a proof for another vault",
            &valid,
            OTHER_VAULT,
            "+15550100",
            "register",
            "wrong_audience",
        ),
        case(
            "a login proof for another vault",
            &login,
            OTHER_VAULT,
            "+15550100",
            "login",
            "wrong_audience",
        ),
        at_vault(
            "version 1 register proof refused for registration",
            &v1_register,
            "+15550100",
            "register",
            "no_audience",
        ),
        at_vault(
            "version 1 register proof admits login",
            &v1_register,
            "+15550100",
            "login",
            "ok",
        ),
        at_vault(
            "version 1 login proof admits login",
            &v1_login,
            "+15550100",
            "login",
            "ok",
        ),
        at_vault(
            "version 1 token relabelled as version 2",
            &relabel(&v1_register, "sbp1.", "sbp2."),
            "+15550100",
            "login",
            "bad_signature",
        ),
        at_vault(
            "version 2 token relabelled as version 1",
            &relabel(&valid, "sbp2.", "sbp1."),
            "+15550100",
            "login",
            "bad_signature",
        ),
        at_vault(
            "signed by another operator",
            &other.issue(&for_vault(Scope::Register)),
            "+15550100",
            "login",
            "bad_signature",
        ),
        at_vault(
            "payload changed after signing",
            &tampered,
            "+15550100",
            "login",
            "bad_signature",
        ),
        at_vault(
            "expired",
            &operator.issue(&claims(
                "+15550100",
                Scope::Login,
                Some(VAULT),
                NOW - 700,
                NOW - 100,
            )),
            "+15550100",
            "login",
            "expired",
        ),
        at_vault(
            "valid for too long",
            &operator.issue(&claims(
                "+15550100",
                Scope::Login,
                Some(VAULT),
                NOW,
                NOW + 2 * 86400,
            )),
            "+15550100",
            "login",
            "expired",
        ),
        at_vault(
            "issued in the future",
            &operator.issue(&claims(
                "+15550100",
                Scope::Login,
                Some(VAULT),
                NOW + 3600,
                NOW + 4000,
            )),
            "+15550100",
            "login",
            "expired",
        ),
        at_vault(
            "no prefix",
            &valid["sbp2.".len()..],
            "+15550100",
            "login",
            "malformed",
        ),
        at_vault("empty", "", "+15550100", "login", "missing"),
    ];
    let mut v = json!({
        "description": "Account proofs (SPEC §7c): Ed25519 over the version's context ‖ payload; each case checked at `now` against `operator_public_key` by the vault whose id is `audience`.",
        "context": String::from_utf8_lossy(sealback_proto::proof::PROOF_CONTEXT),
        "context_v1": String::from_utf8_lossy(sealback_proto::proof::PROOF_CONTEXT_V1),
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
