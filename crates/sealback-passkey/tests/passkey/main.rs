//! The software passkey provider and the PRF protector, end to end with the core's keyslots.

use hmac::{Hmac, KeyInit, Mac};
use sealback_core::keyslot::{KeySlot, KeySlotFile, UnlockError};
use sealback_core::passkey::{webauthn_prf_salt, KdfParams, StoreEnvelope};
use sealback_core::{Keyring, RepoId, RootKey};
use sealback_passkey::store::{unb64, Pin};
use sealback_passkey::{
    enroll_template, PasskeyError, PasskeyProtector, PrfAuthenticator, SoftwareAuthenticator,
};
use sha2::Sha256;
use std::path::Path;

const FAST: KdfParams = KdfParams {
    memory_kib: 1024,
    passes: 1,
    lanes: 1,
};
const RP: &str = "localhost";

fn provider(path: &Path, pin: &str) -> SoftwareAuthenticator {
    SoftwareAuthenticator::open_or_create(path, Pin::new(pin.into()), true, FAST).unwrap()
}

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

#[tokio::test]
async fn prf_output_is_stable_matches_webauthn_and_survives_a_copied_store() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.sbpk");
    let mut p = provider(&a, "1234");
    let salt = [7u8; 32];
    let created = p.create(RP, "me", &salt).await.unwrap();
    let again = p
        .get_prf(RP, &[(created.credential_id.clone(), salt)])
        .await
        .unwrap();
    assert_eq!(again.credential_id, created.credential_id);
    assert_eq!(
        again.prf_output.expose_secret(),
        created.prf_output.expose_secret()
    );
    assert_eq!(created.prf_output.expose_secret().len(), 32);

    // WebAuthn PRF = HMAC-SHA-256(CredRandom with UV, SHA-256("WebAuthn PRF" || 0x00 || salt)).
    let record = &p.contents().credentials[0];
    let cred_random = unb64(record.hmac_with_uv.as_ref().unwrap()).unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&cred_random).unwrap();
    mac.update(&webauthn_prf_salt(&salt));
    assert_eq!(
        mac.finalize().into_bytes().as_slice(),
        created.prf_output.expose_secret()
    );

    // Another salt gives another output.
    let other = p
        .get_prf(RP, &[(created.credential_id.clone(), [8u8; 32])])
        .await
        .unwrap();
    assert_ne!(
        other.prf_output.expose_secret(),
        created.prf_output.expose_secret()
    );

    // "Sync": the same file on another device gives the same output.
    let b = tmp.path().join("device-b.sbpk");
    std::fs::copy(&a, &b).unwrap();
    let mut q = SoftwareAuthenticator::open(&b, Pin::new("1234".into())).unwrap();
    let on_b = q
        .get_prf(RP, &[(created.credential_id.clone(), salt)])
        .await
        .unwrap();
    assert_eq!(
        on_b.prf_output.expose_secret(),
        created.prf_output.expose_secret()
    );
}

#[tokio::test]
async fn wrong_pin_unknown_credential_and_no_prf_are_distinct_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.sbpk");
    let mut p = provider(&a, "1234");
    let created = p.create(RP, "me", &[1; 32]).await.unwrap();
    assert!(matches!(
        SoftwareAuthenticator::open(&a, Pin::new("1235".into())),
        Err(PasskeyError::WrongPin(_))
    ));

    let mut other = provider(&tmp.path().join("other.sbpk"), "1234");
    other.create(RP, "me", &[1; 32]).await.unwrap();
    assert!(matches!(
        other
            .get_prf(RP, &[(created.credential_id.clone(), [1; 32])])
            .await,
        Err(PasskeyError::NoCredential)
    ));
    // The right credential under another relying party is not offered either.
    assert!(matches!(
        p.get_prf("example.com", &[(created.credential_id, [1; 32])])
            .await,
        Err(PasskeyError::NoCredential)
    ));

    let mut no_prf = SoftwareAuthenticator::open_or_create(
        &tmp.path().join("noprf.sbpk"),
        Pin::new("1".into()),
        false,
        FAST,
    )
    .unwrap();
    assert!(matches!(
        no_prf.create(RP, "me", &[1; 32]).await,
        Err(PasskeyError::NoPrf)
    ));
    assert!(
        no_prf.contents().credentials.is_empty(),
        "no useless credential is kept"
    );
}

#[tokio::test]
async fn the_store_file_holds_no_secret_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.sbpk");
    let mut p = provider(&a, "secret-pin-1234");
    p.create(RP, "someone@example.com", &[3; 32]).await.unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&a).unwrap().permissions())
            & 0o777,
        0o600
    );
    let record = &p.contents().credentials[0];
    let cose = unb64(&record.cose_key).unwrap();
    let hmac = unb64(record.hmac_with_uv.as_ref().unwrap()).unwrap();
    let cred_id = unb64(&record.credential_id).unwrap();
    for (what, needle) in [
        ("COSE private key", &cose[cose.len() - 32..]),
        ("hmac-secret", &hmac[..16]),
        ("credential id", &cred_id[..16]),
        ("PIN", b"secret-pin-1234".as_slice()),
        ("user name", b"someone@example.com".as_slice()),
        ("relying party", b"localhost".as_slice()),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{what} in clear in the store file"
        );
    }
}

#[test]
fn hostile_kdf_costs_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.sbpk");
    drop(provider(&path, "1"));
    let mut env = StoreEnvelope::decode(&std::fs::read(&path).unwrap()).unwrap();
    env.kdf.memory_kib = 4 * 1024 * 1024;
    std::fs::write(&path, env.encode()).unwrap();
    let err = SoftwareAuthenticator::open(&path, Pin::new("1".into())).unwrap_err();
    assert!(
        err.to_string().contains("outside the accepted limits"),
        "{err}"
    );
}

#[tokio::test]
async fn passkey_keyslots_unlock_only_with_their_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = rng();
    let repo = RepoId::random(&mut r);
    let keyring = Keyring::new(repo, vec![RootKey::random(&mut r)]);
    let mut file = KeySlotFile::new(&keyring);
    let mut phone = provider(&tmp.path().join("phone.sbpk"), "1111");
    let mut laptop = provider(&tmp.path().join("laptop.sbpk"), "2222");
    for (p, name) in [(&mut phone, "phone"), (&mut laptop, "laptop")] {
        let (template, secret) = enroll_template(p, RP, "me", name.into(), 1, &mut r)
            .await
            .unwrap();
        file.add(
            &keyring,
            KeySlot::enroll(&keyring, template, &secret, &mut r).unwrap(),
        )
        .unwrap();
    }
    for p in [&mut phone, &mut laptop] {
        let mut protector = PasskeyProtector::assert(&file, p).await.unwrap();
        let unlocked = file.unlock(&mut protector).unwrap();
        assert_eq!(unlocked.keyring.current_root(), keyring.current_root());
    }
    // A stranger's passkey store holds none of the credentials.
    let mut stranger = provider(&tmp.path().join("stranger.sbpk"), "3333");
    stranger.create(RP, "me", &[0; 32]).await.unwrap();
    assert!(matches!(
        PasskeyProtector::assert(&file, &mut stranger).await,
        Err(PasskeyError::NoCredential)
    ));
    // A protector holding the right credential id but a wrong PRF output is refused.
    let mut wrong = PasskeyProtector::assert(&file, &mut phone).await.unwrap();
    let _ = &mut wrong;
    let mut file2 = file.clone();
    for s in &mut file2.slots {
        s.salt[0] ^= 1;
    }
    assert!(matches!(
        file2.unlock(&mut wrong),
        Err(UnlockError::WrongSecret { .. })
    ));
}

/// SPEC §7a.4, read with argon2, ring and serde_json alone: a 49-byte header that is the AAD,
/// then the JSON body sealed under Argon2id(PIN) with the header's salt, nonce and costs.
#[tokio::test]
async fn store_file_is_the_spec_layout_a_49_byte_header_and_a_sealed_json_body() {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.sbpk");
    let mut p = provider(&path, "4321");
    enroll_template(&mut p, RP, "me", "phone".into(), 1, &mut rng())
        .await
        .unwrap();
    drop(p);
    let bytes = std::fs::read(&path).unwrap();
    let (header, sealed) = bytes.split_at(49);
    assert_eq!(&header[..8], b"SBPKSTOR");
    assert_eq!(header[8], 1, "store version");
    let u32_at = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
    assert_eq!(
        (u32_at(9), u32_at(13), u32_at(17)),
        (FAST.memory_kib, FAST.passes, FAST.lanes)
    );
    let (salt, nonce) = (&header[21..37], &header[37..49]);
    let params = argon2::Params::new(u32_at(9), u32_at(13), u32_at(17), Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(b"4321", salt, &mut key)
        .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let mut buf = sealed.to_vec();
    let body = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce.try_into().unwrap()),
            Aad::from(header),
            &mut buf,
        )
        .expect("the 49 header bytes are the AAD");
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["prf"], true);
    let cred = &json["credentials"][0];
    assert_eq!(cred["rp_id"], RP);
    for field in ["credential_id", "cose_key", "hmac_with_uv"] {
        assert!(
            unb64(cred[field].as_str().unwrap()).is_some(),
            "{field} is base64url"
        );
    }
    assert_eq!(
        unb64(cred["hmac_with_uv"].as_str().unwrap()).unwrap().len(),
        32
    );
    assert!(cred["created_unix"].is_u64());
    assert_eq!(
        sealed.len(),
        body_len(&json) + 16,
        "ciphertext = body + tag"
    );
}

fn body_len(json: &serde_json::Value) -> usize {
    serde_json::to_vec(json).unwrap().len()
}

/// A credential this version cannot decode (damaged, or written by a newer version) is kept in
/// the store file as it is: using the store for another passkey must never delete it.
#[tokio::test]
async fn a_credential_that_cannot_be_decoded_is_kept_when_the_store_is_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.sbpk");
    let pin = || Pin::new("1234".into());
    let mut p = provider(&path, "1234");
    p.create(RP, "me", &[1u8; 32]).await.unwrap();
    let mut contents = p.contents().clone();
    contents.credentials[0].cose_key = "not a cose key".into();
    let damaged_id = contents.credentials[0].credential_id.clone();
    sealback_passkey::store::save(&path, &pin(), &contents, FAST, &mut rng()).unwrap();

    let mut p = SoftwareAuthenticator::open(&path, pin()).unwrap();
    p.create(RP, "me", &[2u8; 32]).await.unwrap();
    let kept = SoftwareAuthenticator::open(&path, pin()).unwrap();
    let credentials = &kept.contents().credentials;
    assert_eq!(credentials.len(), 2, "the undecodable record was dropped");
    let damaged = credentials.iter().find(|r| r.credential_id == damaged_id);
    assert_eq!(damaged.unwrap().cose_key, "not a cose key");
}
