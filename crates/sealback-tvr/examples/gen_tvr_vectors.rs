//! Writes `tvr1.json` (threshold vault realms, SPEC §7f) under the given directory:
//!
//! ```text
//! cargo run -p sealback-tvr --example gen_tvr_vectors -- tests/vectors
//! ```
//!
//! Every input is fixed (the OPRF key, the polynomial, the version, the realms' key seeds, the
//! HPKE seed, and an RNG seeded with zeros for the blind and the proofs' nonces), so the output
//! is identical on every run. `crates/sealback-tvr/tests/tvr.rs` recomputes every value.

use curve25519_dalek::scalar::Scalar;
use rand08::rngs::StdRng;
use rand08::SeedableRng;
use sealback_core::keyslot::SlotId;
use sealback_core::vault::VaultId;
use sealback_core::RepoId;
use sealback_tvr::derive;
use sealback_tvr::{
    Argon2Cost, Dealing, NewSlot, Outcome, Realm, RealmKey, Recovery, Registration,
};
use serde_json::{json, Value};
use std::path::Path;
use voprf::{Ristretto255, VoprfServer};
use zeroize::Zeroizing;

const PASSWORD: &[u8] = b"correct horse battery staple";
const ACCOUNT: &str = "alice@example.org";

fn scalar(b: u8) -> Scalar {
    Scalar::from_bytes_mod_order([b; 32])
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/vectors".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut v = vectors();
    v.sort_all_objects();
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    std::fs::write(dir.join("tvr1.json"), text).unwrap();
}

fn vectors() -> Value {
    let repo = RepoId([0x0f; 16]);
    let slot = SlotId([0x5a; 16]);
    let argon2 = Argon2Cost {
        memory_kib: 256,
        passes: 1,
        lanes: 1,
    };
    let seeds: Vec<[u8; 32]> = (0..3u8).map(|i| [0x31 + i; 32]).collect();
    let keys: Vec<RealmKey> = seeds.iter().map(RealmKey::from_seed).collect();
    let realms: Vec<Realm> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Realm {
            id: VaultId([0xa1 + i as u8; 16]),
            share_key: k.public(),
        })
        .collect();
    let key = scalar(0x42);
    let coefficient = scalar(0x17);
    let version = [0x76; 16];
    let hpke_seed = [0x48; 32];
    let new = NewSlot {
        repo,
        slot,
        account: ACCOUNT,
        threshold: 2,
        limit: 5,
        argon2,
    };
    let registration = Registration::start_with(
        &new,
        PASSWORD,
        &realms,
        Dealing {
            version,
            key: Zeroizing::new(key),
            coefficients: vec![Zeroizing::new(coefficient)],
            hpke_seed: Zeroizing::new(hpke_seed),
        },
    )
    .unwrap();
    let a = derive::stretch(PASSWORD, repo, slot, &version, argon2).unwrap();
    let y = VoprfServer::<Ristretto255>::new_with_key(key.as_bytes())
        .unwrap()
        .evaluate(&a[..])
        .unwrap();
    let derived = derive::from_output(&y, &version);
    let records: Vec<_> = registration
        .requests()
        .iter()
        .zip(&keys)
        .map(|(r, k)| k.open_share(r.realm, ACCOUNT, r).unwrap())
        .collect();
    let realm_cases: Vec<Value> = registration
        .requests()
        .iter()
        .zip(&records)
        .zip(&seeds)
        .map(|((r, rec), seed)| {
            json!({
                "realm_id": hex::encode(r.realm.0),
                "realm_key_seed": hex::encode(seed),
                "realm_public_key": hex::encode(RealmKey::from_seed(seed).public()),
                "index": r.index,
                "key_share": hex::encode(rec.expose_key_share()),
                "public_share": hex::encode(rec.public_share().unwrap()),
                "tag": hex::encode(*derive::tag(&derived.unlock, r.realm, ACCOUNT, &version)),
                "share_enc": hex::encode(&r.enc),
                "share_sealed": hex::encode(&r.sealed),
            })
        })
        .collect();
    let (params, secret) = registration
        .finish(&realms.iter().map(|r| r.id).collect::<Vec<_>>())
        .unwrap();

    // Recovery through realms 1 and 3 (an RNG seeded with zeros blinds and makes the proofs).
    let mut rng = StdRng::from_seed([0u8; 32]);
    let ids: Vec<VaultId> = realms.iter().map(|r| r.id).collect();
    let mut recovery =
        Recovery::start(params.clone(), repo, slot, PASSWORD, &ids, &mut rng).unwrap();
    let blinded = recovery.blinded_element();
    let mut answers = Vec::new();
    for i in [0usize, 2] {
        let answer = records[i].evaluate(&blinded, &mut rng).unwrap();
        recovery.accept(ids[i], &answer, 4).unwrap();
        answers.push(json!({
            "index": i + 1,
            "evaluated": hex::encode(answer.element),
            "proof": hex::encode(answer.proof),
        }));
    }
    let Outcome::Unlocked {
        secret: recovered, ..
    } = recovery.finish()
    else {
        panic!("the vector's recovery must unlock")
    };
    assert_eq!(recovered.expose_secret(), secret.expose_secret());

    json!({
        "description": "tvr1 (SPEC §7f): Argon2id -> a; Shamir 2-of-3 over ristretto255 of k; y = RFC 9497 VOPRF(ristretto255-SHA512) Evaluate(k, a); C/U/S = HKDF-SHA256(salt = v, ikm = y); tag_i = HMAC-SHA256(U, ...); each realm's share and tag HPKE-sealed (X25519, HKDF-SHA256, AES-256-GCM) to its key; a recovery through realms 1 and 3",
        "inputs": {
            "password": String::from_utf8_lossy(PASSWORD),
            "account": ACCOUNT,
            "repo_id": hex::encode(repo.0),
            "slot_id": hex::encode(slot.0),
            "version": hex::encode(version),
            "threshold": 2,
            "limit": 5,
            "argon2": {"memory_kib": argon2.memory_kib, "passes": argon2.passes, "lanes": argon2.lanes},
            "oprf_key": hex::encode(key.as_bytes()),
            "coefficients": [hex::encode(coefficient.as_bytes())],
            "hpke_seed": hex::encode(hpke_seed),
            "rng_seed": hex::encode([0u8; 32]),
        },
        "stretched": hex::encode(&a[..]),
        "oprf_output": hex::encode(&y[..]),
        "commitment": hex::encode(derived.commitment),
        "unlock_key": hex::encode(&derived.unlock[..]),
        "protector_secret": hex::encode(secret.expose_secret()),
        "params": hex::encode(params.encode()),
        "realms": realm_cases,
        "recovery": {
            "blinded": hex::encode(blinded),
            "answers": answers,
        },
    })
}
