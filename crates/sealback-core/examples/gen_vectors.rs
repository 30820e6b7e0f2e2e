//! Writes the known-answer vectors under tests/vectors/ (run from the repository root):
//!
//! ```text
//! cargo run -p sealback-core --example gen_vectors -- tests/vectors
//! ```
//! Every input is fixed; the HPKE ephemeral keys come from ChaCha20 seeded with zeros, so the
//! output is identical on every run. The core's tests recompute every value from its inputs.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealback_core::chunker::{Chunker, ChunkerParams};
use sealback_core::keys::hkdf_subkey;
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotId, SlotKem, SlotTemplate};
use sealback_core::object::{seal_with_seed, Compression, ObjectType};
use sealback_core::recovery::{damm, RecoveryKey};
use sealback_core::snapshot::{Content, Node, NodeKind, Tree};
use sealback_core::{labels, Id, Keyring, RepoId, RootKey};
use serde_json::{json, Value};
use std::path::Path;

const REPO_ID: [u8; 16] = [0x0f; 16];

fn root(b: u8) -> RootKey {
    RootKey::from_bytes([b; 32])
}

fn write(dir: &Path, name: &str, mut v: Value) {
    // Keys sorted whatever serde_json's features are (another crate in the workspace turns
    // on `preserve_order`, which keeps insertion order instead).
    v.sort_all_objects();
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    std::fs::write(dir.join(name), text).unwrap();
}

/// Deterministic "random" bytes for inputs: SHA-256 in counter mode would do; ChaCha20 is simpler here.
fn input_bytes(seed: u8, n: usize) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut b = vec![0u8; n];
    rand_core::Rng::fill_bytes(&mut rng, &mut b);
    b
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/vectors".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();

    // Key derivation.
    let keyring = Keyring::new(RepoId(REPO_ID), vec![root(0x11)]);
    let k = root(0x11);
    let sub =
        |label: &[u8]| hex::encode(hkdf_subkey(k.expose_secret(), &REPO_ID, label).expose_secret());
    write(
        dir,
        "key_derivation.json",
        json!({
            "description": "HKDF-SHA256(ikm = root key, salt = repo id, info = label) -> 32 bytes",
            "repo_id": hex::encode(REPO_ID),
            "root_key": hex::encode(k.expose_secret()),
            "outputs": [
                {"label": String::from_utf8_lossy(labels::DATA_KEY), "key": sub(labels::DATA_KEY)},
                {"label": String::from_utf8_lossy(labels::METADATA_KEY), "key": sub(labels::METADATA_KEY)},
                {"label": String::from_utf8_lossy(labels::CONTENT_ID_KEY), "key": sub(labels::CONTENT_ID_KEY)},
                {"label": String::from_utf8_lossy(labels::CHUNKER_KEY), "key": sub(labels::CHUNKER_KEY)},
            ],
        }),
    );

    // Blob ids.
    let data = b"hello from sealback".to_vec();
    let blob_cases: Vec<Value> = [ObjectType::Data, ObjectType::Tree, ObjectType::ContentList]
        .iter()
        .map(|ty| json!({"type": *ty as u8, "data": hex::encode(&data), "id": keyring.content_id().blob_id(*ty, &data).to_hex()}))
        .collect();
    write(
        dir,
        "blob_id.json",
        json!({
            "description": "BLAKE3 keyed with the content id key, over type byte || plaintext",
            "content_id_key": sub(labels::CONTENT_ID_KEY),
            "cases": blob_cases,
        }),
    );

    // Objects.
    let data_key = hkdf_subkey(k.expose_secret(), &REPO_ID, labels::DATA_KEY);
    let meta_key = hkdf_subkey(k.expose_secret(), &REPO_ID, labels::METADATA_KEY);
    let id = Id([0x22; 32]);
    let seed = [0x33; 32];
    let text = b"compressible compressible compressible compressible compressible".to_vec();
    let stored = seal_with_seed(
        &data_key,
        0,
        ObjectType::Data,
        &id,
        &data,
        Compression::None,
        seed,
    )
    .bytes;
    let zstd = seal_with_seed(
        &meta_key,
        0,
        ObjectType::Snapshot,
        &id,
        &text,
        Compression::Zstd(3),
        seed,
    )
    .bytes;
    let empty = seal_with_seed(
        &meta_key,
        0,
        ObjectType::Tree,
        &id,
        b"",
        Compression::None,
        seed,
    )
    .bytes;
    let unknown_encoding = seal_payload(&data_key, ObjectType::Data, &id, seed, &[2, 0x61]);
    let empty_zstd = seal_payload(&data_key, ObjectType::Data, &id, seed, &[1]);
    let mut flipped = stored.clone();
    flipped[40] ^= 1;
    let mut retyped = stored.clone();
    retyped[1] = ObjectType::Tree as u8;
    write(
        dir,
        "object.json",
        json!({
            "description": "object = 01 || type || epoch(u32) || seed(32) || AES-256-GCM(HKDF(subkey, seed, 'sealback 2026-11-25 object key'), nonce 0, aad 'sealback object v1' || header || id) of encoding || body",
            "valid": [
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "epoch": 0, "id": id.to_hex(), "seed": hex::encode(seed), "body": hex::encode(&data), "compression": "none", "object": hex::encode(&stored), "expected": "ok"},
                {"subkey": hex::encode(meta_key.expose_secret()), "type": 0x12, "epoch": 0, "id": id.to_hex(), "seed": hex::encode(seed), "body": hex::encode(&text), "compression": "zstd", "object": hex::encode(&zstd), "expected": "ok"},
                {"subkey": hex::encode(meta_key.expose_secret()), "type": 2, "epoch": 0, "id": id.to_hex(), "seed": hex::encode(seed), "body": "", "compression": "none", "object": hex::encode(&empty), "expected": "ok", "why": "an empty body: the payload is the encoding byte 00 alone (55 bytes in all)"},
            ],
            "invalid": [
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&flipped), "expected": "authentication", "why": "one bit of the ciphertext flipped"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": Id([0x23; 32]).to_hex(), "object": hex::encode(&stored), "expected": "authentication", "why": "opened under another object id (a swapped object)"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 2, "id": id.to_hex(), "object": hex::encode(&retyped), "expected": "authentication", "why": "type byte changed"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&stored[..stored.len() - 1]), "expected": "authentication", "why": "truncated by one byte"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&stored[..20]), "expected": "format", "why": "shorter than a header"},
                {"subkey": hex::encode(meta_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&stored), "expected": "authentication", "why": "wrong subkey"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&unknown_encoding), "payload": "0261", "expected": "format", "why": "the tag verifies but the encoding byte is 2 (unknown)"},
                {"subkey": hex::encode(data_key.expose_secret()), "type": 1, "id": id.to_hex(), "object": hex::encode(&empty_zstd), "payload": "01", "expected": "format", "why": "the tag verifies but encoding 1 (zstd) has no frame"},
            ],
        }),
    );

    // Recovery keys.
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let key = RecoveryKey::generate(&mut rng);
    let digits: String = key
        .display_groups()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let mut typo = digits.clone().into_bytes();
    typo[10] = if typo[10] == b'9' { b'0' } else { typo[10] + 1 };
    let mut swap = digits.clone().into_bytes();
    let i = (0..63).find(|&i| swap[i] != swap[i + 1]).unwrap();
    swap.swap(i, i + 1);
    let d: Vec<u8> = digits.bytes().take(63).map(|b| b - b'0').collect();
    write(
        dir,
        "recovery_key.json",
        json!({
            "description": "63 random digits and a Damm check digit, shown in 16 groups of 4; damm_table[interim][digit] is the quasigroup (SPEC 7): interim starts at 0, each digit d sets interim = damm_table[interim][d], and a valid key ends at 0",
            "damm_table": damm_table(),
            "valid": [
                {"input": key.display_groups().as_str(), "digits": digits, "check_digit": damm(&d)},
                {"input": digits.chars().collect::<Vec<_>>().chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"), "digits": digits, "check_digit": damm(&d)},
            ],
            "invalid": [
                {"input": String::from_utf8(typo).unwrap(), "expected": "checksum", "why": "one digit changed"},
                {"input": String::from_utf8(swap).unwrap(), "expected": "checksum", "why": "two neighbours swapped"},
                {"input": &digits[..63], "expected": "length", "why": "a digit missing"},
                {"input": format!("{}x", &digits[..63]), "expected": "character", "why": "a letter"},
            ],
        }),
    );

    // A keyslot file with one recovery-key slot.
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let secret = key.to_secret();
    let slot = KeySlot::enroll_x25519_with(
        &keyring,
        SlotTemplate {
            protector_type: ProtectorType::RECOVERY_KEY,
            name: "paper".into(),
            created_unix: 1_764_028_800,
            params: vec![],
        },
        &secret,
        SlotId([0x44; 16]),
        [0x55; 32],
        &mut rng,
    )
    .unwrap();
    let mut file = KeySlotFile::new(&keyring);
    file.add(&keyring, slot.clone()).unwrap();
    // Format 1: the same slots, no MAC.
    let mut format1 = file.clone();
    format1.vouch = None;
    // A slot of an unknown protector type, written (and vouched for) by a newer client.
    let mut unknown = format1.clone();
    let mut foreign = slot.clone();
    foreign.protector_type = ProtectorType(0x7777);
    // Its own id: two records with one id are refused (SPEC §6.2).
    foreign.id = SlotId([0x77; 16]);
    unknown.slots.insert(0, foreign);
    unknown.upgrade(&keyring).unwrap();
    let mut tampered = file.clone();
    tampered.slots[0].name = "renamed".into();
    // A slot someone without the root key added: the MAC does not cover it.
    let mut injected = file.clone();
    let mut intruder = slot.clone();
    intruder.id = SlotId([0x66; 16]);
    intruder.name = "paper copy".into();
    injected.slots.push(intruder);
    let mut bad_mac = file.clone();
    bad_mac.vouch.as_mut().unwrap().mac[0] ^= 1;
    // Format 3: the slot renamed; the label is covered by the MAC.
    let mut renamed = file.clone();
    renamed
        .rename(&keyring, slot.id, "paper copy in the drawer")
        .unwrap();
    let mut label_edited = renamed.encode();
    let label_at = label_edited
        .windows(6)
        .position(|w| w == b"drawer")
        .unwrap();
    label_edited[label_at..label_at + 6].copy_from_slice(b"garden");
    let mut low_order = format1.encode();
    let pk_at = low_order
        .windows(32)
        .position(|w| w == slot.public_key)
        .unwrap();
    low_order[pk_at..pk_at + 32].fill(0);
    // A rotation to epoch 1 (HPKE and the new root key from ChaCha20 seeded with 0x0a).
    let mut second = file.clone();
    let other = SlotId([0x45; 16]);
    let other_slot = KeySlot::enroll_x25519_with(
        &keyring,
        SlotTemplate {
            protector_type: ProtectorType::RECOVERY_KEY,
            name: "lost phone".into(),
            created_unix: 1_764_028_800,
            params: vec![],
        },
        &sealback_core::ProtectorSecret::new(b"another secret".to_vec()),
        other,
        [0x56; 32],
        &mut rng,
    )
    .unwrap();
    second.add(&keyring, other_slot).unwrap();
    let mut rotated = second.clone();
    let (rotated_keyring, _) = rotated
        .rotate(
            &keyring,
            Some(other),
            &mut ChaCha20Rng::from_seed([0x0a; 32]),
        )
        .unwrap();
    // Unlock edge cases (SPEC §6.4), each on the rotated file, whose MAC cannot be recomputed
    // by whoever made them (each is refused before the MAC is checked).
    let mut no_current_entry = rotated.clone();
    no_current_entry.slots[0].sealed.retain(|e| e.epoch == 0);
    let mut short_keyring = rotated.clone();
    {
        // A keyring object under the right key and id whose count says 2 but holds one key.
        let k1 = rotated_keyring.current_root();
        let metadata = hkdf_subkey(k1.expose_secret(), &REPO_ID, labels::METADATA_KEY);
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&REPO_ID);
        id[16..20].copy_from_slice(&1u32.to_be_bytes());
        let mut body = vec![1, 0, 0, 0, 2];
        body.extend_from_slice(k.expose_secret());
        short_keyring.keyring = seal_with_seed(
            &metadata,
            0,
            ObjectType::Keyring,
            &Id(id),
            &body,
            Compression::None,
            [0x0b; 32],
        )
        .bytes;
    }
    // The slot re-attested at epoch 1 in a file that claims epoch 0 (no keyring then).
    let mut attested_above = rotated.clone();
    let reattested = rotated
        .unlock(&mut sealback_core::recovery::RecoveryKeyProtector(
            RecoveryKey::parse(std::str::from_utf8(secret.expose_secret()).unwrap()).unwrap(),
        ))
        .unwrap()
        .reattested
        .unwrap();
    attested_above.slots[0] = reattested;
    attested_above.current_epoch = 0;
    attested_above.keyring.clear();
    let mac_key = hkdf_subkey(k.expose_secret(), &REPO_ID, labels::KEYS_FILE_MAC);
    let v = file.vouch.clone().unwrap();
    write(
        dir,
        "keyslot.json",
        json!({
            "description": "HPKE(DHKEM-X25519-HKDF-SHA256, HKDF-SHA256, AES-256-GCM) base mode; slot keys = HKDF-SHA256(secret, slot salt, 'sealback 2026-11-25 slot keys') -> 64 bytes; format 2 adds the keys-file MAC (SPEC 6.2)",
            "protector_secret": hex::encode(secret.expose_secret()),
            "slot_salt": hex::encode([0x55; 32]),
            "slot_public_key": hex::encode(slot.public_key),
            "root_key": hex::encode(k.expose_secret()),
            "mac": {
                "description": "mac key = HKDF-SHA256(current root key, salt = repo id, 'sealback 2026-12-02 keys file mac') -> 32 bytes; digest = SHA-256(slot record); mac = HMAC-SHA-256(mac key, label || 'SBKEYS' || u8(2) || repo id || u32(epoch) || u16(v) || digests || bytes32(keyring) [|| bytes32(labels) in format 3, whose version byte is 3])",
                "file": hex::encode(file.encode()),
                "mac_key": hex::encode(mac_key.expose_secret()),
                "slot_record_digests": v.digests.iter().map(hex::encode).collect::<Vec<_>>(),
                "mac": hex::encode(v.mac),
            },
            "rotation": {
                "description": "the file with slots 4444.. and 4545.. rotated to epoch 1 removing 4545..; the keyring object holds K_0 under the metadata key of K_1 (object header epoch 0)",
                "before": hex::encode(second.encode()),
                "after": hex::encode(rotated.encode()),
                "roots": rotated_keyring.roots().iter().map(|r| hex::encode(r.expose_secret())).collect::<Vec<_>>(),
                "keyring_object": hex::encode(&rotated.keyring),
            },
            "valid": [
                {"file": hex::encode(file.encode()), "expected": "unlocks", "why": "one recovery-key slot"},
                {"file": hex::encode(unknown.encode()), "expected": "unlocks", "why": "a slot of unknown protector type 0x7777 comes first and is skipped"},
                {"file": hex::encode(format1.encode()), "expected": "unlocks_needs_upgrade", "why": "format 1: no MAC; the reader upgrades it"},
                {"file": hex::encode(rotated.encode()), "expected": "unlocks", "root": hex::encode(rotated_keyring.current_root().expose_secret()), "why": "after a rotation: the slot's attested entry at epoch 0 and its entry at epoch 1"},
                {"file": hex::encode(renamed.encode()), "expected": "unlocks", "why": "format 3: slot 4444.. renamed 'paper copy in the drawer' (labels u16(1) || id || bytes16(label) after the keyring; the MAC covers bytes32(labels) after bytes32(keyring))"},
            ],
            "invalid": [
                {"file": hex::encode(file.encode()), "secret": hex::encode(b"0000000000000000000000000000000000000000000000000000000000000000"), "expected": "wrong_secret"},
                {"file": hex::encode(tampered.encode()), "expected": "tampered", "why": "slot name changed after attestation"},
                {"file": hex::encode(injected.encode()), "expected": "unvouched", "why": "a slot the MAC does not cover (added by someone without the root key)"},
                {"file": hex::encode(bad_mac.encode()), "expected": "keys_file", "why": "MAC bit flipped"},
                {"file": hex::encode(&label_edited), "expected": "keys_file", "why": "format 3 with its label edited ('drawer' -> 'garden')"},
                {"file": hex::encode(&low_order), "expected": "format", "why": "an all-zero (low-order) public key"},
                {"file": hex::encode(no_current_entry.encode()), "expected": "tampered", "why": "attested at epoch 0, current epoch 1, no entry for epoch 1", "detail": "no entry for the current epoch"},
                {"file": hex::encode(short_keyring.encode()), "expected": "tampered", "why": "keyring object opens but its count (2) is not the current epoch (1) and its length is 5 + 32", "detail": "keyring is malformed"},
                {"file": hex::encode(attested_above.encode()), "expected": "tampered", "why": "attested epoch (1) above the file's current epoch (0)", "detail": "attested epoch is newer than the file's epoch"},
                {"file": hex::encode(&file.encode()[..40]), "expected": "format", "why": "truncated"},
            ],
        }),
    );

    xwing_keyslot_vectors(dir, &keyring, &secret, &file);

    // Chunker: small parameters so the vector stays small.
    let chunker_key = hkdf_subkey(k.expose_secret(), &REPO_ID, labels::CHUNKER_KEY);
    let params = ChunkerParams {
        min: 256,
        avg_bits: 10,
        max: 4096,
    };
    let chunker = Chunker::new(&chunker_key, params);
    let input = input_bytes(1, 32 * 1024);
    let other_key = hkdf_subkey(root(0x12).expose_secret(), &REPO_ID, labels::CHUNKER_KEY);
    let other = Chunker::new(&other_key, params);
    write(
        dir,
        "chunker.json",
        json!({
            "description": "FastCDC with gear table = HKDF-Expand(chunker key, 'sealback 2026-11-25 gear table', 2048) as 256 big-endian u64; masks = top (avg_bits+2) / (avg_bits-2) bits. lengths = the input cut under chunker_key; lengths_under_another_key = the same input cut under another_chunker_key (the chunker key of root key 12..12, same repo id): a second known answer, and proof that boundaries depend on the key",
            "chunker_key": hex::encode(chunker_key.expose_secret()),
            "params": {"min": params.min, "avg_bits": params.avg_bits, "max": params.max},
            "input": hex::encode(&input),
            "lengths": chunker.split_all(&input),
            "another_chunker_key": hex::encode(other_key.expose_secret()),
            "lengths_under_another_key": other.split_all(&input),
        }),
    );

    // A tree.
    let tree = Tree {
        nodes: vec![
            Node {
                name: b"Media".to_vec(),
                mode: 0o755,
                mtime_s: 1_764_028_800,
                mtime_ns: 5,
                kind: NodeKind::Dir {
                    subtree: Id([0x66; 32]),
                },
            },
            Node {
                name: b"msgstore.db".to_vec(),
                mode: 0o600,
                mtime_s: 1_764_028_801,
                mtime_ns: 0,
                kind: NodeKind::File {
                    size: 4096,
                    flags: 1,
                    content: Content::Blobs(vec![Id([0x77; 32])]),
                },
            },
        ],
    };
    let mut unsorted = tree.clone();
    unsorted.nodes.reverse();
    let mut escape = tree.clone();
    escape.nodes[0].name = b"..".to_vec();
    // Names and symlink targets are bytes (SPEC §1, §11): Latin-1 "café", not UTF-8.
    let latin1 = Tree {
        nodes: vec![Node {
            name: b"caf\xe9".to_vec(),
            mode: 0o777,
            mtime_s: -1,
            mtime_ns: 250_000_000,
            kind: NodeKind::Symlink {
                target: b"\xff\xfe/notes".to_vec(),
            },
        }],
    };
    write(
        dir,
        "tree.json",
        json!({
            "valid": [
                {"encoded": hex::encode(tree.encode()), "nodes": 2, "expected": "ok"},
                {"encoded": hex::encode(latin1.encode()), "nodes": 1, "expected": "ok", "why": "a name and a symlink target that are not UTF-8 are kept as bytes; a time before 1970"},
            ],
            "invalid": [
                {"encoded": hex::encode(unsorted.encode()), "expected": "format", "why": "names not sorted"},
                {"encoded": hex::encode(escape.encode()), "expected": "format", "why": "a name of '..' would escape the restore target"},
            ],
        }),
    );
    // Locks.
    let shared = sealback_core::lock::LockRecord {
        kind: sealback_core::lock::LockKind::Shared,
        time_unix_ns: 1_764_028_800_000_000_123,
        hostname: "pixel-9".into(),
        pid: 4242,
        operation: "backup".into(),
    };
    let exclusive = sealback_core::lock::LockRecord {
        kind: sealback_core::lock::LockKind::Exclusive,
        operation: "prune".into(),
        ..shared.clone()
    };
    let mut unknown_kind = exclusive.encode();
    unknown_kind[1] = 3;
    let mut newer = shared.encode();
    newer[0] = 2;
    let short = shared.encode()[..20].to_vec();
    let lock_case = |r: &sealback_core::lock::LockRecord| {
        json!({
            "encoded": hex::encode(r.encode()),
            "exclusive": r.kind == sealback_core::lock::LockKind::Exclusive,
            "time_unix_ns": r.time_unix_ns, "hostname": r.hostname, "pid": r.pid,
            "operation": r.operation, "expected": "ok",
        })
    };
    write(
        dir,
        "lock.json",
        json!({
            "description": "lock body (SPEC §11a); stored as an object of type Lock (0x14) at locks/<id>",
            "valid": [lock_case(&shared), lock_case(&exclusive)],
            "invalid": [
                {"encoded": hex::encode(unknown_kind), "expected": "format", "why": "lock kind 3 is not defined"},
                {"encoded": hex::encode(newer), "expected": "format", "why": "version 2 needs a newer sealback"},
                {"encoded": hex::encode(short), "expected": "format", "why": "truncated"},
            ],
        }),
    );
    // Passkey (PRF) keyslots.
    let cred_random = [0x5a; 32];
    let prf_input = [0x6b; 32];
    let hmac_salt = sealback_core::passkey::webauthn_prf_salt(&prf_input);
    let prf_output = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&cred_random).unwrap();
        m.update(&hmac_salt);
        m.finalize().into_bytes().to_vec()
    };
    let params = sealback_core::passkey::PasskeyParams {
        credential_id: vec![0x7c; 16],
        rp_id: "localhost".into(),
        prf_salt: prf_input,
        input_rule: sealback_core::passkey::PrfInputRule::Salt,
    };
    // Version 2: the PRF input bound to the relying party id (the web UI's slots).
    let bound = sealback_core::passkey::PasskeyParams {
        credential_id: vec![0x7d; 16],
        rp_id: "sb-abcdefghijklmnop.localhost".into(),
        prf_salt: [0x6c; 32],
        input_rule: sealback_core::passkey::PrfInputRule::BoundToRpId,
    };
    let slot_salt = [0x8d; 32];
    let secret = sealback_core::ProtectorSecret::new(prf_output.clone());
    write(
        dir,
        "passkey.json",
        json!({
            "description": "PRF output = HMAC-SHA-256(CredRandom, SHA-256('WebAuthn PRF' || 0x00 || prf input)); the output is the protector secret of a passkey keyslot",
            "cred_random": hex::encode(cred_random),
            "prf_input": hex::encode(prf_input),
            "hmac_secret_salt": hex::encode(hmac_salt),
            "prf_output": hex::encode(&prf_output),
            "params": {"credential_id": hex::encode(&params.credential_id), "rp_id": params.rp_id, "encoded": hex::encode(params.encode())},
            "bound_params": {
                "description": "params version 2: prf input = SHA-256('sealback 2026-12-02 passkey PRF input' || 0x00 || bytes16(rp id) || salt)",
                "credential_id": hex::encode(&bound.credential_id), "rp_id": bound.rp_id, "salt": hex::encode(bound.prf_salt),
                "prf_input": hex::encode(bound.prf_input()), "encoded": hex::encode(bound.encode()),
            },
            "slot_salt": hex::encode(slot_salt),
            "slot_public_key": hex::encode(sealback_core::keyslot::slot_public_key(&secret, &slot_salt)),
        }),
    );
    // Vault keyslots (SPEC §7b, §7e): the vault id, and both slot types' parameters.
    let server_public_key = [0x5a; 32];
    let vault_id = sealback_core::vault::VaultId::of_server_key(&server_public_key);
    let password = sealback_core::vault::VaultParams::new("+15550100", server_public_key.to_vec());
    let legacy_password = sealback_core::vault::VaultParams {
        legacy_url: Some("https://vault.example.org".into()),
        ..password.clone()
    };
    write(
        dir,
        "vault_params.json",
        json!({
            "description": "key vault id = first 16 bytes of SHA-256('sealback 2026-12-02 vault id' || OPAQUE server public key); vault-password keyslot params (SPEC 7b): format 2 = u8(2) || bytes16(account) || bytes16(server public key), format 1 (read only) = u8(1) || bytes16(url) || bytes16(account) || bytes16(server public key); the URL of a format-1 slot is never connected to",
            "server_public_key": hex::encode(server_public_key),
            "vault_id": vault_id.to_hex(),
            "params": {"account": password.account, "encoded": hex::encode(password.encode())},
            "legacy_params": {"url": legacy_password.legacy_url, "account": legacy_password.account, "encoded": hex::encode(legacy_password.encode())},
            "invalid_params": [
                {"encoded": hex::encode({let mut e = password.encode(); e[0] = 3; e}), "why": "version 3 needs a newer sealback"},
                {"encoded": hex::encode({let mut e = password.encode(); e.push(0); e}), "why": "trailing byte"},
            ],
        }),
    );
    let vault_share = [0x9e; 32];
    let storage_share = [0xaf; 32];
    let vp = sealback_core::vault::VaultPasskeyParams {
        vault_id: Some(vault_id),
        legacy_url: None,
        account: "+15550100".into(),
        rp_id: "vault.example.org".into(),
        storage_share: zeroize::Zeroizing::new(storage_share),
    };
    let legacy_vp = sealback_core::vault::VaultPasskeyParams {
        vault_id: None,
        legacy_url: Some("https://vault.example.org".into()),
        ..vp.clone()
    };
    let vp_secret = sealback_core::vault::vault_passkey_secret(&vault_share, &storage_share);
    write(
        dir,
        "vault_passkey.json",
        json!({
            "description": "vault-passkey keyslot (SPEC 7e): params format 2 = u8(2) || vault id(16) || bytes16(account) || bytes16(rp id) || storage share(32); format 1 (read only) = u8(1) || bytes16(url) || bytes16(account) || bytes16(rp id) || storage share(32); secret = HKDF-SHA256(no salt, vault share || storage share, 'sealback 2026-11-26 vault passkey'), 32 bytes",
            "vault_share": hex::encode(vault_share),
            "storage_share": hex::encode(storage_share),
            "secret": hex::encode(vp_secret.expose_secret()),
            "params": {"vault_id": vault_id.to_hex(), "account": vp.account, "rp_id": vp.rp_id, "encoded": hex::encode(vp.encode())},
            "legacy_params": {"url": legacy_vp.legacy_url, "account": legacy_vp.account, "rp_id": legacy_vp.rp_id, "encoded": hex::encode(legacy_vp.encode())},
            "invalid_params": [
                {"encoded": hex::encode({let mut e = vp.encode(); e[0] = 3; e}), "why": "version 3 needs a newer sealback"},
                {"encoded": hex::encode({let e = vp.encode(); e[..e.len() - 1].to_vec()}), "why": "truncated storage share"},
            ],
        }),
    );
    packs(dir, &keyring);
    snapshots(dir);
    config(dir);
    content_list_file(dir, &keyring);
    passkey_unlock(dir, &keyring);
    vault_wrap(dir);
    index_cache(dir);
    println!("vectors written to {}", dir.display());
}

/// `pack.json` and `index.json`: a version 2 pack of three blobs (stored, compressed, random)
/// from a seeded generator, with every seed written out so a reader can recompute each
/// headerless object, and the index body that lists it.
fn packs(dir: &Path, keyring: &Keyring) {
    use sealback_core::index::IndexFile;
    use sealback_core::object::padme;
    use sealback_core::pack::{self, PackBuilder};
    let mut rng = ChaCha20Rng::from_seed([0x44; 32]);
    let pack_id = Id([0x55; 32]);
    let bodies: [(ObjectType, Vec<u8>, Compression); 3] = [
        (
            ObjectType::Tree,
            b"hello from sealback".to_vec(),
            Compression::None,
        ),
        (ObjectType::Data, b"page ".repeat(60), Compression::Zstd(3)),
        (
            ObjectType::ContentList,
            input_bytes(0x66, 1000),
            Compression::Zstd(3),
        ),
    ];
    let mut builder = PackBuilder::new();
    for (ty, body, compression) in &bodies {
        let id = keyring.content_id().blob_id(*ty, body);
        let s = pack::seal_blob(keyring, *ty, &id, body, *compression, &mut rng);
        builder.add(*ty, id, s.epoch, &s.bytes, body.len());
    }
    let (bytes, entries) = builder.finish(keyring, &pack_id, &mut rng);
    let seed_at = |offset: usize| hex::encode(&bytes[offset..offset + 32]);
    let blobs: Vec<Value> = entries
        .iter()
        .zip(&bodies)
        .map(|(e, (_, body, compression))| {
            json!({
                "type": e.ty as u8, "id": e.id.to_hex(), "epoch": e.epoch, "offset": e.offset,
                "length": e.length, "raw_length": e.raw_length, "body": hex::encode(body),
                "compression": if *compression == Compression::None { "none" } else { "zstd" },
                "seed": seed_at(e.offset as usize),
            })
        })
        .collect();
    let last = entries.last().unwrap();
    let header_start = (last.offset + last.length) as usize;
    let trailer_start = bytes.len() - pack::TRAILER_LEN;
    let flip = |i: usize| {
        let mut b = bytes.clone();
        b[i] ^= 1;
        hex::encode(b)
    };
    let mut future = bytes.clone();
    future[4] = 3;
    let padme_cases: Vec<Value> = [
        0usize, 1, 2, 9, 53, 100, 1000, 1025, 4149, 65_589, 1_048_629,
    ]
    .iter()
    .map(|&n| json!([n, padme(n)]))
    .collect();
    write(
        dir,
        "pack.json",
        json!({
            "description": "pack version 2 (SPEC 9): 'SBPK' || 02 || blobs || header || trailer, each a headerless object (SPEC 5.1): seed(32) || AES-256-GCM(HKDF(subkey(type, epoch), seed, 'sealback 2026-11-25 object key'), nonce 0, aad 'sealback object v1' || 02 || type || epoch(u32) || seed || object id) of encoding || u32(len) || stored || zero padding to a Padme length (blobs, header; not the 57-byte trailer). Header body = 02 || u32(n) || n x (type || id || u32 epoch || u32 offset || u32 length || u32 raw length), zstd level 3; trailer body = u32(header length), stored; both of type PackHeader 0x10 / PackTrailer 0x15 named by the pack id. Keys as in key_derivation.json (epoch 0).",
            "pack_id": pack_id.to_hex(),
            "pack": hex::encode(&bytes),
            "blobs": blobs,
            "header": {"offset": header_start, "length": trailer_start - header_start, "seed": seed_at(header_start)},
            "trailer": {"offset": trailer_start, "seed": seed_at(trailer_start)},
            "padme": padme_cases,
            "invalid": [
                {"pack": flip(10), "expected": "ok", "why": "a bit of a blob flipped: the header still reads; that blob does not open"},
                {"pack": flip(header_start + 40), "expected": "authentication", "why": "a bit of the header flipped"},
                {"pack": flip(bytes.len() - 1), "expected": "authentication", "why": "a bit of the trailer's tag flipped"},
                {"pack": hex::encode(&bytes[..bytes.len() - 1]), "expected": "authentication", "why": "truncated by one byte"},
                {"pack": hex::encode(&bytes[..40]), "expected": "format", "why": "shorter than a trailer"},
                {"pack": hex::encode(&future), "expected": "format", "why": "pack version 3"},
            ],
        }),
    );
    let index = IndexFile {
        packs: vec![(pack_id, entries)],
    };
    write(
        dir,
        "index.json",
        json!({
            "description": "index body version 2 (SPEC 10): 02 || u32(p) || p x (pack id || u8(pack version) || u32(n) || n x entry), entries as in pack.json's header",
            "body": hex::encode(index.encode()),
            "packs": [{"pack_id": pack_id.to_hex(), "version": 2, "entries": blobs_summary(&index)}],
        }),
    );
}

fn blobs_summary(index: &sealback_core::index::IndexFile) -> Vec<Value> {
    index.packs[0]
        .1
        .iter()
        .map(|e| json!({"type": e.ty as u8, "id": e.id.to_hex(), "epoch": e.epoch, "offset": e.offset, "length": e.length, "raw_length": e.raw_length}))
        .collect()
}

/// An object of type `ty`, epoch 0, sealed over a raw `payload` (encoding byte included), so
/// that vectors can hold payloads the reference writer never makes.
fn seal_payload(
    subkey: &sealback_core::secret::SubKey,
    ty: ObjectType,
    id: &Id,
    seed: [u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let mut header = vec![1, ty as u8, 0, 0, 0, 0];
    header.extend_from_slice(&seed);
    let key = hkdf_subkey(subkey.expose_secret(), &seed, labels::OBJECT_KEY);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose_secret()).unwrap());
    let aad = [labels::OBJECT_AAD, &header[..], &id.0[..]].concat();
    let mut buf = payload.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(aad),
        &mut buf,
    )
    .unwrap();
    [header, buf].concat()
}

/// The Damm quasigroup as a table, read back through `damm` (its first row is a permutation,
/// so `damm([a, d])` with `table[0][a] = i` is `table[i][d]`).
fn damm_table() -> Vec<Vec<u8>> {
    (0..10u8)
        .map(|i| {
            let a = (0..10u8).find(|&a| damm(&[a]) == i).unwrap();
            (0..10u8).map(|d| damm(&[a, d])).collect()
        })
        .collect()
}

/// `config.json` (SPEC §4).
fn config(dir: &Path) {
    use sealback_core::config::RepoConfig;
    let encoded = RepoConfig {
        repo_id: RepoId(REPO_ID),
    }
    .encode();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut e = encoded.clone();
        f(&mut e);
        hex::encode(e)
    };
    write(
        dir,
        "config.json",
        json!({
            "description": "config = 'SEALBACK' || u16(format version = 1) || repo_id(16), stored in clear at `config`",
            "valid": [{"repo_id": hex::encode(REPO_ID), "format_version": 1, "encoded": hex::encode(&encoded)}],
            "invalid": [
                {"encoded": with(&|e| e[9] = 2), "expected": "version", "why": "format version 2 needs a newer sealback"},
                {"encoded": with(&|e| e[0] = b's'), "expected": "format", "why": "not the magic 'SEALBACK'"},
                {"encoded": with(&|e| e.truncate(20)), "expected": "format", "why": "truncated repo id"},
                {"encoded": with(&|e| e.push(0)), "expected": "format", "why": "a byte after the repo id"},
            ],
        }),
    );
}

/// `content_list_file.json` (SPEC §11, content kind 1): 17 Data blobs (more than the 16 a node
/// lists directly), the sixth of which has an id ending in 00, so the list is cut after it.
fn content_list_file(dir: &Path, keyring: &Keyring) {
    const CUT_AT: usize = 5;
    let ids = keyring.content_id();
    let data: Vec<(Vec<u8>, Id)> = (0..17usize)
        .map(|i| {
            (0u32..)
                .map(|n| format!("chunk {i} variant {n}").into_bytes())
                .map(|b| {
                    let id = ids.blob_id(ObjectType::Data, &b);
                    (b, id)
                })
                .find(|(_, id)| (id.0[31] == 0) == (i == CUT_AT))
                .unwrap()
        })
        .collect();
    let list_bodies: Vec<Vec<u8>> = [&data[..=CUT_AT], &data[CUT_AT + 1..]]
        .iter()
        .map(|group| group.iter().flat_map(|(_, id)| id.0).collect())
        .collect();
    let lists: Vec<Id> = list_bodies
        .iter()
        .map(|b| ids.blob_id(ObjectType::ContentList, b))
        .collect();
    let size: usize = data.iter().map(|(b, _)| b.len()).sum();
    let tree = Tree {
        nodes: vec![Node {
            name: b"big.bin".to_vec(),
            mode: 0o644,
            mtime_s: 1_764_028_800,
            mtime_ns: 0,
            kind: NodeKind::File {
                size: size as u64,
                flags: 0,
                content: Content::Lists(lists.clone()),
            },
        }],
    };
    write(
        dir,
        "content_list_file.json",
        json!({
            "description": "a file of 17 Data blobs listed through ContentList blobs (content kind 1, SPEC 11): a list body is the concatenated 32-byte Data blob ids; the writer cuts a list after an id whose last byte is 00 (here the sixth) or at 1024 ids; blob ids = BLAKE3-keyed(content id key, type || body)",
            "content_id_key": hex::encode(hkdf_subkey(root(0x11).expose_secret(), &REPO_ID, labels::CONTENT_ID_KEY).expose_secret()),
            "data": data.iter().map(|(b, id)| json!({"body": hex::encode(b), "id": id.to_hex()})).collect::<Vec<_>>(),
            "lists": list_bodies.iter().zip(&lists).map(|(b, id)| json!({"body": hex::encode(b), "id": id.to_hex()})).collect::<Vec<_>>(),
            "tree": hex::encode(tree.encode()),
            "file_content": hex::encode(data.iter().flat_map(|(b, _)| b.clone()).collect::<Vec<u8>>()),
        }),
    );
}

/// The passkey part of `passkey.json`'s `unlock`: a keys file with one passkey (PRF) slot,
/// opened from the PRF output to the root key.
fn passkey_unlock(dir: &Path, keyring: &Keyring) {
    use hkdf::Hkdf;
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("passkey.json")).unwrap()).unwrap();
    let prf_output = hex::decode(v["prf_output"].as_str().unwrap()).unwrap();
    let slot_salt: [u8; 32] = hex::decode(v["slot_salt"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let params = hex::decode(v["params"]["encoded"].as_str().unwrap()).unwrap();
    let secret = sealback_core::ProtectorSecret::new(prf_output.clone());
    // A version-1 (X25519) slot, as before X-Wing: this vector is unchanged, and
    // keyslot_xwing.json covers the X-Wing derivation.
    let slot = KeySlot::enroll_x25519_with(
        keyring,
        SlotTemplate {
            protector_type: ProtectorType::PASSKEY_PRF,
            name: "phone passkey".into(),
            created_unix: 1_764_028_800,
            params,
        },
        &secret,
        SlotId([0x9a; 16]),
        slot_salt,
        &mut ChaCha20Rng::from_seed([0x0c; 32]),
    )
    .unwrap();
    let mut file = KeySlotFile::new(keyring);
    file.add(keyring, slot).unwrap();
    let mut okm = [0u8; 64];
    Hkdf::<sha2::Sha256>::new(Some(&slot_salt), &prf_output)
        .expand(labels::SLOT_KEYS, &mut okm)
        .unwrap();
    v["unlock"] = json!({
        "description": "a keys file (format 2) with one passkey slot (type 2, params above, slot salt above): the PRF output is the protector secret; slot keys = HKDF-SHA256(PRF output, slot salt, 'sealback 2026-11-25 slot keys') -> 64 bytes: the first 32 derive the HPKE key pair, the last 32 are the attestation key; HPKE OpenBase of the slot's entry gives the root key",
        "repo_id": hex::encode(REPO_ID),
        "file": hex::encode(file.encode()),
        "slot_keys_okm": hex::encode(okm),
        "attestation_key": hex::encode(&okm[32..]),
        "root_key": hex::encode(keyring.current_root().expose_secret()),
    });
    write(dir, "passkey.json", v);
}

/// `vault_wrap.json` (SPEC §7b): how a vault-password slot's secret is wrapped under the
/// OPAQUE export key. Computed here from the primitives; the vault client's tests check that
/// its own wrapping gives the same bytes.
fn vault_wrap(dir: &Path) {
    use hkdf::Hkdf;
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let export_key = input_bytes(0x70, 64);
    let secret = input_bytes(0x71, 32);
    let nonce = [0x72; 12];
    let account = "+15550100";
    let mut wrap_key = [0u8; 32];
    Hkdf::<sha2::Sha256>::new(None, &export_key)
        .expand(b"sealback 2026-11-25 vault wrap", &mut wrap_key)
        .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &wrap_key).unwrap());
    let mut buf = secret.clone();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(account.as_bytes()),
        &mut buf,
    )
    .unwrap();
    let wrapped = [&nonce[..], &buf[..]].concat();
    let mut flipped = wrapped.clone();
    flipped[20] ^= 1;
    write(
        dir,
        "vault_wrap.json",
        json!({
            "description": "vault-password protector (SPEC 7b): wrap key = HKDF-SHA256(ikm = OPAQUE export key (64 bytes), no salt, info 'sealback 2026-11-25 vault wrap') -> 32 bytes; wrapped = nonce(12) || AES-256-GCM(wrap key, nonce, aad = account as UTF-8, S) (32 + 16 bytes)",
            "export_key": hex::encode(&export_key),
            "account": account,
            "wrap_key": hex::encode(wrap_key),
            "secret": hex::encode(&secret),
            "nonce": hex::encode(nonce),
            "wrapped": hex::encode(&wrapped),
            "invalid": [
                {"wrapped": hex::encode(&flipped), "account": account, "why": "one bit of the ciphertext flipped"},
                {"wrapped": hex::encode(&wrapped), "account": "+15550101", "why": "another account (the account is the AAD)"},
                {"wrapped": hex::encode(&wrapped[..27]), "account": account, "why": "shorter than a nonce and a tag"},
            ],
        }),
    );
}

/// `snapshot.json` (SPEC 11: a manifest with a parent and one without, both time signs) and
/// `content_list.json` (a body of concatenated ids; an invalid length).
fn snapshots(dir: &Path) {
    use sealback_core::snapshot::{decode_content_list, Snapshot, Summary};
    let with_parent = Snapshot {
        time_unix_ns: 1_764_633_600_123_456_789,
        hostname: "pixel-9".into(),
        paths: vec!["/data/chats".into()],
        tree: Id([0x77; 32]),
        parent: Some(Id([0x78; 32])),
        tags: vec!["daily".into()],
        summary: Summary {
            files: 5,
            dirs: 2,
            bytes_read: 123_456,
            bytes_added: 7_890,
            blobs_added: 12,
        },
        left_out: vec![],
    };
    let videos_left_out = Snapshot {
        left_out: vec![
            "chats/media/video-0001.mp4".into(),
            "chats/media/video-0002.mp4".into(),
        ],
        ..with_parent.clone()
    };
    let first = Snapshot {
        time_unix_ns: -310_996_800_000_000_000,
        hostname: String::new(),
        paths: vec!["a".into(), "b".into()],
        parent: None,
        tags: vec![],
        ..with_parent.clone()
    };
    let case = |s: &Snapshot| {
        json!({
            "time_unix_ns": s.time_unix_ns, "hostname": s.hostname, "paths": s.paths,
            "tree": s.tree.to_hex(), "parent": s.parent.map(|p| p.to_hex()), "tags": s.tags,
            "summary": [s.summary.files, s.summary.dirs, s.summary.bytes_read, s.summary.bytes_added, s.summary.blobs_added],
            "left_out": s.left_out,
            "encoded": hex::encode(s.encode()),
        })
    };
    let mut newer = with_parent.encode();
    newer[0] = 3;
    let mut empty_left_out = with_parent.encode();
    empty_left_out[0] = 2;
    empty_left_out.extend_from_slice(&0u32.to_be_bytes());
    write(
        dir,
        "snapshot.json",
        json!({
            "description": "snapshot body (SPEC 11): 01 || i64 time || bytes16 hostname || u16 k || k x bytes16 path || tree id || u8 has parent [|| parent id] || u16 t || t x bytes16 tag || 5 x u64 summary (files, dirs, bytes read, bytes added, blobs added); version 02 (written only when files were left out by setting) adds u32 n (>= 1) || n x bytes16 path left out",
            "valid": [case(&with_parent), case(&first), case(&videos_left_out)],
            "invalid": [
                {"encoded": hex::encode(&newer), "why": "version 3 needs a newer sealback"},
                {"encoded": hex::encode(&empty_left_out), "why": "version 2 with no file left out (it would be written as version 1)"},
                {"encoded": hex::encode(&with_parent.encode()[..60]), "why": "truncated"},
            ],
        }),
    );
    let ids = [Id([0x01; 32]), Id([0x02; 32]), Id([0xff; 32])];
    let body: Vec<u8> = ids.iter().flat_map(|id| id.0).collect();
    assert_eq!(decode_content_list(&body).unwrap(), ids);
    write(
        dir,
        "content_list.json",
        json!({
            "description": "content list body (SPEC 11): the data blob ids of part of a file, 32 bytes each, concatenated; no count, no version (the blob's type says what it is)",
            "body": hex::encode(&body),
            "ids": ids.iter().map(|id| id.to_hex()).collect::<Vec<_>>(),
            "invalid": [{"body": hex::encode(&body[..95]), "why": "not a multiple of 32 bytes"}],
        }),
    );
}

fn recovery_template(name: &str) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name: name.into(),
        created_unix: 1_764_633_600,
        params: vec![],
    }
}

/// X-Wing keyslots (slot record version 2, SPEC §6.2): one slot; a file mixing the X25519 slot
/// of keyslot.json with an X-Wing slot, rotated; the X25519 slot moved to X-Wing by an unlock.
fn xwing_keyslot_vectors(
    dir: &Path,
    keyring: &Keyring,
    secret: &sealback_core::ProtectorSecret,
    x25519_file: &KeySlotFile,
) {
    let salt = [0x57; 32];
    let mut rng = ChaCha20Rng::from_seed([0x0c; 32]);
    let slot = KeySlot::enroll_with(
        keyring,
        recovery_template("paper"),
        secret,
        SlotId([0x47; 16]),
        salt,
        &mut rng,
    )
    .unwrap();
    let mut file = KeySlotFile::new(keyring);
    file.add(keyring, slot.clone()).unwrap();
    let other = KeySlot::enroll_with(
        keyring,
        recovery_template("laptop"),
        &sealback_core::ProtectorSecret::new(b"another secret".to_vec()),
        SlotId([0x48; 16]),
        [0x58; 32],
        &mut rng,
    )
    .unwrap();
    let mut mixed = x25519_file.clone();
    mixed.add(keyring, other).unwrap();
    let mut rotated = mixed.clone();
    let (rotated_keyring, _) = rotated
        .rotate(keyring, None, &mut ChaCha20Rng::from_seed([0x0d; 32]))
        .unwrap();
    let mut protector = sealback_core::recovery::RecoveryKeyProtector(
        RecoveryKey::parse(std::str::from_utf8(secret.expose_secret()).unwrap()).unwrap(),
    );
    let upgrade = rotated
        .unlock_and_upgrade(&mut protector, &mut ChaCha20Rng::from_seed([0x0e; 32]))
        .unwrap()
        .reattested
        .unwrap();
    let mut upgraded = rotated.clone();
    upgraded.replace_slot(&rotated_keyring, upgrade).unwrap();
    let invalid = xwing_invalid_files(&file);
    let entry = &slot.sealed[0];
    let mut info = labels::SLOT_ROOT_KEY.to_vec();
    info.extend_from_slice(&REPO_ID);
    info.extend_from_slice(&slot.id.0);
    info.extend_from_slice(&entry.epoch.to_be_bytes());
    let root = hex::encode(rotated_keyring.current_root().expose_secret());
    write(
        dir,
        "keyslot_xwing.json",
        json!({
            "description": "X-Wing keyslots (slot record version 2): HPKE(X-Wing = X25519 + ML-KEM-768, KEM id 0x647a; HKDF-SHA256; AES-256-GCM) base mode; okm = HKDF-SHA256(secret, slot salt, 'sealback 2026-12-02 slot x-wing keys') -> 64 bytes; key pair = X-Wing DeriveKeyPair(okm[0..32]) (draft-ietf-hpke-pq); attestation key = okm[32..64]; public key 1216 bytes, enc 1120 bytes (SPEC 6.2)",
            "protector_secret": hex::encode(secret.expose_secret()),
            "slot_salt": hex::encode(salt),
            "slot_public_key": hex::encode(&slot.public_key),
            "root_key": hex::encode(keyring.current_root().expose_secret()),
            "sealed": {
                "description": "the slot's sealed root key: HPKE OpenBase(sk, enc, info, aad = '', ct) gives root_key",
                "info": hex::encode(&info),
                "enc": hex::encode(&entry.enc),
                "ciphertext": hex::encode(entry.ciphertext),
            },
            "file": hex::encode(file.encode()),
            "valid": [
                {"file": hex::encode(file.encode()), "expected": "unlocks", "why": "one X-Wing recovery-key slot"},
                {"file": hex::encode(rotated.encode()), "expected": "unlocks", "root": root, "why": "the X25519 slot 4444.. of keyslot.json and an X-Wing slot 4848.. (another secret), rotated to epoch 1: each new entry sealed with its slot's own KEM"},
                {"file": hex::encode(upgraded.encode()), "expected": "unlocks", "root": root, "upgraded_slot": hex::encode([0x44; 16]), "why": "the rotated file after the recovery key unlocked it: slot 4444.. moved to X-Wing (same id and salt, the X-Wing key pair of the same secret, the epoch-1 root key sealed and attested)"},
            ],
            "invalid": invalid,
        }),
    );
}

/// Files with one damaged X-Wing slot: each refused when parsed or unlocked, never a panic.
fn xwing_invalid_files(file: &KeySlotFile) -> Value {
    let bytes = file.encode();
    let slot = &file.slots[0];
    let pk_at = bytes
        .windows(slot.public_key.len())
        .position(|w| w == slot.public_key)
        .unwrap();
    let x25519_at = pk_at + slot.public_key.len() - 32;
    let mut low_order = bytes.clone();
    low_order[x25519_at..x25519_at + 32].fill(0);
    // The first 12-bit coefficient of ML-KEM's t_hat set to 4095 >= q = 3329.
    let mut out_of_range = bytes.clone();
    out_of_range[pk_at] = 0xff;
    out_of_range[pk_at + 1] |= 0x0f;
    let enc = &slot.sealed[0].enc;
    let enc_at = bytes
        .windows(enc.len())
        .position(|w| w == &enc[..])
        .unwrap();
    let mut flipped_enc = bytes.clone();
    flipped_enc[enc_at + 100] ^= 1;
    let mut unrecorded = file.clone();
    unrecorded.slots[0].kem = SlotKem::X25519;
    json!([
        {"file": hex::encode(&low_order), "expected": "format", "why": "the X25519 part of the X-Wing public key is all zero (low order)"},
        {"file": hex::encode(&out_of_range), "expected": "format", "why": "the ML-KEM part of the public key fails the FIPS 203 modulus check"},
        {"file": hex::encode(&flipped_enc), "expected": "tampered", "why": "a bit of the X-Wing enc flipped (the attestation covers it)"},
        {"file": hex::encode(&bytes[..bytes.len() - 900]), "expected": "format", "why": "truncated inside the slot record"},
        {"file": hex::encode(unrecorded.encode()), "expected": "format", "why": "an X-Wing key in a version-1 (X25519) record: lengths do not parse"},
    ])
}

/// `index_cache.json`: a local index cache file (SPEC 10a) of three records in two packs, and
/// its MAC key.
fn index_cache(dir: &Path) {
    use sealback_core::index_cache::{self, Head, Record};
    use sealback_core::pack::BlobEntry;
    let keyring = Keyring::new(RepoId(REPO_ID), vec![root(0x11)]);
    let mut records: Vec<Record> = [
        (0x21u8, 0u32, Some(0u32)),
        (0x93, 1, None),
        (0xE0, 0, Some(3)),
    ]
    .iter()
    .enumerate()
    .map(|(i, (b, pack, epoch))| Record {
        pack: *pack,
        entry: BlobEntry {
            ty: [ObjectType::Data, ObjectType::Tree, ObjectType::ContentList][i],
            id: Id([*b; 32]),
            epoch: *epoch,
            offset: 5 + 100 * i as u32,
            length: 100,
            raw_length: 60 + i as u32,
        },
    })
    .collect();
    records.sort_by_key(|r| r.entry.id);
    let head = Head {
        repo_id: RepoId(REPO_ID),
        packs: vec![Id([0x55; 32]), Id([0x56; 32])],
        covered: vec![Id([0x77; 32])],
    };
    let file = index_cache::encode(&keyring, &head, &records);
    let key = index_cache::cache_key(&keyring);
    write(
        dir,
        "index_cache.json",
        json!({
            "description": "local index cache (SPEC 10a): 'SBIX' || 01 || repo id || u32(p) || p x pack id || u32(c) || c x index file id || n x record(56) || fanout (2^bits x u32) || u8(bits) || u64(n) || BLAKE3-keyed(mac key, all before). record = id || type || has epoch || 00 00 || u32 pack number || u32 epoch || u32 offset || u32 length || u32 raw length. mac key = HKDF-SHA256(genesis root key, salt = repo id, info = label)",
            "repo_id": hex::encode(REPO_ID),
            "root_key": hex::encode(root(0x11).expose_secret()),
            "label": String::from_utf8_lossy(labels::INDEX_CACHE_MAC),
            "mac_key": hex::encode(key.expose_secret()),
            "packs": head.packs.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
            "covered": head.covered.iter().map(|c| c.to_hex()).collect::<Vec<_>>(),
            "records": records.iter().map(|r| json!({
                "pack": r.pack, "type": r.entry.ty as u8, "id": r.entry.id.to_hex(),
                "epoch": r.entry.epoch, "offset": r.entry.offset, "length": r.entry.length,
                "raw_length": r.entry.raw_length,
            })).collect::<Vec<_>>(),
            "file": hex::encode(&file),
        }),
    );
}
