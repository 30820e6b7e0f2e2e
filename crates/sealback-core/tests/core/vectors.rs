//! Recomputes every value in tests/vectors/*.json from its inputs.

use sealback_core::chunker::{Chunker, ChunkerParams};
use sealback_core::keys::hkdf_subkey;
use sealback_core::keyslot::{KeySlotFile, SlotKem, UnlockError};
use sealback_core::object::{open_with_key, ObjectError, ObjectType};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::recovery::{RecoveryKey, RecoveryKeyError, RecoveryKeyProtector};
use sealback_core::secret::SubKey;
use sealback_core::snapshot::Tree;
use sealback_core::{labels, vouch, Id, Keyring, ProtectorSecret, RepoId, RootKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/");
    let text = std::fs::read_to_string(format!("{path}{name}"))
        .unwrap_or_else(|e| panic!("tests/vectors/{name}: {e} (regenerate with `cargo run -p sealback-core --example gen_vectors -- tests/vectors`)"));
    serde_json::from_str(&text).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn subkey(v: &Value) -> SubKey {
    SubKey::from_slice(&hx(v)).unwrap()
}

#[test]
fn key_derivation() {
    let v = load("key_derivation.json");
    let (root, salt) = (hx(&v["root_key"]), hx(&v["repo_id"]));
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 4);
    for o in outs {
        let k = hkdf_subkey(&root, &salt, o["label"].as_str().unwrap().as_bytes());
        assert_eq!(
            hex::encode(k.expose_secret()),
            o["key"].as_str().unwrap(),
            "{}",
            o["label"]
        );
    }
}

#[test]
fn blob_ids() {
    let v = load("blob_id.json");
    let kd = load("key_derivation.json");
    let keyring = Keyring::new(
        RepoId(hx(&kd["repo_id"]).try_into().unwrap()),
        vec![RootKey::from_slice(&hx(&kd["root_key"])).unwrap()],
    );
    for c in v["cases"].as_array().unwrap() {
        let ty = ObjectType::from_u8(c["type"].as_u64().unwrap() as u8).unwrap();
        let id = keyring.content_id().blob_id(ty, &hx(&c["data"]));
        assert_eq!(id.to_hex(), c["id"].as_str().unwrap());
        let direct = blake3::keyed_hash(
            &hx(&v["content_id_key"]).try_into().unwrap(),
            &[&[ty as u8][..], &hx(&c["data"])].concat(),
        );
        assert_eq!(direct.to_hex().as_str(), c["id"].as_str().unwrap());
    }
}

#[test]
fn objects() {
    let v = load("object.json");
    for c in v["valid"].as_array().unwrap() {
        let key = subkey(&c["subkey"]);
        let ty = ObjectType::from_u8(c["type"].as_u64().unwrap() as u8).unwrap();
        let id = Id::from_hex(c["id"].as_str().unwrap()).unwrap();
        let body = open_with_key(&key, ty, &id, &hx(&c["object"]), 1 << 20).unwrap();
        assert_eq!(body, hx(&c["body"]));
        let resealed = sealback_core::object::seal_with_seed(
            &key,
            c["epoch"].as_u64().unwrap() as u32,
            ty,
            &id,
            &body,
            if c["compression"] == "zstd" {
                sealback_core::object::Compression::Zstd(3)
            } else {
                sealback_core::object::Compression::None
            },
            hx(&c["seed"]).try_into().unwrap(),
        );
        assert_eq!(hex::encode(resealed.bytes), c["object"].as_str().unwrap());
    }
    let invalid = v["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 5);
    for c in invalid {
        let key = subkey(&c["subkey"]);
        let ty = ObjectType::from_u8(c["type"].as_u64().unwrap() as u8).unwrap();
        let id = Id::from_hex(c["id"].as_str().unwrap()).unwrap();
        let err = open_with_key(&key, ty, &id, &hx(&c["object"]), 1 << 20).unwrap_err();
        let kind = match err {
            ObjectError::Authentication { .. } | ObjectError::WrongType { .. } => "authentication",
            ObjectError::Format(_) => "format",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(kind, c["expected"].as_str().unwrap(), "{}", c["why"]);
        if let Some(payload) = c.get("payload") {
            // The tag verifies: the refusal is the encoding byte's, not the AEAD's.
            assert_eq!(
                open_payload(&key, &id, &hx(&c["object"])),
                hx(payload),
                "{}",
                c["why"]
            );
        }
    }
}

/// The payload of a version 1 object, decrypted with ring alone (SPEC §5).
fn open_payload(subkey: &SubKey, id: &Id, object: &[u8]) -> Vec<u8> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let (header, sealed) = object.split_at(38);
    let key = hkdf_subkey(subkey.expose_secret(), &header[6..38], labels::OBJECT_KEY);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose_secret()).unwrap());
    let aad = [&b"sealback object v1"[..], header, &id.0].concat();
    let mut buf = sealed.to_vec();
    key.open_in_place(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(aad),
        &mut buf,
    )
    .expect("the tag verifies")
    .to_vec()
}

#[test]
fn recovery_keys() {
    let v = load("recovery_key.json");
    for c in v["valid"].as_array().unwrap() {
        let key = RecoveryKey::parse(c["input"].as_str().unwrap()).unwrap();
        assert_eq!(
            key.to_secret().expose_secret(),
            c["digits"].as_str().unwrap().as_bytes()
        );
    }
    for c in v["invalid"].as_array().unwrap() {
        let err = RecoveryKey::parse(c["input"].as_str().unwrap()).unwrap_err();
        let kind = match err {
            RecoveryKeyError::Checksum => "checksum",
            RecoveryKeyError::Length(_) => "length",
            RecoveryKeyError::Character(_) => "character",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(kind, c["expected"].as_str().unwrap(), "{}", c["why"]);
    }
}

#[test]
fn damm_table_is_the_one_in_the_code_and_in_the_spec() {
    let v = load("recovery_key.json");
    let table: Vec<Vec<u8>> = serde_json::from_value(v["damm_table"].clone()).unwrap();
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/SPEC.md"))
        .unwrap();
    for (i, row) in table.iter().enumerate() {
        let a = table[0].iter().position(|&x| x as usize == i).unwrap() as u8;
        for (d, &x) in row.iter().enumerate() {
            assert_eq!(sealback_core::recovery::damm(&[a, d as u8]), x);
        }
        let printed: Vec<String> = row.iter().map(|x| x.to_string()).collect();
        let line = format!("| {i} | {} |", printed.join(" | "));
        assert!(spec.contains(&line), "SPEC §7 prints row {i} as `{line}`");
    }
    for c in v["valid"].as_array().unwrap() {
        let interim = c["digits"]
            .as_str()
            .unwrap()
            .bytes()
            .fold(0u8, |i, b| table[i as usize][(b - b'0') as usize]);
        assert_eq!(interim, 0, "a valid key ends at interim 0");
    }
}

#[test]
fn config() {
    use sealback_core::config::RepoConfig;
    use sealback_core::FormatError;
    let v = load("config.json");
    for c in v["valid"].as_array().unwrap() {
        let encoded = hx(&c["encoded"]);
        let config = RepoConfig::decode(&encoded).unwrap();
        assert_eq!(config.repo_id.0.to_vec(), hx(&c["repo_id"]));
        let mut direct = b"SEALBACK".to_vec();
        direct.extend_from_slice(&(c["format_version"].as_u64().unwrap() as u16).to_be_bytes());
        direct.extend_from_slice(&hx(&c["repo_id"]));
        assert_eq!(direct, encoded);
        assert_eq!(config.encode(), encoded);
    }
    for c in v["invalid"].as_array().unwrap() {
        let kind = match RepoConfig::decode(&hx(&c["encoded"])).unwrap_err() {
            FormatError::UnsupportedVersion { .. } => "version",
            _ => "format",
        };
        assert_eq!(kind, c["expected"].as_str().unwrap(), "{}", c["why"]);
    }
}

#[test]
fn content_list_file() {
    use sealback_core::snapshot::{decode_content_list, Content, NodeKind};
    let v = load("content_list_file.json");
    let key: [u8; 32] = hx(&v["content_id_key"]).try_into().unwrap();
    let blob_id = |ty: u8, body: &[u8]| {
        blake3::keyed_hash(&key, &[&[ty][..], body].concat())
            .as_bytes()
            .to_vec()
    };
    let data: Vec<Vec<u8>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(blob_id(1, &hx(&d["body"])), hx(&d["id"]));
            hx(&d["id"])
        })
        .collect();
    assert!(data.len() > 16, "more ids than a node lists directly");
    // The writer's cut rule (SPEC §11): after an id whose last byte is 0, or at 1024 ids.
    let mut groups: Vec<Vec<u8>> = vec![vec![]];
    for id in &data {
        let last = groups.last_mut().unwrap();
        last.extend_from_slice(id);
        if id[31] == 0 || last.len() == 1024 * 32 {
            groups.push(vec![]);
        }
    }
    groups.retain(|g| !g.is_empty());
    let lists = v["lists"].as_array().unwrap();
    assert_eq!(lists.len(), groups.len());
    assert!(lists.len() > 1, "the vector exercises a cut");
    let mut listed = vec![];
    for (l, group) in lists.iter().zip(&groups) {
        assert_eq!(&hx(&l["body"]), group);
        assert_eq!(blob_id(3, group), hx(&l["id"]));
        listed.extend(decode_content_list(group).unwrap());
    }
    let tree = Tree::decode(&hx(&v["tree"])).unwrap();
    let NodeKind::File {
        size,
        content: Content::Lists(ids),
        ..
    } = &tree.nodes[0].kind
    else {
        panic!("a file of content kind 1")
    };
    let list_ids: Vec<Vec<u8>> = lists.iter().map(|l| hx(&l["id"])).collect();
    assert_eq!(
        ids.iter().map(|i| i.0.to_vec()).collect::<Vec<_>>(),
        list_ids
    );
    assert_eq!(
        listed.iter().map(|i| i.0.to_vec()).collect::<Vec<_>>(),
        data
    );
    let content: Vec<u8> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| hx(&d["body"]))
        .collect();
    assert_eq!(content, hx(&v["file_content"]));
    assert_eq!(*size, content.len() as u64);
    assert!(decode_content_list(&group_with_extra_byte(&groups[0])).is_err());
}

fn group_with_extra_byte(group: &[u8]) -> Vec<u8> {
    [group, &[0][..]].concat()
}

struct PrfOutput(Vec<u8>);
impl Protector for PrfOutput {
    fn protector_type(&self) -> sealback_core::keyslot::ProtectorType {
        sealback_core::keyslot::ProtectorType::PASSKEY_PRF
    }
    fn secret_for(
        &mut self,
        _: &sealback_core::keyslot::KeySlot,
    ) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok(Some(ProtectorSecret::new(self.0.clone())))
    }
}

#[test]
fn passkey_slot_unlock_from_prf_output_to_root_key() {
    let v = load("passkey.json");
    let u = &v["unlock"];
    let prf_output = hx(&v["prf_output"]);
    let mut okm = [0u8; 64];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&hx(&v["slot_salt"])), &prf_output)
        .expand(b"sealback 2026-11-25 slot keys", &mut okm)
        .unwrap();
    assert_eq!(hex::encode(okm), u["slot_keys_okm"].as_str().unwrap());
    assert_eq!(
        hex::encode(&okm[32..]),
        u["attestation_key"].as_str().unwrap()
    );
    let file = KeySlotFile::decode(&hx(&u["file"])).unwrap();
    assert_eq!(file.encode(), hx(&u["file"]));
    assert_eq!(file.repo_id.0.to_vec(), hx(&u["repo_id"]));
    let slot = &file.slots[0];
    assert_eq!(slot.params, hx(&v["params"]["encoded"]));
    assert_eq!(
        hex::encode(&slot.public_key),
        v["slot_public_key"].as_str().unwrap()
    );
    let unlocked = file.unlock(&mut PrfOutput(prf_output.clone())).unwrap();
    assert_eq!(
        hex::encode(unlocked.keyring.current_root().expose_secret()),
        u["root_key"].as_str().unwrap()
    );
    assert!(unlocked.unvouched.is_empty());
    let mut wrong = prf_output;
    wrong[0] ^= 1;
    assert!(matches!(
        file.unlock(&mut PrfOutput(wrong)),
        Err(UnlockError::WrongSecret { .. })
    ));
}

#[test]
fn vault_password_wrap() {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let v = load("vault_wrap.json");
    let mut wrap_key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &hx(&v["export_key"]))
        .expand(b"sealback 2026-11-25 vault wrap", &mut wrap_key)
        .unwrap();
    assert_eq!(hex::encode(wrap_key), v["wrap_key"].as_str().unwrap());
    let open = |wrapped: &[u8], account: &str| -> Option<Vec<u8>> {
        if wrapped.len() < 12 + 16 {
            return None;
        }
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &wrap_key).unwrap());
        let mut buf = wrapped[12..].to_vec();
        let nonce = Nonce::assume_unique_for_key(wrapped[..12].try_into().unwrap());
        key.open_in_place(nonce, Aad::from(account.as_bytes()), &mut buf)
            .ok()
            .map(|p| p.to_vec())
    };
    let wrapped = hx(&v["wrapped"]);
    assert_eq!(&wrapped[..12], &hx(&v["nonce"])[..]);
    assert_eq!(
        open(&wrapped, v["account"].as_str().unwrap()),
        Some(hx(&v["secret"]))
    );
    for c in v["invalid"].as_array().unwrap() {
        assert_eq!(
            open(&hx(&c["wrapped"]), c["account"].as_str().unwrap()),
            None,
            "{}",
            c["why"]
        );
    }
}

struct RawSecret(Vec<u8>);
impl Protector for RawSecret {
    fn protector_type(&self) -> sealback_core::keyslot::ProtectorType {
        sealback_core::keyslot::ProtectorType::RECOVERY_KEY
    }
    fn secret_for(
        &mut self,
        _: &sealback_core::keyslot::KeySlot,
    ) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok(Some(ProtectorSecret::new(self.0.clone())))
    }
}

fn recovery_protector(secret: &[u8]) -> RecoveryKeyProtector {
    let digits = String::from_utf8(secret.to_vec()).unwrap();
    RecoveryKeyProtector(RecoveryKey::parse(&digits).unwrap())
}

#[test]
fn keyslots() {
    let v = load("keyslot.json");
    let secret = hx(&v["protector_secret"]);
    assert_eq!(
        hex::encode(sealback_core::keyslot::slot_public_key(
            &ProtectorSecret::new(secret.clone()),
            &hx(&v["slot_salt"]).try_into().unwrap()
        )),
        v["slot_public_key"].as_str().unwrap()
    );
    check_keyslot_cases(&v, &secret);
}

/// Every valid file of a keyslot vector unlocks to its root key and every invalid one fails as
/// its `expected` says.
fn check_keyslot_cases(v: &serde_json::Value, secret: &[u8]) {
    let secret = secret.to_vec();
    for c in v["valid"].as_array().unwrap() {
        let file = KeySlotFile::decode(&hx(&c["file"])).unwrap();
        assert_eq!(
            file.encode(),
            hx(&c["file"]),
            "re-encoding is byte-identical"
        );
        let unlocked = file.unlock(&mut recovery_protector(&secret)).unwrap();
        let root = c.get("root").unwrap_or(&v["root_key"]);
        assert_eq!(
            hex::encode(unlocked.keyring.current_root().expose_secret()),
            root.as_str().unwrap()
        );
        assert!(unlocked.unvouched.is_empty(), "{}", c["why"]);
        let upgrade = c["expected"] == "unlocks_needs_upgrade";
        assert_eq!(unlocked.needs_upgrade, upgrade, "{}", c["why"]);
    }
    for c in v["invalid"].as_array().unwrap() {
        let kind = match KeySlotFile::decode(&hx(&c["file"])) {
            Err(_) => "format".to_string(),
            Ok(file) => {
                let s = c.get("secret").map(hx).unwrap_or_else(|| secret.clone());
                match file.unlock(&mut RawSecret(s)) {
                    Err(UnlockError::WrongSecret { .. }) => "wrong_secret".into(),
                    Err(UnlockError::Tampered { detail, .. }) => {
                        if let Some(expected) = c.get("detail") {
                            assert_eq!(detail, expected.as_str().unwrap(), "{}", c["why"]);
                        }
                        "tampered".into()
                    }
                    Err(UnlockError::KeysFile { .. }) => "keys_file".into(),
                    Ok(u) if !u.unvouched.is_empty() => "unvouched".into(),
                    other => format!("{other:?}"),
                }
            }
        };
        assert_eq!(kind, c["expected"].as_str().unwrap(), "{}", c["why"]);
    }
}

#[test]
fn xwing_keyslots() {
    let v = load("keyslot_xwing.json");
    let secret = hx(&v["protector_secret"]);
    let salt: [u8; 32] = hx(&v["slot_salt"]).try_into().unwrap();
    let public_key = sealback_core::keyslot::slot_public_key_of(
        SlotKem::XWing,
        &ProtectorSecret::new(secret.clone()),
        &salt,
    );
    assert_eq!(public_key.len(), 1216);
    assert_eq!(
        hex::encode(&public_key),
        v["slot_public_key"].as_str().unwrap()
    );
    let file = KeySlotFile::decode(&hx(&v["file"])).unwrap();
    let slot = &file.slots[0];
    assert_eq!((slot.kem, &slot.public_key), (SlotKem::XWing, &public_key));
    assert_eq!(
        hex::encode(&slot.sealed[0].enc),
        v["sealed"]["enc"].as_str().unwrap()
    );
    assert_eq!(slot.sealed[0].enc.len(), 1120);
    check_keyslot_cases(&v, &secret);
    let upgraded = &v["valid"][2];
    let file = KeySlotFile::decode(&hx(&upgraded["file"])).unwrap();
    let id = upgraded["upgraded_slot"].as_str().unwrap();
    let slot = file.slots.iter().find(|s| s.id.to_hex() == id).unwrap();
    assert_eq!(slot.kem, SlotKem::XWing);
    assert!(file.slots.iter().all(|s| s.kem == SlotKem::XWing));
}

#[test]
fn keys_file_mac() {
    let v = load("keyslot.json");
    let m = &v["mac"];
    let file = KeySlotFile::decode(&hx(&m["file"])).unwrap();
    let root = RootKey::from_slice(&hx(&v["root_key"])).unwrap();
    let mac_key = hkdf_subkey(root.expose_secret(), &file.repo_id.0, labels::KEYS_FILE_MAC);
    assert_eq!(
        hex::encode(mac_key.expose_secret()),
        m["mac_key"].as_str().unwrap()
    );
    // Each slot record's digest, recomputed from the encoded record in the file.
    let records: Vec<Vec<u8>> = file
        .slots
        .iter()
        .map(|s| {
            let mut one = file.clone();
            one.slots = vec![s.clone()];
            one.vouch = None;
            let bytes = one.encode();
            let len = u32::from_be_bytes(bytes[29..33].try_into().unwrap()) as usize;
            bytes[33..33 + len].to_vec()
        })
        .collect();
    let digests: Vec<[u8; 32]> = records.iter().map(|r| vouch::record_digest(r)).collect();
    let expected: Vec<String> = digests.iter().map(hex::encode).collect();
    let listed: Vec<String> = m["slot_record_digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(expected, listed);
    let covered = vouch::Covered {
        version: 2,
        repo_id: &file.repo_id,
        epoch: file.current_epoch,
        digests: &digests,
        keyring: &file.keyring,
        labels: &[],
    };
    assert_eq!(
        hex::encode(vouch::mac(&root, &covered)),
        m["mac"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(file.vouch.unwrap().mac),
        m["mac"].as_str().unwrap()
    );
}

#[test]
fn rotation() {
    let v = load("keyslot.json");
    let r = &v["rotation"];
    let after = KeySlotFile::decode(&hx(&r["after"])).unwrap();
    let unlocked = after
        .unlock(&mut recovery_protector(&hx(&v["protector_secret"])))
        .unwrap();
    let roots: Vec<String> = unlocked
        .keyring
        .roots()
        .iter()
        .map(|k| hex::encode(k.expose_secret()))
        .collect();
    let expected: Vec<String> = r["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(roots, expected);
    assert_eq!(roots[0], v["root_key"].as_str().unwrap());
    assert_eq!(after.current_epoch, 1);
    assert_eq!(
        hex::encode(&after.keyring),
        r["keyring_object"].as_str().unwrap()
    );
    // The keyring object: header epoch 0, metadata key of K_1, id repo_id || u32(1) || 0^12.
    let k1 = RootKey::from_slice(&hx(&r["roots"][1])).unwrap();
    let metadata = hkdf_subkey(k1.expose_secret(), &after.repo_id.0, labels::METADATA_KEY);
    let mut id = [0u8; 32];
    id[..16].copy_from_slice(&after.repo_id.0);
    id[16..20].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(after.keyring[2..6], [0, 0, 0, 0]);
    let body = open_with_key(
        &metadata,
        ObjectType::Keyring,
        &Id(id),
        &after.keyring,
        1 << 20,
    )
    .unwrap();
    assert_eq!(body[..5], [1, 0, 0, 0, 1]);
    assert_eq!(hex::encode(&body[5..]), v["root_key"].as_str().unwrap());
    // The removed slot is gone, the other sealed at both epochs.
    let before = KeySlotFile::decode(&hx(&r["before"])).unwrap();
    assert_eq!((before.slots.len(), after.slots.len()), (2, 1));
    let epochs: Vec<u32> = after.slots[0].sealed.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, [0, 1]);
}

#[test]
fn chunker() {
    let v = load("chunker.json");
    let p = &v["params"];
    let params = ChunkerParams {
        min: p["min"].as_u64().unwrap() as usize,
        avg_bits: p["avg_bits"].as_u64().unwrap() as u32,
        max: p["max"].as_u64().unwrap() as usize,
    };
    let input = hx(&v["input"]);
    let chunker = Chunker::new(&subkey(&v["chunker_key"]), params);
    let lengths: Vec<u64> = chunker
        .split_all(&input)
        .iter()
        .map(|&n| n as u64)
        .collect();
    let expected: Vec<u64> = v["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(lengths, expected);
    assert!(expected.len() > 10, "the vector exercises many boundaries");
    let other: Vec<u64> = v["lengths_under_another_key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_ne!(expected, other, "boundaries depend on the key");
    let under_other: Vec<u64> = Chunker::new(&subkey(&v["another_chunker_key"]), params)
        .split_all(&input)
        .iter()
        .map(|&n| n as u64)
        .collect();
    assert_eq!(under_other, other, "the second key's known answer");
    let other_root = RootKey::from_bytes([0x12; 32]);
    let derived = hkdf_subkey(
        other_root.expose_secret(),
        &hx(&load("key_derivation.json")["repo_id"]),
        labels::CHUNKER_KEY,
    );
    assert_eq!(
        hex::encode(derived.expose_secret()),
        v["another_chunker_key"].as_str().unwrap()
    );
}

#[test]
fn trees() {
    let v = load("tree.json");
    for c in v["valid"].as_array().unwrap() {
        let t = Tree::decode(&hx(&c["encoded"])).unwrap();
        assert_eq!(t.nodes.len() as u64, c["nodes"].as_u64().unwrap());
        assert_eq!(t.encode(), hx(&c["encoded"]));
    }
    for c in v["invalid"].as_array().unwrap() {
        assert!(Tree::decode(&hx(&c["encoded"])).is_err(), "{}", c["why"]);
    }
}

#[test]
fn locks() {
    use sealback_core::lock::{LockKind, LockRecord};
    let v = load("lock.json");
    for c in v["valid"].as_array().unwrap() {
        let r = LockRecord::decode(&hx(&c["encoded"])).unwrap();
        assert_eq!(
            r.kind == LockKind::Exclusive,
            c["exclusive"].as_bool().unwrap()
        );
        assert_eq!(r.time_unix_ns, c["time_unix_ns"].as_i64().unwrap());
        assert_eq!(r.hostname, c["hostname"].as_str().unwrap());
        assert_eq!(u64::from(r.pid), c["pid"].as_u64().unwrap());
        assert_eq!(r.operation, c["operation"].as_str().unwrap());
        assert_eq!(r.encode(), hx(&c["encoded"]));
    }
    for c in v["invalid"].as_array().unwrap() {
        assert!(
            LockRecord::decode(&hx(&c["encoded"])).is_err(),
            "{}",
            c["why"]
        );
    }
}

#[test]
fn passkey_prf() {
    use hmac::{Hmac, KeyInit, Mac};
    let v = load("passkey.json");
    let input = hx(&v["prf_input"]);
    let salt = sealback_core::passkey::webauthn_prf_salt(&input);
    assert_eq!(hex::encode(salt), v["hmac_secret_salt"].as_str().unwrap());
    let mut direct = Vec::from(&b"WebAuthn PRF\0"[..]);
    direct.extend_from_slice(&input);
    assert_eq!(
        <sha2::Sha256 as sha2::Digest>::digest(&direct).as_slice(),
        salt
    );
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&hx(&v["cred_random"])).unwrap();
    m.update(&salt);
    let out = m.finalize().into_bytes().to_vec();
    assert_eq!(hex::encode(&out), v["prf_output"].as_str().unwrap());
    let params =
        sealback_core::passkey::PasskeyParams::decode(&hx(&v["params"]["encoded"])).unwrap();
    assert_eq!(
        hex::encode(&params.credential_id),
        v["params"]["credential_id"].as_str().unwrap()
    );
    assert_eq!(params.prf_salt.to_vec(), input);
    assert_eq!(
        params.prf_input().to_vec(),
        input,
        "version 1: the salt itself"
    );
    assert_eq!(params.encode(), hx(&v["params"]["encoded"]));
    // Version 2: the input bound to the relying party id, computed here from its definition.
    let b = &v["bound_params"];
    let bound = sealback_core::passkey::PasskeyParams::decode(&hx(&b["encoded"])).unwrap();
    assert_eq!(
        bound.input_rule,
        sealback_core::passkey::PrfInputRule::BoundToRpId
    );
    assert_eq!(bound.rp_id, b["rp_id"].as_str().unwrap());
    assert_eq!(bound.prf_salt.to_vec(), hx(&b["salt"]));
    let rp = bound.rp_id.as_bytes();
    let mut direct = Vec::from(&b"sealback 2026-12-02 passkey PRF input\0"[..]);
    direct.extend_from_slice(&(rp.len() as u16).to_be_bytes());
    direct.extend_from_slice(rp);
    direct.extend_from_slice(&bound.prf_salt);
    let expected = <sha2::Sha256 as sha2::Digest>::digest(&direct);
    assert_eq!(bound.prf_input().as_slice(), expected.as_slice());
    assert_eq!(
        hex::encode(bound.prf_input()),
        b["prf_input"].as_str().unwrap()
    );
    assert_eq!(bound.encode(), hx(&b["encoded"]));
    let pk = sealback_core::keyslot::slot_public_key(
        &ProtectorSecret::new(out),
        &hx(&v["slot_salt"]).try_into().unwrap(),
    );
    assert_eq!(hex::encode(pk), v["slot_public_key"].as_str().unwrap());
}

#[test]
fn vault_passkey_params_and_secret() {
    use hkdf::Hkdf;
    let v = load("vault_passkey.json");
    let vault_share: [u8; 32] = hx(&v["vault_share"]).try_into().unwrap();
    let storage_share: [u8; 32] = hx(&v["storage_share"]).try_into().unwrap();
    let secret = sealback_core::vault::vault_passkey_secret(&vault_share, &storage_share);
    assert_eq!(
        hex::encode(secret.expose_secret()),
        v["secret"].as_str().unwrap()
    );
    // The derivation spelled out independently of the library.
    let mut ikm = vault_share.to_vec();
    ikm.extend_from_slice(&storage_share);
    let mut direct = [0u8; 32];
    Hkdf::<sha2::Sha256>::new(None, &ikm)
        .expand(b"sealback 2026-11-26 vault passkey", &mut direct)
        .unwrap();
    assert_eq!(secret.expose_secret(), &direct[..]);
    // Each share matters.
    let other = sealback_core::vault::vault_passkey_secret(&storage_share, &vault_share);
    assert_ne!(other.expose_secret(), secret.expose_secret());
    let p = sealback_core::vault::VaultPasskeyParams::decode(&hx(&v["params"]["encoded"])).unwrap();
    assert_eq!(
        p.vault_id.map(|id| id.to_hex()).as_deref(),
        v["params"]["vault_id"].as_str()
    );
    assert_eq!(p.legacy_url, None);
    assert_eq!(p.account, v["params"]["account"].as_str().unwrap());
    assert_eq!(p.rp_id, v["params"]["rp_id"].as_str().unwrap());
    assert_eq!(*p.storage_share, storage_share);
    assert_eq!(p.encode(), hx(&v["params"]["encoded"]));
    assert!(!format!("{p:?}").contains(&hex::encode(storage_share)));
    // A format-1 slot still parses (its URL is kept, never used) and re-encodes byte for byte.
    let legacy = &v["legacy_params"];
    let old = sealback_core::vault::VaultPasskeyParams::decode(&hx(&legacy["encoded"])).unwrap();
    assert_eq!(old.vault_id, None);
    assert_eq!(old.legacy_url.as_deref(), legacy["url"].as_str());
    assert_eq!(old.encode(), hx(&legacy["encoded"]));
    assert!(
        old.held_by(p.vault_id.unwrap()),
        "a format-1 slot names no vault"
    );
    for c in v["invalid_params"].as_array().unwrap() {
        assert!(
            sealback_core::vault::VaultPasskeyParams::decode(&hx(&c["encoded"])).is_err(),
            "{}",
            c["why"]
        );
    }
}

#[test]
fn vault_id_and_password_params() {
    use sha2::Digest;
    let v = load("vault_params.json");
    let key = hx(&v["server_public_key"]);
    let id = sealback_core::vault::VaultId::of_server_key(&key);
    assert_eq!(id.to_hex(), v["vault_id"].as_str().unwrap());
    // The id spelled out independently of the library.
    let direct = sha2::Sha256::new()
        .chain_update(b"sealback 2026-12-02 vault id")
        .chain_update(&key)
        .finalize();
    assert_eq!(&id.0[..], &direct[..16]);
    let p = sealback_core::vault::VaultParams::decode(&hx(&v["params"]["encoded"])).unwrap();
    assert_eq!(p.account, v["params"]["account"].as_str().unwrap());
    assert_eq!(p.server_public_key, key);
    assert_eq!(p.vault_id(), id);
    assert_eq!(p.legacy_url, None);
    assert_eq!(p.encode(), hx(&v["params"]["encoded"]));
    let legacy = &v["legacy_params"];
    let old = sealback_core::vault::VaultParams::decode(&hx(&legacy["encoded"])).unwrap();
    assert_eq!(old.legacy_url.as_deref(), legacy["url"].as_str());
    assert_eq!(
        old.vault_id(),
        id,
        "a format-1 slot's vault is the one its pinned key names"
    );
    assert_eq!(old.encode(), hx(&legacy["encoded"]));
    for c in v["invalid_params"].as_array().unwrap() {
        assert!(
            sealback_core::vault::VaultParams::decode(&hx(&c["encoded"])).is_err(),
            "{}",
            c["why"]
        );
    }
}

fn vector_keyring() -> Keyring {
    let kd = load("key_derivation.json");
    Keyring::new(
        RepoId(hx(&kd["repo_id"]).try_into().unwrap()),
        vec![RootKey::from_slice(&hx(&kd["root_key"])).unwrap()],
    )
}

/// Rebuilds the version 2 pack of pack.json byte for byte from its bodies, ids and seeds, and
/// reads it back.
#[test]
fn packs() {
    use sealback_core::object::{padme, seal_headerless_with_seed, Compression};
    use sealback_core::pack::{self, BlobEntry, PackError};
    let v = load("pack.json");
    let keyring = vector_keyring();
    let pack_id = Id::from_hex(v["pack_id"].as_str().unwrap()).unwrap();
    let bytes = hx(&v["pack"]);
    let seal = |ty: ObjectType, id: &Id, body: &[u8], c: Compression, pad: bool, seed: &Value| {
        let key = keyring.object_key(ty, 0).unwrap();
        seal_headerless_with_seed(key, 0, ty, id, body, c, pad, hx(seed).try_into().unwrap()).bytes
    };
    let mut rebuilt = b"SBPK\x02".to_vec();
    let mut entries = vec![];
    for b in v["blobs"].as_array().unwrap() {
        let ty = ObjectType::from_u8(b["type"].as_u64().unwrap() as u8).unwrap();
        let body = hx(&b["body"]);
        let id = keyring.content_id().blob_id(ty, &body);
        assert_eq!(id.to_hex(), b["id"].as_str().unwrap());
        let c = if b["compression"] == "zstd" {
            Compression::Zstd(3)
        } else {
            Compression::None
        };
        let sealed = seal(ty, &id, &body, c, true, &b["seed"]);
        assert_eq!(sealed.len(), padme(sealed.len()));
        entries.push(BlobEntry {
            ty,
            id,
            epoch: Some(0),
            offset: rebuilt.len() as u32,
            length: sealed.len() as u32,
            raw_length: body.len() as u32,
        });
        assert_eq!(b["offset"].as_u64().unwrap(), rebuilt.len() as u64);
        rebuilt.extend_from_slice(&sealed);
    }
    let index = sealback_core::index::IndexFile {
        packs: vec![(pack_id, entries.clone())],
    };
    let idx = load("index.json");
    assert_eq!(hex::encode(index.encode()), idx["body"].as_str().unwrap());
    assert_eq!(
        sealback_core::index::IndexFile::decode(&hx(&idx["body"])).unwrap(),
        index
    );
    // The header body is the index entry layout after u8(2) ‖ u32(n).
    let mut body = vec![2u8];
    body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    body.extend_from_slice(&hx(&idx["body"])[5 + 32 + 1 + 4..]);
    let header = seal(
        ObjectType::PackHeader,
        &pack_id,
        &body,
        Compression::Zstd(3),
        true,
        &v["header"]["seed"],
    );
    rebuilt.extend_from_slice(&header);
    let trailer = seal(
        ObjectType::PackTrailer,
        &pack_id,
        &(header.len() as u32).to_be_bytes(),
        Compression::None,
        false,
        &v["trailer"]["seed"],
    );
    assert_eq!(trailer.len(), pack::TRAILER_LEN);
    rebuilt.extend_from_slice(&trailer);
    assert_eq!(hex::encode(&rebuilt), v["pack"].as_str().unwrap());
    assert_eq!(
        pack::read_header(&keyring, &pack_id, &bytes).unwrap(),
        entries
    );
    for c in v["padme"].as_array().unwrap() {
        let n = c[0].as_u64().unwrap() as usize;
        assert_eq!(padme(n) as u64, c[1].as_u64().unwrap(), "padme({n})");
    }
    let invalid = v["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 5);
    for c in invalid {
        let outcome = match pack::read_header(&keyring, &pack_id, &hx(&c["pack"])) {
            Ok(_) => "ok",
            Err(PackError::Object(ObjectError::Authentication { .. })) => "authentication",
            Err(PackError::Format(_)) => "format",
            Err(other) => panic!("{}: unexpected {other}", c["why"]),
        };
        assert_eq!(outcome, c["expected"].as_str().unwrap(), "{}", c["why"]);
    }
}

#[test]
fn snapshots_and_content_lists() {
    use sealback_core::snapshot::{decode_content_list, Snapshot};
    let v = load("snapshot.json");
    for c in v["valid"].as_array().unwrap() {
        let s = Snapshot::decode(&hx(&c["encoded"])).unwrap();
        assert_eq!(s.time_unix_ns, c["time_unix_ns"].as_i64().unwrap());
        assert_eq!(s.hostname, c["hostname"].as_str().unwrap());
        let paths: Vec<&str> = c["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(s.paths, paths);
        assert_eq!(s.tree.to_hex(), c["tree"].as_str().unwrap());
        assert_eq!(
            s.parent.map(|p| p.to_hex()),
            c["parent"].as_str().map(String::from)
        );
        let tags: Vec<&str> = c["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(s.tags, tags);
        let m = &s.summary;
        let summary: Vec<u64> = c["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(
            summary,
            [m.files, m.dirs, m.bytes_read, m.bytes_added, m.blobs_added]
        );
        let left_out: Vec<&str> = c["left_out"]
            .as_array()
            .map(|a| a.iter().map(|p| p.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(s.left_out, left_out);
        assert_eq!(hex::encode(s.encode()), c["encoded"].as_str().unwrap());
    }
    for c in v["invalid"].as_array().unwrap() {
        assert!(
            Snapshot::decode(&hx(&c["encoded"])).is_err(),
            "{}",
            c["why"]
        );
    }
    let v = load("content_list.json");
    let ids: Vec<String> = decode_content_list(&hx(&v["body"]))
        .unwrap()
        .iter()
        .map(|i| i.to_hex())
        .collect();
    let expected: Vec<&str> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
    for c in v["invalid"].as_array().unwrap() {
        assert!(
            decode_content_list(&hx(&c["body"])).is_err(),
            "{}",
            c["why"]
        );
    }
}

#[test]
fn index_cache() {
    use sealback_core::index_cache::{self, CacheMac};
    let v = load("index_cache.json");
    let repo_id = RepoId(hx(&v["repo_id"]).try_into().unwrap());
    let root = RootKey::from_slice(&hx(&v["root_key"])).unwrap();
    // The MAC key, derived here without the crate's helper.
    let key = hkdf_subkey(
        root.expose_secret(),
        &repo_id.0,
        v["label"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        hex::encode(key.expose_secret()),
        v["mac_key"].as_str().unwrap()
    );
    assert_eq!(
        v["label"].as_str().unwrap().as_bytes(),
        labels::INDEX_CACHE_MAC
    );
    let file = hx(&v["file"]);
    let (body, mac) = file.split_at(file.len() - 32);
    assert_eq!(
        blake3::keyed_hash(key.expose_secret(), body).as_bytes(),
        mac
    );
    let keyring = Keyring::new(repo_id, vec![root]);
    let (head, _, records) = index_cache::decode(&file, Some(CacheMac::new(&keyring))).unwrap();
    assert_eq!(head.repo_id, repo_id);
    let packs: Vec<String> = head.packs.iter().map(|p| p.to_hex()).collect();
    assert_eq!(serde_json::to_value(packs).unwrap(), v["packs"]);
    let covered: Vec<String> = head.covered.iter().map(|c| c.to_hex()).collect();
    assert_eq!(serde_json::to_value(covered).unwrap(), v["covered"]);
    let want = v["records"].as_array().unwrap();
    assert_eq!(records.len(), want.len());
    for (r, w) in records.iter().zip(want) {
        assert_eq!(r.pack, w["pack"].as_u64().unwrap() as u32);
        assert_eq!(r.entry.ty as u8 as u64, w["type"].as_u64().unwrap());
        assert_eq!(r.entry.id.to_hex(), w["id"].as_str().unwrap());
        assert_eq!(r.entry.epoch.map(u64::from), w["epoch"].as_u64());
        assert_eq!(u64::from(r.entry.offset), w["offset"].as_u64().unwrap());
        assert_eq!(u64::from(r.entry.length), w["length"].as_u64().unwrap());
        assert_eq!(
            u64::from(r.entry.raw_length),
            w["raw_length"].as_u64().unwrap()
        );
    }
    assert_eq!(index_cache::encode(&keyring, &head, &records), file);
}
