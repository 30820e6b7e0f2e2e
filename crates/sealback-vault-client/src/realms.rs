//! The client of threshold vault realms (tvr1, SPEC §7f): registration at every realm of the
//! configured set (fails closed unless all acknowledge), recovery from `t` of them (another is
//! asked for each that fails, a realm whose proof fails is excluded and never gets a tag),
//! confirmation to every realm reachable after a success, and the [`RealmPasswordProtector`].
//!
//! The realm set (ids, addresses, share keys) comes from the client's configuration only: a
//! slot names realms by id, and a slot realm this device is not configured for is never asked.

use crate::{Password, VaultClient, VaultError};
use rand08::rngs::OsRng;
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotId};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::vault::VaultId;
use sealback_core::{ProtectorSecret, RepoId};
use sealback_proto as proto;
use sealback_tvr::{Evaluation, NewSlot, Outcome, Recovery, Registration, TvrError, TvrParams};
use std::time::Duration;

/// One realm as this device's configuration names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmEndpoint {
    /// The realm's id (its vault id: the audience its account proofs must name).
    pub id: VaultId,
    /// Where it answers (`https://`, or `http://` on loopback).
    pub url: String,
    /// The X25519 key shares are sealed to (pinned here, compared with its `/v1/info`).
    pub share_key: [u8; 32],
}

/// Where an account proof for each realm comes from: the operator issues one per realm (its
/// audience is that realm), so that no realm can replay a proof at another.
pub type ProofSource<'a> = &'a (dyn Fn(VaultId, proto::proof::Scope) -> String + Sync);

/// How long one realm may take to answer before the next one is asked instead.
pub const DEFAULT_REALM_TIMEOUT: Duration = Duration::from_secs(5);

/// The configured realm set.
pub struct Realms {
    endpoints: Vec<(RealmEndpoint, VaultClient)>,
}

/// A successful recovery: the slot's secret, and what happened at each realm.
pub struct RealmUnlock {
    /// The slot's protector secret.
    pub secret: ProtectorSecret,
    /// Realms that accepted their unlock tag (their counts are reset).
    pub confirmed: Vec<VaultId>,
    /// Realms whose evaluation proof failed: excluded, sent no tag.
    pub excluded: Vec<VaultId>,
    /// Realms that could not be reached or refused.
    pub unavailable: Vec<(VaultId, String)>,
}

impl core::fmt::Debug for RealmUnlock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RealmUnlock")
            .field("secret", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .field("excluded", &self.excluded)
            .field("unavailable", &self.unavailable)
            .finish()
    }
}

fn tvr(e: TvrError) -> VaultError {
    VaultError::Realms(e.to_string())
}

impl Realms {
    /// A client for each configured realm, each request limited to `timeout`.
    pub fn new(endpoints: Vec<RealmEndpoint>, timeout: Duration) -> Result<Self, VaultError> {
        let endpoints = endpoints
            .into_iter()
            .map(|e| Ok((VaultClient::new(&e.url)?.with_timeout(timeout), e)))
            .collect::<Result<Vec<_>, VaultError>>()?
            .into_iter()
            .map(|(c, e)| (e, c))
            .collect();
        Ok(Self { endpoints })
    }

    /// The configured realms' ids.
    pub fn ids(&self) -> Vec<VaultId> {
        self.endpoints.iter().map(|(e, _)| e.id).collect()
    }

    fn client(&self, id: VaultId) -> Option<&VaultClient> {
        self.endpoints
            .iter()
            .find(|(e, _)| e.id == id)
            .map(|(_, c)| c)
    }

    /// Checks that every configured realm answers as configured (id, share key) and allows
    /// `limit` evaluations. Registration refuses to start otherwise.
    pub async fn check(&self, limit: u16) -> Result<(), VaultError> {
        for (e, c) in &self.endpoints {
            let info = c.info().await?;
            let Some(realm) = info.realm else {
                return Err(VaultError::Realms(format!(
                    "{} is not a threshold realm",
                    e.url
                )));
            };
            if realm.realm_id != e.id.to_hex() || realm.realm_key != e.share_key {
                return Err(VaultError::Realms(format!(
                    "the realm at {} is not the one configured (id {}): refusing to send it a key share",
                    e.url, e.id
                )));
            }
            if realm.evaluation_limit != limit {
                return Err(VaultError::Realms(format!(
                    "the realm at {} allows {} evaluations, not the {limit} this password would be promised",
                    e.url, realm.evaluation_limit
                )));
            }
        }
        Ok(())
    }

    /// Registers `password` at every configured realm (in configuration order) and returns
    /// the slot's params and secret, or fails (nothing to write) unless every realm stored its
    /// share.
    pub async fn register(
        &self,
        new: &NewSlot<'_>,
        password: &Password,
        proofs: ProofSource<'_>,
    ) -> Result<(TvrParams, ProtectorSecret), VaultError> {
        self.check(new.limit).await?;
        let realms: Vec<sealback_tvr::Realm> = self
            .endpoints
            .iter()
            .map(|(e, _)| sealback_tvr::Realm {
                id: e.id,
                share_key: e.share_key,
            })
            .collect();
        let (repo, slot, account) = (new.repo, new.slot, new.account.to_string());
        let (threshold, limit, argon2) = (new.threshold, new.limit, new.argon2);
        let pw = password.clone_secret();
        let registration = tokio::task::spawn_blocking(move || {
            let new = NewSlot {
                repo,
                slot,
                account: &account,
                threshold,
                limit,
                argon2,
            };
            Registration::start(&new, pw.as_bytes(), &realms, &mut OsRng)
        })
        .await
        .map_err(|e| VaultError::Protocol(format!("key stretching task: {e}")))?
        .map_err(tvr)?;
        let sends = registration.requests().iter().map(|r| {
            let client = self.client(r.realm).expect("a configured realm");
            let body = proto::TvrRegister {
                account: new.account.into(),
                proof: proofs(r.realm, proto::proof::Scope::Register),
                index: r.index,
                threshold: r.threshold,
                limit: r.limit,
                version: r.version.to_vec(),
                enc: r.enc.clone(),
                sealed: r.sealed.clone(),
            };
            let id = r.realm;
            async move {
                let sent: Result<Option<serde_json::Value>, VaultError> =
                    client.post("/v1/tvr/register", &body).await;
                (id, sent)
            }
        });
        let mut acknowledged = Vec::new();
        let mut failures = Vec::new();
        for (id, sent) in futures::future::join_all(sends).await {
            match sent {
                Ok(_) => acknowledged.push(id),
                Err(e) => failures.push(format!("realm {id}: {e}")),
            }
        }
        registration.finish(&acknowledged).map_err(|e| match e {
            TvrError::NotAllAcknowledged { .. } => VaultError::Realms(format!(
                "not every realm stored its key share, so the password was not added ({}); try again when all realms answer",
                failures.join("; ")
            )),
            other => tvr(other),
        })
    }

    /// Recovers a slot's secret from `t` realms and confirms to every reachable one.
    pub async fn unlock(
        &self,
        params: &TvrParams,
        repo: RepoId,
        slot: SlotId,
        password: &Password,
        proofs: ProofSource<'_>,
    ) -> Result<RealmUnlock, VaultError> {
        let configured = self.ids();
        let p = params.clone();
        let pw = password.clone_secret();
        let mut recovery = tokio::task::spawn_blocking(move || {
            Recovery::start(p, repo, slot, pw.as_bytes(), &configured, &mut OsRng)
        })
        .await
        .map_err(|e| VaultError::Protocol(format!("key stretching task: {e}")))?
        .map_err(tvr)?;
        let blinded = recovery.blinded_element();
        let mut queue: std::collections::VecDeque<VaultId> =
            recovery.realms().iter().copied().collect();
        let mut running = tokio::task::JoinSet::new();
        let mut sessions: Vec<(VaultId, String)> = Vec::new();
        let mut excluded = Vec::new();
        let mut unavailable: Vec<(VaultId, String)> = Vec::new();
        let mut locked = 0usize;
        let t = usize::from(params.threshold);
        let ask = |running: &mut tokio::task::JoinSet<_>, id: VaultId| {
            let client = self.client(id).expect("a configured realm").clone();
            let body = proto::TvrEvaluate {
                account: params.account.clone(),
                proof: proofs(id, proto::proof::Scope::Login),
                version: params.version.to_vec(),
                blinded: blinded.to_vec(),
            };
            running.spawn(async move {
                let r: Result<Option<proto::TvrEvaluateReply>, VaultError> =
                    client.post("/v1/tvr/evaluate", &body).await;
                (id, r)
            });
        };
        while running.len() < t {
            match queue.pop_front() {
                Some(id) => ask(&mut running, id),
                None => break,
            }
        }
        while let Some(done) = running.join_next().await {
            let (id, reply) = done.map_err(|e| VaultError::Protocol(format!("realm task: {e}")))?;
            // A reply that is no evaluation (empty, wrong lengths) is treated like a failed
            // proof: the realm is excluded and gets no tag.
            let answer = reply.map(|r| r.and_then(|r| Some((parse_evaluation(&r)?, r))));
            let accepted = match answer {
                Ok(Some((answer, r))) => match recovery.accept(id, &answer, r.guesses_left) {
                    Ok(()) => {
                        sessions.push((id, r.session));
                        true
                    }
                    Err(e) => {
                        tracing::warn!(realm = %id, "realm excluded: its evaluation proof failed");
                        excluded.push(id);
                        unavailable.push((id, e.to_string()));
                        false
                    }
                },
                Ok(None) => {
                    tracing::warn!(realm = %id, "realm excluded: its reply is not an evaluation");
                    recovery.reject(id);
                    excluded.push(id);
                    unavailable.push((id, "its reply is not an evaluation".into()));
                    false
                }
                Err(e) => {
                    if matches!(e, VaultError::Locked) {
                        locked += 1;
                    }
                    unavailable.push((id, e.to_string()));
                    false
                }
            };
            if !accepted && !recovery.complete() {
                if let Some(next) = queue.pop_front() {
                    ask(&mut running, next);
                }
            }
            if recovery.complete() {
                break;
            }
        }
        running.abort_all();
        let n = params.realms.len();
        match recovery.finish() {
            Outcome::Unlocked {
                secret,
                confirmations,
            } => {
                let confirms = confirmations.iter().filter_map(|(id, tag)| {
                    let client = self.client(*id)?;
                    let session = sessions
                        .iter()
                        .find(|(s, _)| s == id)
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default();
                    let body = proto::TvrConfirm {
                        account: params.account.clone(),
                        proof: proofs(*id, proto::proof::Scope::Login),
                        version: params.version.to_vec(),
                        tag: tag.to_vec(),
                        session,
                    };
                    let id = *id;
                    Some(async move {
                        let r: Result<Option<serde_json::Value>, VaultError> =
                            client.post("/v1/tvr/confirm", &body).await;
                        (id, r)
                    })
                });
                let mut confirmed = Vec::new();
                for (id, r) in futures::future::join_all(confirms).await {
                    match r {
                        Ok(_) => confirmed.push(id),
                        Err(e) => {
                            tracing::warn!(realm = %id, error = %e, "realm did not take its unlock tag");
                        }
                    }
                }
                Ok(RealmUnlock {
                    secret,
                    confirmed,
                    excluded,
                    unavailable,
                })
            }
            Outcome::WrongPassword { attempts_left } => Err(VaultError::WrongPassword {
                remaining: attempts_left,
            }),
            Outcome::NotEnoughRealms { verified, needed } => {
                if locked > n - t {
                    return Err(VaultError::Locked);
                }
                // A realm holding another registration than this slot's (or none) answers like
                // for an unknown account; its proof fails. When too many do, no retry helps.
                if excluded.len() > n - t {
                    return Err(VaultError::Realms(format!(
                        "{} of the {n} realms do not hold the registration this backup's password slot names (the password was changed on another device, the realms lost it, or the backup's key data on the drive was changed), so the password could not be checked; do not retry: unlock with another key (passkey or recovery key) and set the password again",
                        excluded.len()
                    )));
                }
                let detail: Vec<String> = unavailable
                    .iter()
                    .map(|(id, why)| format!("realm {id}: {why}"))
                    .collect();
                Err(VaultError::Realms(format!(
                    "only {verified} of the {needed} realms this password needs answered ({}); nothing was changed: try again when more realms are reachable",
                    detail.join("; ")
                )))
            }
        }
    }
}

fn parse_evaluation(r: &proto::TvrEvaluateReply) -> Option<Evaluation> {
    Some(Evaluation {
        element: r.evaluated.as_slice().try_into().ok()?,
        proof: r.proof.as_slice().try_into().ok()?,
    })
}

/// The threshold-password slots of a keys file with their params.
pub fn realm_slots(file: &KeySlotFile) -> Vec<(&KeySlot, TvrParams)> {
    file.slots
        .iter()
        .filter(|s| s.protector_type == ProtectorType::THRESHOLD_PASSWORD)
        .filter_map(|s| TvrParams::decode(&s.params).ok().map(|p| (s, p)))
        .collect()
}

/// The secret recovered from the realms for one slot; it opens that slot only.
pub struct RealmPasswordProtector {
    slot: SlotId,
    secret: ProtectorSecret,
}

impl RealmPasswordProtector {
    /// Recovers the secret of the first threshold-password slot of `account` (any account when
    /// `None`) from the configured `realms`.
    pub async fn unlock(
        file: &KeySlotFile,
        account: Option<&str>,
        realms: &Realms,
        password: &Password,
        proofs: ProofSource<'_>,
    ) -> Result<(Self, RealmUnlock), VaultError> {
        let slots = realm_slots(file);
        let (slot, params) = slots
            .iter()
            .find(|(_, p)| account.is_none_or(|a| a == p.account))
            .ok_or_else(|| {
                VaultError::Realms("this backup has no realm password for that account".into())
            })?;
        let unlock = realms
            .unlock(params, file.repo_id, slot.id, password, proofs)
            .await?;
        let secret = ProtectorSecret::new(unlock.secret.expose_secret().to_vec());
        Ok((
            Self {
                slot: slot.id,
                secret,
            },
            unlock,
        ))
    }
}

impl Protector for RealmPasswordProtector {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::THRESHOLD_PASSWORD
    }
    fn secret_for(&mut self, slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        Ok((slot.id == self.slot)
            .then(|| ProtectorSecret::new(self.secret.expose_secret().to_vec())))
    }
}
