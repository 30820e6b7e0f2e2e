//! tvr1: known-answer vectors, threshold properties, and the protocol's refusals.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use rand08::rngs::StdRng;
use rand08::SeedableRng;
use sealback_core::keyslot::SlotId;
use sealback_core::vault::VaultId;
use sealback_core::RepoId;
use sealback_tvr::shamir;
use sealback_tvr::{
    derive, Argon2Cost, Dealing, Evaluation, NewSlot, Outcome, Realm, RealmKey, RealmRecord,
    Recovery, Registration, TvrError, TvrParams,
};
use serde_json::Value;
use voprf::{Ristretto255, VoprfServer};

const CHEAP: Argon2Cost = Argon2Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};
const REPO: RepoId = RepoId([7; 16]);
const SLOT: SlotId = SlotId([9; 16]);

struct Cluster {
    keys: Vec<RealmKey>,
    realms: Vec<Realm>,
}

fn cluster(n: usize) -> Cluster {
    let keys: Vec<RealmKey> = (0..n)
        .map(|i| RealmKey::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let realms = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Realm {
            id: VaultId([0xa0 + i as u8; 16]),
            share_key: k.public(),
        })
        .collect();
    Cluster { keys, realms }
}

fn ids(c: &Cluster) -> Vec<VaultId> {
    c.realms.iter().map(|r| r.id).collect()
}

/// A slot of account "alice" in REPO/SLOT with a cheap stretch.
fn new_slot(threshold: u8, limit: u16) -> NewSlot<'static> {
    NewSlot {
        repo: REPO,
        slot: SLOT,
        account: "alice",
        threshold,
        limit,
        argon2: CHEAP,
    }
}

/// Registers and has every realm open its share.
fn register(
    c: &Cluster,
    t: u8,
    password: &[u8],
    dealing: Dealing,
) -> (TvrParams, Vec<u8>, Vec<RealmRecord>) {
    let new = new_slot(t, 5);
    let reg = Registration::start_with(&new, password, &c.realms, dealing).unwrap();
    let records: Vec<RealmRecord> = reg
        .requests()
        .iter()
        .zip(&c.keys)
        .map(|(r, k)| k.open_share(r.realm, "alice", r).unwrap())
        .collect();
    let (params, secret) = reg.finish(&ids(c)).unwrap();
    (params, secret.expose_secret().to_vec(), records)
}

fn recover(
    c: &Cluster,
    params: &TvrParams,
    password: &[u8],
    records: &[RealmRecord],
    which: &[usize],
) -> Outcome {
    let mut rng = StdRng::seed_from_u64(3);
    let mut rec = Recovery::start(params.clone(), REPO, SLOT, password, &ids(c), &mut rng).unwrap();
    let b = rec.blinded_element();
    for &i in which {
        let answer = records[i].evaluate(&b, &mut rng).unwrap();
        rec.accept(c.realms[i].id, &answer, 3).unwrap();
    }
    rec.finish()
}

fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
        .collect()
}

fn dealing(t: u8, seed: u64) -> Dealing {
    Dealing::random(t, &mut StdRng::seed_from_u64(seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Every t-subset of realms yields exactly VOPRF-Evaluate(k, a) (through the secret it
    /// derives), and every smaller set of proven answers is refused.
    #[test]
    fn every_t_subset_reconstructs_the_single_key_evaluation(
        n in 2usize..=5, t_extra in 0usize..3, seed in any::<u64>(),
        password in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let t = (n / 2 + 1 + t_extra).min(n) as u8;
        let c = cluster(n);
        let d = dealing(t, seed);
        let key = *d.key;
        let v = d.version;
        let (params, secret, records) = register(&c, t, &password, d);
        let a = derive::stretch(&password, REPO, SLOT, &v, CHEAP).unwrap();
        let y = VoprfServer::<Ristretto255>::new_with_key(key.as_bytes()).unwrap().evaluate(&a[..]).unwrap();
        let expected = derive::from_output(&y, &v);
        prop_assert_eq!(expected.secret.expose_secret(), &secret[..]);
        prop_assert_eq!(expected.commitment, params.commitment);
        for subset in subsets(n, t.into()) {
            match recover(&c, &params, &password, &records, &subset) {
                Outcome::Unlocked { secret: s, confirmations } => {
                    prop_assert_eq!(s.expose_secret(), &secret[..]);
                    prop_assert_eq!(confirmations.len(), n);
                    for ((id, tag), rec) in confirmations.iter().zip(&records) {
                        prop_assert!(rec.tag_matches(&tag[..]), "realm {:?}'s tag", id);
                    }
                }
                other => prop_assert!(false, "subset {:?}: {:?}", subset, other),
            }
        }
        for k in 0..usize::from(t) {
            for subset in subsets(n, k) {
                let is_short = matches!(
                    recover(&c, &params, &password, &records, &subset),
                    Outcome::NotEnoughRealms { .. }
                );
                prop_assert!(is_short);
            }
        }
    }

    /// Shamir: every t-subset of shares reconstructs k; t − 1 shares reconstruct something else
    /// (they are independent of k).
    #[test]
    fn shamir_threshold(n in 2usize..=16, t_raw in 1usize..=16, seed in any::<u64>()) {
        let t = t_raw.min(n);
        let mut rng = StdRng::seed_from_u64(seed);
        let k = Scalar::random(&mut rng);
        let coeffs: Vec<Scalar> = (1..t).map(|_| Scalar::random(&mut rng)).collect();
        let shares = shamir::split(&k, &coeffs, n).unwrap();
        let all: Vec<(u8, Scalar)> = shares.iter().enumerate().map(|(i, s)| (i as u8 + 1, **s)).collect();
        prop_assert_eq!(shamir::reconstruct(&all[n - t..]).unwrap(), k);
        prop_assert_eq!(shamir::reconstruct(&all[..t]).unwrap(), k);
        if t > 1 {
            prop_assert_ne!(shamir::reconstruct(&all[..t - 1]).unwrap(), k);
        }
        // Combining k_i·P with the same coefficients gives k·P (what the client does with Z_i).
        let p = RISTRETTO_BASEPOINT_POINT * Scalar::random(&mut rng);
        let idx: Vec<u8> = all[..t].iter().map(|(i, _)| *i).collect();
        let lambdas = shamir::lagrange_at_zero(&idx).unwrap();
        let combined: curve25519_dalek::RistrettoPoint =
            all[..t].iter().zip(&lambdas).map(|((_, s), l)| p * s * l).sum();
        prop_assert_eq!(combined, p * k);
    }

    /// Params decode what they encode; any other bytes are refused or decode to params that
    /// re-encode to the same bytes.
    #[test]
    fn params_round_trip(seed in any::<u64>(), flip in any::<usize>(), bit in 0u8..8) {
        let c = cluster(3);
        let (params, _, _) = register(&c, 2, b"pw", dealing(2, seed));
        let bytes = params.encode();
        prop_assert_eq!(TvrParams::decode(&bytes).unwrap(), params);
        let mut bad = bytes.clone();
        let at = flip % bad.len();
        bad[at] ^= 1 << bit;
        if let Ok(p) = TvrParams::decode(&bad) {
            prop_assert_eq!(p.encode(), bad);
        }
    }
}

#[test]
fn shamir_refuses_bad_shapes() {
    let k = Scalar::ONE;
    assert!(shamir::split(&k, &[Scalar::ONE; 3], 3).is_err());
    assert!(shamir::split(&k, &[], 17).is_err());
    assert!(shamir::lagrange_at_zero(&[1, 1]).is_err());
    assert!(shamir::lagrange_at_zero(&[0, 1]).is_err());
    assert!(shamir::lagrange_at_zero(&[1, 17]).is_err());
}

#[test]
fn a_wrong_password_is_told_apart_and_yields_no_tag() {
    let c = cluster(3);
    let (params, _, records) = register(&c, 2, b"right", dealing(2, 1));
    match recover(&c, &params, b"wrong", &records, &[0, 1]) {
        Outcome::WrongPassword { attempts_left } => assert_eq!(attempts_left, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_forged_proof_excludes_the_realm_and_it_gets_no_tag() {
    let c = cluster(3);
    let (params, secret, records) = register(&c, 2, b"pw", dealing(2, 2));
    let mut rng = StdRng::seed_from_u64(5);
    let mut rec = Recovery::start(params.clone(), REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    let b = rec.blinded_element();
    // Realm 3 answers with another key's evaluation (and its valid proof for that key), then
    // with its own element under a proof made for a different element.
    let honest = records[2].evaluate(&b, &mut rng).unwrap();
    let other = records[0].evaluate(&b, &mut rng).unwrap();
    let forged = Evaluation {
        element: honest.element,
        proof: other.proof,
    };
    assert_eq!(
        rec.accept(c.realms[2].id, &forged, 5),
        Err(TvrError::BadProof {
            realm: c.realms[2].id
        })
    );
    // Once excluded it cannot come back with a good answer.
    assert!(rec.accept(c.realms[2].id, &honest, 5).is_err());
    for i in [0, 1] {
        let answer = records[i].evaluate(&b, &mut rng).unwrap();
        rec.accept(c.realms[i].id, &answer, 5).unwrap();
    }
    match rec.finish() {
        Outcome::Unlocked {
            secret: s,
            confirmations,
        } => {
            assert_eq!(s.expose_secret(), &secret[..]);
            let told: Vec<VaultId> = confirmations.iter().map(|(id, _)| *id).collect();
            assert_eq!(told, vec![c.realms[0].id, c.realms[1].id]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_proof_for_another_blinded_element_fails() {
    // Realm 2 answers honestly, with a valid proof, but for a blinded element of its choosing
    // (an earlier request, say): the proof binds the element this recovery sent.
    let c = cluster(3);
    let (params, _, records) = register(&c, 2, b"pw", dealing(2, 4));
    let mut rng = StdRng::seed_from_u64(6);
    let earlier = Recovery::start(params.clone(), REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    let mut rec = Recovery::start(params, REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    assert_ne!(earlier.blinded_element(), rec.blinded_element());
    let stale = records[1]
        .evaluate(&earlier.blinded_element(), &mut rng)
        .unwrap();
    assert_eq!(
        rec.accept(c.realms[1].id, &stale, 5),
        Err(TvrError::BadProof {
            realm: c.realms[1].id
        })
    );
    assert_eq!(rec.verified(), 0);
}

#[test]
fn a_realm_whose_reply_is_not_an_evaluation_gets_no_tag() {
    let c = cluster(3);
    let (params, secret, records) = register(&c, 2, b"pw", dealing(2, 5));
    let mut rng = StdRng::seed_from_u64(7);
    let mut rec = Recovery::start(params, REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    let b = rec.blinded_element();
    rec.reject(c.realms[0].id);
    for i in [1, 2] {
        let answer = records[i].evaluate(&b, &mut rng).unwrap();
        rec.accept(c.realms[i].id, &answer, 5).unwrap();
    }
    match rec.finish() {
        Outcome::Unlocked {
            secret: s,
            confirmations,
        } => {
            assert_eq!(s.expose_secret(), &secret[..]);
            let told: Vec<VaultId> = confirmations.iter().map(|(id, _)| *id).collect();
            assert_eq!(told, vec![c.realms[1].id, c.realms[2].id]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_share_swapped_in_the_slot_fails_its_proof() {
    // Whoever writes the drive replaces P_2 with a key of its own: realm 2's honest answer no
    // longer verifies, so the client never sends it a tag nor combines its answer.
    let c = cluster(3);
    let (mut params, _, records) = register(&c, 2, b"pw", dealing(2, 3));
    params.realms[1].public_share = (RISTRETTO_BASEPOINT_POINT * Scalar::from(5u8))
        .compress()
        .to_bytes();
    let mut rng = StdRng::seed_from_u64(6);
    let mut rec = Recovery::start(params, REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    let answer = records[1]
        .evaluate(&rec.blinded_element(), &mut rng)
        .unwrap();
    assert!(matches!(
        rec.accept(c.realms[1].id, &answer, 5),
        Err(TvrError::BadProof { .. })
    ));
}

#[test]
fn registration_fails_closed_unless_every_realm_acknowledged() {
    let c = cluster(3);
    let new = new_slot(2, 5);
    let reg = Registration::start(&new, b"pw", &c.realms, &mut StdRng::seed_from_u64(1)).unwrap();
    let two = &ids(&c)[..2];
    assert_eq!(
        reg.finish(two).unwrap_err(),
        TvrError::NotAllAcknowledged {
            missing: vec![c.realms[2].id]
        }
    );
}

#[test]
fn registration_refuses_bad_thresholds_and_limits() {
    let c = cluster(4);
    for (t, limit) in [(2u8, 5u16), (1, 5), (5, 5), (3, 0), (3, 101)] {
        let new = new_slot(t, limit);
        let r = Registration::start(&new, b"pw", &c.realms, &mut StdRng::seed_from_u64(1));
        assert!(
            matches!(r, Err(TvrError::Invalid(_))),
            "t={t} L={limit} of 4"
        );
    }
}

#[test]
fn a_share_opens_only_for_its_realm_account_and_fields() {
    let c = cluster(3);
    let new = new_slot(2, 5);
    let reg = Registration::start(&new, b"pw", &c.realms, &mut StdRng::seed_from_u64(1)).unwrap();
    let r = reg.requests()[0].clone();
    assert!(c.keys[0].open_share(r.realm, "alice", &r).is_ok());
    assert_eq!(
        c.keys[1].open_share(r.realm, "alice", &r).unwrap_err(),
        TvrError::BadShare
    );
    assert_eq!(
        c.keys[0].open_share(r.realm, "mallory", &r).unwrap_err(),
        TvrError::BadShare
    );
    let mut raised = r.clone();
    raised.limit = 50;
    assert_eq!(
        c.keys[0].open_share(r.realm, "alice", &raised).unwrap_err(),
        TvrError::BadShare
    );
}

#[test]
fn slot_realms_outside_the_configuration_are_never_asked() {
    let c = cluster(3);
    let (params, _, _) = register(&c, 2, b"pw", dealing(2, 4));
    let mut rng = StdRng::seed_from_u64(1);
    let only_one = &ids(&c)[..1];
    assert_eq!(
        Recovery::start(params.clone(), REPO, SLOT, b"pw", only_one, &mut rng).unwrap_err(),
        TvrError::NotEnoughConfigured {
            configured: 1,
            needed: 2
        }
    );
    let two = &ids(&c)[1..];
    let rec = Recovery::start(params, REPO, SLOT, b"pw", two, &mut rng).unwrap();
    assert_eq!(rec.realms(), two);
}

#[test]
fn params_refuse_what_the_spec_forbids() {
    let c = cluster(3);
    let (params, _, _) = register(&c, 2, b"pw", dealing(2, 5));
    let refused = |p: &TvrParams| TvrParams::decode(&p.encode()).is_err();
    let mut p = params.clone();
    p.threshold = 1;
    assert!(refused(&p), "t ≤ n/2");
    let mut p = params.clone();
    p.threshold = 4;
    assert!(refused(&p), "t > n");
    let mut p = params.clone();
    p.realms[1].id = p.realms[0].id;
    assert!(refused(&p), "a realm twice");
    let mut p = params.clone();
    p.realms[0].public_share = [0; 32];
    assert!(refused(&p), "identity P_i");
    let mut p = params.clone();
    p.argon2.memory_kib = 2 * 1024 * 1024;
    assert!(refused(&p), "Argon2 over the cap");
    let mut p = params.clone();
    p.limit = 0;
    assert!(refused(&p), "L = 0");
    let mut bytes = params.encode();
    bytes.push(0);
    assert!(TvrParams::decode(&bytes).is_err(), "trailing bytes");
    let mut bytes = params.encode();
    bytes[0] = 2;
    assert!(TvrParams::decode(&bytes).is_err(), "unknown version");
}

#[test]
fn unknown_accounts_get_a_stable_proven_answer_under_a_derived_key() {
    let mut rng = StdRng::seed_from_u64(1);
    let c = cluster(3);
    let (params, _, _) = register(&c, 2, b"pw", dealing(2, 6));
    let rec = Recovery::start(params, REPO, SLOT, b"pw", &ids(&c), &mut rng).unwrap();
    let b = rec.blinded_element();
    let secret = [0x55; 32];
    let x = sealback_tvr::evaluate_unknown(&secret, "bob", &b, &mut rng).unwrap();
    let y = sealback_tvr::evaluate_unknown(&secret, "bob", &b, &mut rng).unwrap();
    let z = sealback_tvr::evaluate_unknown(&secret, "carol", &b, &mut rng).unwrap();
    assert_eq!(x.element, y.element, "the same account, the same key");
    assert_ne!(x.element, z.element, "another account, another key");
    assert!(sealback_tvr::evaluate_unknown(&secret, "bob", &[0u8; 32], &mut rng).is_err());
}

#[test]
fn realm_records_round_trip_and_refuse_a_zero_share() {
    let c = cluster(3);
    let (_, _, records) = register(&c, 2, b"pw", dealing(2, 7));
    let encoded = records[0].encode();
    let back = RealmRecord::decode(&encoded).unwrap();
    assert_eq!(back.encode()[..], encoded[..]);
    let mut zero = encoded.to_vec();
    zero[21..53].fill(0);
    assert!(RealmRecord::decode(&zero).is_err());
    assert!(!records[0].tag_matches(&[0u8; 32]));
    assert!(!records[0].tag_matches(&[0u8; 31]));
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// Recomputes every value of tests/vectors/tvr1.json from its inputs.
#[test]
fn known_answer_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/tvr1.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let input = &v["inputs"];
    let h = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let repo = RepoId(h(&input["repo_id"]).try_into().unwrap());
    let slot = SlotId(h(&input["slot_id"]).try_into().unwrap());
    let version: [u8; 16] = h(&input["version"]).try_into().unwrap();
    let password = input["password"].as_str().unwrap().as_bytes();
    let account = input["account"].as_str().unwrap();
    let argon2 = Argon2Cost {
        memory_kib: input["argon2"]["memory_kib"].as_u64().unwrap() as u32,
        passes: input["argon2"]["passes"].as_u64().unwrap() as u32,
        lanes: input["argon2"]["lanes"].as_u64().unwrap() as u8,
    };
    let a = derive::stretch(password, repo, slot, &version, argon2).unwrap();
    assert_eq!(hex::encode(&a[..]), v["stretched"].as_str().unwrap());
    let key = Scalar::from_canonical_bytes(hex32(&input["oprf_key"])).unwrap();
    let coefficient = Scalar::from_canonical_bytes(hex32(&input["coefficients"][0])).unwrap();
    let y = VoprfServer::<Ristretto255>::new_with_key(key.as_bytes())
        .unwrap()
        .evaluate(&a[..])
        .unwrap();
    assert_eq!(hex::encode(&y[..]), v["oprf_output"].as_str().unwrap());
    let d = derive::from_output(&y, &version);
    assert_eq!(hex::encode(d.commitment), v["commitment"].as_str().unwrap());
    assert_eq!(
        hex::encode(&d.unlock[..]),
        v["unlock_key"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(d.secret.expose_secret()),
        v["protector_secret"].as_str().unwrap()
    );
    let params = TvrParams::decode(&h(&v["params"])).unwrap();
    assert_eq!(params.commitment, d.commitment);
    let shares = shamir::split(&key, &[coefficient], 3).unwrap();
    let mut records = Vec::new();
    for (n, r) in v["realms"].as_array().unwrap().iter().enumerate() {
        let id = VaultId(h(&r["realm_id"]).try_into().unwrap());
        assert_eq!(
            hex::encode(shares[n].as_bytes()),
            r["key_share"].as_str().unwrap()
        );
        let p = (RISTRETTO_BASEPOINT_POINT * *shares[n])
            .compress()
            .to_bytes();
        assert_eq!(hex::encode(p), r["public_share"].as_str().unwrap());
        assert_eq!(params.realms[n].public_share, p);
        assert_eq!(params.realms[n].id, id);
        let tag = derive::tag(&d.unlock, id, account, &version);
        assert_eq!(hex::encode(&tag[..]), r["tag"].as_str().unwrap());
        let key = RealmKey::from_seed(&hex32(&r["realm_key_seed"]));
        assert_eq!(
            hex::encode(key.public()),
            r["realm_public_key"].as_str().unwrap()
        );
        let request = sealback_tvr::ShareRequest {
            realm: id,
            index: n as u8 + 1,
            threshold: params.threshold,
            limit: params.limit,
            version,
            enc: h(&r["share_enc"]),
            sealed: h(&r["share_sealed"]),
        };
        let record = key.open_share(id, account, &request).unwrap();
        assert_eq!(record.expose_key_share(), shares[n].as_bytes());
        assert!(record.tag_matches(&tag[..]));
        records.push(record);
    }
    // The recovery transcript: B, each Z_i = k_i·B with a proof that verifies, and the secret.
    let ids: Vec<VaultId> = params.realms.iter().map(|r| r.id).collect();
    let mut rng = StdRng::from_seed(hex32(&input["rng_seed"]));
    let mut rec = Recovery::start(params.clone(), repo, slot, password, &ids, &mut rng).unwrap();
    assert_eq!(
        hex::encode(rec.blinded_element()),
        v["recovery"]["blinded"].as_str().unwrap()
    );
    for answer in v["recovery"]["answers"].as_array().unwrap() {
        let i = answer["index"].as_u64().unwrap() as usize;
        let evaluation = Evaluation {
            element: hex32(&answer["evaluated"]),
            proof: h(&answer["proof"]).try_into().unwrap(),
        };
        let mine = records[i - 1]
            .evaluate(&rec.blinded_element(), &mut rng)
            .unwrap();
        assert_eq!(mine.element, evaluation.element, "Z_{i} = k_{i}·B");
        rec.accept(ids[i - 1], &evaluation, 4).unwrap();
    }
    match rec.finish() {
        Outcome::Unlocked { secret, .. } => {
            assert_eq!(secret.expose_secret(), d.secret.expose_secret())
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Oracle: shares dealt by `frost-ristretto255` (RFC 9591's trusted-dealer `split`) are
    /// recombined by our Lagrange coefficients into the dealt key, for every t-subset, and the
    /// public shares it publishes are `k_i·G` of those shares.
    #[test]
    fn our_lagrange_recombines_frost_shares(n in 2u16..=7, t_extra in 0u16..3, seed in any::<u64>()) {
        use frost_ristretto255 as frost;
        let t = (n / 2 + 1 + t_extra).min(n);
        let mut rng = StdRng::seed_from_u64(seed);
        let k = Scalar::random(&mut rng);
        let key = frost::SigningKey::deserialize(k.as_bytes()).unwrap();
        let (shares, public) =
            frost::keys::split(&key, n, t, frost::keys::IdentifierList::Default, &mut rng).unwrap();
        let ours: Vec<(u8, Scalar)> = shares
            .iter()
            .enumerate()
            .map(|(i, (id, share))| {
                assert_eq!(*id, frost::Identifier::try_from(i as u16 + 1).unwrap());
                let bytes: [u8; 32] = share.signing_share().serialize().try_into().unwrap();
                (i as u8 + 1, Scalar::from_canonical_bytes(bytes).unwrap())
            })
            .collect();
        for (i, s) in &ours {
            let id = frost::Identifier::try_from(u16::from(*i)).unwrap();
            let theirs = public.verifying_shares()[&id].serialize().unwrap();
            prop_assert_eq!(theirs, (RISTRETTO_BASEPOINT_POINT * s).compress().to_bytes().to_vec());
        }
        for subset in subsets(n.into(), t.into()) {
            let picked: Vec<(u8, Scalar)> = subset.iter().map(|&i| ours[i]).collect();
            prop_assert_eq!(shamir::reconstruct(&picked).unwrap(), k);
        }
    }
}
