//! The realm password (SPEC §7f) in the CLI: the realms file, `key add realm-password`,
//! unlocking with it, and what `key list` shows of it.
//!
//! The realms file is this device's configuration (never the drive's):
//!
//! ```toml
//! threshold = 2            # realms needed to unlock (default 2)
//! [[realm]]
//! id = "…32 hex…"          # the realm's id (its vault id, from its /v1/info)
//! url = "https://realm-1.example.org"
//! key = "…"                # its share key (base64url or hex, from its /v1/info)
//! proof_file = "…"         # optional: the account proof for this realm (else the global one)
//! ```

use crate::output::CliError;
use crate::settings::Settings;
use crate::unlock;
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotId, SlotTemplate};
use sealback_proto::proof::Scope;
use sealback_tvr::{Argon2Cost, NewSlot, TvrParams};
use sealback_vault_client::realms::{
    realm_slots, RealmEndpoint, RealmPasswordProtector, Realms, DEFAULT_REALM_TIMEOUT,
};
use sealback_vault_client::VaultId;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealmsFile {
    threshold: Option<u8>,
    #[serde(default)]
    realm: Vec<RealmEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealmEntry {
    id: String,
    url: String,
    key: String,
    proof_file: Option<PathBuf>,
}

/// The configured realms.
struct Configured {
    threshold: u8,
    endpoints: Vec<RealmEndpoint>,
    proofs: Vec<(VaultId, String)>,
}

fn load(settings: &Settings) -> Result<Configured, CliError> {
    let path = settings.realms.as_deref().ok_or_else(|| {
        CliError::Usage(
            "a realm password needs this device's realms file: --realms FILE or SEALBACK_REALMS"
                .into(),
        )
    })?;
    parse(path, settings.account_proof())
}

fn parse(path: &Path, default_proof: &str) -> Result<Configured, CliError> {
    let bad = |why: String| CliError::Usage(format!("realms file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let file: RealmsFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut endpoints = Vec::new();
    let mut proofs = Vec::new();
    for r in file.realm {
        let id = sealback_proto::proof::parse_vault_id(&r.id)
            .ok_or_else(|| bad(format!("realm id {:?} is not 32 hex digits", r.id)))?;
        let key = hex::decode(r.key.trim())
            .ok()
            .or_else(|| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(r.key.trim())
                    .ok()
            })
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| {
                bad(format!(
                    "realm {id}: key is not 32 bytes in hex or base64url"
                ))
            })?;
        let proof = match &r.proof_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| bad(format!("realm {id}: proof file {}: {e}", p.display())))?
                .trim()
                .to_string(),
            None => default_proof.to_string(),
        };
        proofs.push((id, proof));
        endpoints.push(RealmEndpoint {
            id,
            url: r.url,
            share_key: key,
        });
    }
    Ok(Configured {
        threshold: file.threshold.unwrap_or(sealback_tvr::DEFAULT_THRESHOLD),
        endpoints,
        proofs,
    })
}

impl Configured {
    fn realms(&self) -> Result<Realms, CliError> {
        Realms::new(self.endpoints.clone(), DEFAULT_REALM_TIMEOUT)
            .map_err(|e| unlock::vault_error(e, None))
    }

    fn proof(&self, id: VaultId) -> String {
        self.proofs
            .iter()
            .find(|(r, _)| *r == id)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }
}

/// `key add realm-password`: registers at every configured realm, then adds the slot.
pub async fn add(settings: &Settings, name: &str) -> Result<(), CliError> {
    let configured = load(settings)?;
    let account = settings.account.clone().ok_or_else(|| {
        CliError::Usage("a realm password needs an account: --account or SEALBACK_ACCOUNT".into())
    })?;
    let mut repo = crate::commands::open(settings).await?;
    if !realm_slots(repo.keyslots()).is_empty() {
        return Err(CliError::Usage(
            "this backup already has a realm password; remove it first (`sealback key remove ID`)"
                .into(),
        ));
    }
    let password = unlock::read_password(true)?;
    let mut slot = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut sealback_engine::os_rng(), &mut slot);
    let slot = SlotId(slot);
    let new = NewSlot {
        repo: repo.config().repo_id,
        slot,
        account: &account,
        threshold: configured.threshold,
        limit: sealback_tvr::DEFAULT_LIMIT,
        argon2: Argon2Cost::DEFAULT,
    };
    let proofs = |id: VaultId, _scope: Scope| configured.proof(id);
    let (params, secret) = configured
        .realms()?
        .register(&new, &password, &proofs)
        .await
        .map_err(|e| unlock::vault_error(e, None))?;
    let template = SlotTemplate {
        protector_type: ProtectorType::THRESHOLD_PASSWORD,
        name: name.into(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        params: params.encode(),
    };
    let id = repo.add_slot_as(slot, template, &secret).await?;
    if settings.json {
        println!(
            "{}",
            json!({"id": id.to_hex(), "type": "realm-password", "name": name, "account": account, "realms": describe_params(&params)})
        );
    } else {
        println!(
            "Added realm password {name:?} ({}): any {} of these {} realms unlock it: {}.",
            id.to_hex(),
            params.threshold,
            params.realms.len(),
            configured
                .endpoints
                .iter()
                .map(|e| e.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "Each realm allows {} evaluations, then destroys its share: at most {} passwords can be tried even if one realm cheats.",
            params.limit,
            guess_bound(&params, 1)
        );
    }
    Ok(())
}

/// `⌊(n − m)·L / (t − m)⌋` (SPEC §7f.4), for `m < t`.
fn guess_bound(p: &TvrParams, m: usize) -> usize {
    let (n, t, l) = (
        p.realms.len(),
        usize::from(p.threshold),
        usize::from(p.limit),
    );
    if m >= t {
        return usize::MAX;
    }
    (n - m) * l / (t - m)
}

/// Whether the backup has a realm password.
pub fn has_slots(keys: &KeySlotFile) -> bool {
    !realm_slots(keys).is_empty()
}

/// Recovers the realm password's secret (the password from SEALBACK_PASSWORD or a prompt).
pub async fn unlock(
    settings: &Settings,
    keys: &KeySlotFile,
) -> Result<RealmPasswordProtector, CliError> {
    let configured = load(settings)?;
    let password = unlock::read_password(false)?;
    let proofs = |id: VaultId, _scope: Scope| configured.proof(id);
    let (protector, outcome) = RealmPasswordProtector::unlock(
        keys,
        settings.account.as_deref(),
        &configured.realms()?,
        &password,
        &proofs,
    )
    .await
    .map_err(|e| unlock::vault_error(e, Some(keys)))?;
    for id in &outcome.excluded {
        eprintln!("warning: realm {id} answered with an evaluation it could not prove; it was not used and was sent nothing");
    }
    for (id, why) in &outcome.unavailable {
        tracing::info!(realm = %id, why = %why, "realm not used for this unlock");
    }
    Ok(protector)
}

fn describe_params(p: &TvrParams) -> Value {
    json!({
        "account": p.account,
        "threshold": p.threshold,
        "evaluations_per_realm": p.limit,
        "realm_ids": p.realms.iter().map(|r| r.id.to_hex()).collect::<Vec<_>>(),
        "max_password_tests_one_realm_cheating": guess_bound(p, 1),
    })
}

/// What `key list` shows of a realm-password slot.
pub fn describe(slot: &KeySlot) -> Option<Value> {
    if slot.protector_type != ProtectorType::THRESHOLD_PASSWORD {
        return None;
    }
    TvrParams::decode(&slot.params)
        .ok()
        .map(|p| describe_params(&p))
}

/// One line for the table of `key list`.
pub fn describe_line(v: &Value) -> String {
    let ids: Vec<&str> = v["realm_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "any {} of {} realms ({}), account {}",
        v["threshold"],
        ids.len(),
        ids.join(", "),
        v["account"].as_str().unwrap_or("")
    )
}
