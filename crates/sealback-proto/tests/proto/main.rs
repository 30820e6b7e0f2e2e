//! The wire format's tests: account proof vectors and round trips.

use sealback_proto::proof::{verify, Claims, OperatorKey, OperatorSigner, ProofError, Scope};
use serde_json::Value;

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
        let r = verify(
            c["token"].as_str().unwrap(),
            std::slice::from_ref(&key),
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
    assert_eq!(seen.len(), 7, "{seen:?}");
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
        iat: 100,
        exp: 200,
    };
    let keys = [old.public_key(), new.public_key()];
    for signer in [&old, &reloaded] {
        let got = verify(&signer.issue(&claims), &keys, "alice", Scope::Login, 150).unwrap();
        assert_eq!(got, claims);
    }
    assert_eq!(
        verify(&old.issue(&claims), &keys[1..], "alice", Scope::Login, 150),
        Err(ProofError::BadSignature)
    );
    // Hex and base64url both parse; anything else does not.
    let k = new.public_key();
    assert_eq!(OperatorKey::parse(&hex::encode(k.as_bytes())).unwrap(), k);
    assert!(OperatorKey::parse("not a key").is_err());
}

#[test]
fn unknown_fields_and_oversized_tokens_are_refused() {
    use base64::Engine;
    let signer = OperatorSigner::from_seed(&[7; 32]);
    let payload = br#"{"account":"a","scope":"login","iat":0,"exp":100,"admin":true}"#;
    let mut msg = sealback_proto::proof::PROOF_CONTEXT.to_vec();
    msg.extend_from_slice(payload);
    // Sign through a fresh ring key pair with the same seed to build a well-signed odd payload.
    let kp = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "sbp1.{}.{}",
        b64.encode(payload),
        b64.encode(kp.sign(&msg).as_ref())
    );
    let keys = [signer.public_key()];
    assert_eq!(
        verify(&token, &keys, "a", Scope::Login, 50),
        Err(ProofError::Malformed)
    );
    let long = format!("sbp1.{}", "A".repeat(5000));
    assert_eq!(
        verify(&long, &keys, "a", Scope::Login, 50),
        Err(ProofError::Malformed)
    );
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
