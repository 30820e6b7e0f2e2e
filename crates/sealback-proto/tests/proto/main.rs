//! The wire format's tests: account proof vectors and round trips.

use sealback_proto::proof::{
    parse_vault_id, verify, Claims, OperatorKey, OperatorSigner, ProofError, Scope, VaultId,
};
use serde_json::Value;

const VAULT: VaultId = VaultId([0x5a; 16]);

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/account_proof.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).unwrap()
}

fn outcome(r: &Result<Claims, ProofError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ProofError::Missing) => "missing",
        Err(ProofError::Malformed) => "malformed",
        Err(ProofError::BadSignature) => "bad_signature",
        Err(ProofError::WrongAccount) => "wrong_account",
        Err(ProofError::WrongAudience) => "wrong_audience",
        Err(ProofError::NoAudience) => "no_audience",
        Err(ProofError::WrongScope) => "wrong_scope",
        Err(ProofError::Expired) => "expired",
        Err(_) => "other",
    }
}

#[test]
fn account_proof_vectors() {
    let v = vectors();
    let seed: [u8; 32] = hex::decode(v["operator_seed_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = OperatorKey::parse(v["operator_public_key"].as_str().unwrap()).unwrap();
    assert_eq!(OperatorSigner::from_seed(&seed).public_key(), key);
    let now = v["now"].as_i64().unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut seen = std::collections::BTreeSet::new();
    for c in cases {
        let wanted = match c["wanted_scope"].as_str().unwrap() {
            "register" => Scope::Register,
            _ => Scope::Login,
        };
        let audience = parse_vault_id(c["audience"].as_str().unwrap()).unwrap();
        let r = verify(
            c["token"].as_str().unwrap(),
            std::slice::from_ref(&key),
            audience,
            c["account"].as_str().unwrap(),
            wanted,
            now,
        );
        assert_eq!(
            outcome(&r),
            c["expected"].as_str().unwrap(),
            "{}",
            c["name"]
        );
        seen.insert(outcome(&r));
    }
    // Every outcome is exercised by some vector.
    assert_eq!(seen.len(), 9, "{seen:?}");
}

#[test]
fn a_proof_verifies_under_any_configured_key_for_rotation() {
    let (old, _) = OperatorSigner::generate();
    let (new, pkcs8) = OperatorSigner::generate();
    let reloaded = OperatorSigner::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(reloaded.public_key(), new.public_key());
    let claims = Claims {
        account: "alice".into(),
        scope: Scope::Login,
        aud: Some(VAULT),
        iat: 100,
        exp: 200,
    };
    let keys = [old.public_key(), new.public_key()];
    for signer in [&old, &reloaded] {
        let got = verify(
            &signer.issue(&claims),
            &keys,
            VAULT,
            "alice",
            Scope::Login,
            150,
        );
        assert_eq!(got.unwrap(), claims);
    }
    assert_eq!(
        verify(
            &old.issue(&claims),
            &keys[1..],
            VAULT,
            "alice",
            Scope::Login,
            150
        ),
        Err(ProofError::BadSignature)
    );
    // Hex and base64url both parse; anything else does not.
    let k = new.public_key();
    assert_eq!(OperatorKey::parse(&hex::encode(k.as_bytes())).unwrap(), k);
    assert!(OperatorKey::parse("not a key").is_err());
}

/// A token over `payload` signed (with a fresh ring key pair from `seed`) under `context`, with
/// `prefix`: well signed, whatever the payload says.
fn signed_token(seed: [u8; 32], prefix: &str, context: &[u8], payload: &[u8]) -> String {
    use base64::Engine;
    let kp = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sig = kp.sign(&[context, payload].concat());
    format!(
        "{prefix}{}.{}",
        b64.encode(payload),
        b64.encode(sig.as_ref())
    )
}

#[test]
fn unknown_fields_and_oversized_tokens_are_refused() {
    use sealback_proto::proof::{PROOF_CONTEXT, PROOF_CONTEXT_V1};
    let keys = [OperatorSigner::from_seed(&[7; 32]).public_key()];
    let aud = VAULT.to_hex();
    let refused = [
        // An unknown field, in either version.
        (
            "sbp1.",
            PROOF_CONTEXT_V1,
            r#"{"account":"a","scope":"login","iat":0,"exp":100,"admin":true}"#.to_string(),
        ),
        (
            "sbp2.",
            PROOF_CONTEXT,
            format!(
                r#"{{"account":"a","scope":"login","aud":"{aud}","iat":0,"exp":100,"admin":true}}"#
            ),
        ),
        // Version 2 without its audience; version 1 with one (its context never covered it).
        (
            "sbp2.",
            PROOF_CONTEXT,
            r#"{"account":"a","scope":"login","iat":0,"exp":100}"#.to_string(),
        ),
        (
            "sbp1.",
            PROOF_CONTEXT_V1,
            format!(r#"{{"account":"a","scope":"login","aud":"{aud}","iat":0,"exp":100}}"#),
        ),
        // An audience that is not 32 lower-case hex digits.
        (
            "sbp2.",
            PROOF_CONTEXT,
            format!(
                r#"{{"account":"a","scope":"login","aud":"{}","iat":0,"exp":100}}"#,
                aud.to_uppercase()
            ),
        ),
        (
            "sbp2.",
            PROOF_CONTEXT,
            r#"{"account":"a","scope":"login","aud":"5a5a","iat":0,"exp":100}"#.to_string(),
        ),
    ];
    for (prefix, context, payload) in refused {
        let token = signed_token([7; 32], prefix, context, payload.as_bytes());
        assert_eq!(
            verify(&token, &keys, VAULT, "a", Scope::Login, 50),
            Err(ProofError::Malformed),
            "{payload}"
        );
    }
    let long = format!("sbp2.{}", "A".repeat(5000));
    assert_eq!(
        verify(&long, &keys, VAULT, "a", Scope::Login, 50),
        Err(ProofError::Malformed)
    );
}

/// A register proof names its vault: another vault refuses it, and a version 1 proof (no
/// audience) is refused for registration everywhere, while still admitting logins.
#[test]
fn a_proof_is_accepted_only_by_the_vault_it_names() {
    let op = OperatorSigner::from_seed(&[9; 32]);
    let keys = [op.public_key()];
    let other = VaultId([0xa5; 16]);
    let claims = |aud| Claims {
        account: "alice".into(),
        scope: Scope::Register,
        aud,
        iat: 100,
        exp: 200,
    };
    let bound = op.issue(&claims(Some(VAULT)));
    assert!(bound.starts_with("sbp2."));
    for wanted in [Scope::Register, Scope::Login] {
        assert!(verify(&bound, &keys, VAULT, "alice", wanted, 150).is_ok());
        assert_eq!(
            verify(&bound, &keys, other, "alice", wanted, 150),
            Err(ProofError::WrongAudience)
        );
    }
    let unbound = op.issue(&claims(None));
    assert!(unbound.starts_with("sbp1."));
    assert_eq!(
        verify(&unbound, &keys, VAULT, "alice", Scope::Register, 150),
        Err(ProofError::NoAudience)
    );
    assert!(verify(&unbound, &keys, other, "alice", Scope::Login, 150).is_ok());
    // The client's look at its own token (no signature check) reads both versions.
    assert_eq!(
        sealback_proto::proof::claimed_scope(&bound),
        Some(Scope::Register)
    );
    assert_eq!(
        sealback_proto::proof::claimed_scope(&unbound),
        Some(Scope::Register)
    );
    assert_eq!(parse_vault_id(&VAULT.to_string()), Some(VAULT));
}

#[test]
fn rollout_bucket_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/rollout.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let bucket = sealback_proto::rollout_bucket(
            c["protector"].as_str().unwrap(),
            c["account"].as_str().unwrap(),
        );
        assert_eq!(u64::from(bucket), c["bucket"].as_u64().unwrap(), "{c}");
        assert!(bucket < 10_000);
    }
    // Protectors are independent: the same account lands in different buckets.
    assert_ne!(cases[0]["bucket"], cases[2]["bucket"]);
}

#[test]
fn a_realm_confirm_never_shows_its_tag_or_proof_in_debug_output() {
    let tag = vec![0xA5; 32];
    let confirm = sealback_proto::TvrConfirm {
        account: "alice".into(),
        proof: "sbp2.secret-proof-body".into(),
        version: vec![7; 16],
        tag: tag.clone(),
        session: "tvr.0123".into(),
    };
    let shown = format!("{confirm:?}");
    assert!(
        shown.contains("alice") && shown.contains("tvr.0123"),
        "{shown}"
    );
    for leaked in [
        hex::encode(&tag),
        format!("{tag:?}"),
        "165, 165".to_string(),
        "secret-proof-body".to_string(),
    ] {
        assert!(!shown.contains(&leaked), "{shown} shows {leaked}");
    }
}
