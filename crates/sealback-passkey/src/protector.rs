//! The keyslot side of passkeys: which slots a passkey may open, and the [`Protector`] that
//! hands the core a PRF output.

use crate::{PasskeyError, PrfAssertion, PrfAuthenticator};
use rand_core::CryptoRng;
use sealback_core::keyslot::{KeySlot, KeySlotFile, ProtectorType, SlotTemplate};
use sealback_core::passkey::{bound_prf_input, PasskeyParams, PrfInputRule};
use sealback_core::protector::{Protector, ProtectorError};
use sealback_core::ProtectorSecret;

/// The passkey slots of a keyslot file with their parameters (slots whose parameters do not
/// parse are skipped, like slots of an unknown type).
pub fn passkey_slots(file: &KeySlotFile) -> Vec<(&KeySlot, PasskeyParams)> {
    file.slots
        .iter()
        .filter(|s| s.protector_type == ProtectorType::PASSKEY_PRF)
        .filter_map(|s| PasskeyParams::decode(&s.params).ok().map(|p| (s, p)))
        .collect()
}

/// The PRF output of the one credential the authenticator used. It unlocks that credential's
/// slot and declines every other.
pub struct PasskeyProtector {
    credential_id: Vec<u8>,
    output: ProtectorSecret,
}

impl PasskeyProtector {
    /// Runs one assertion over every passkey slot of `file` (grouped by relying party: the
    /// first party that has slots is asked) and keeps the result.
    pub async fn assert(
        file: &KeySlotFile,
        authenticator: &mut impl PrfAuthenticator,
    ) -> Result<Self, PasskeyError> {
        let slots = passkey_slots(file);
        let Some((_, first)) = slots.first() else {
            return Err(PasskeyError::NoCredential);
        };
        let rp_id = first.rp_id.clone();
        let offered: Vec<(Vec<u8>, [u8; 32])> = slots
            .iter()
            .filter(|(_, p)| p.rp_id == rp_id)
            .map(|(_, p)| (p.credential_id.clone(), p.prf_input()))
            .collect();
        let a = authenticator.get_prf(&rp_id, &offered).await?;
        Ok(Self {
            credential_id: a.credential_id,
            output: a.prf_output,
        })
    }

    /// A protector from an assertion made elsewhere (the web UI's browser ceremony hands the
    /// PRF output of the credential the person used).
    pub fn from_assertion(assertion: PrfAssertion) -> Self {
        Self {
            credential_id: assertion.credential_id,
            output: assertion.prf_output,
        }
    }

    /// The credential that was used (to record when it was last used).
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }
}

impl Protector for PasskeyProtector {
    fn protector_type(&self) -> ProtectorType {
        ProtectorType::PASSKEY_PRF
    }

    fn secret_for(&mut self, slot: &KeySlot) -> Result<Option<ProtectorSecret>, ProtectorError> {
        let Ok(params) = PasskeyParams::decode(&slot.params) else {
            return Ok(None);
        };
        if params.credential_id != self.credential_id {
            return Ok(None);
        }
        Ok(Some(ProtectorSecret::new(
            self.output.expose_secret().to_vec(),
        )))
    }
}

/// Creates a passkey and returns what a new keyslot needs: its template and its secret.
pub async fn enroll_template(
    authenticator: &mut impl PrfAuthenticator,
    rp_id: &str,
    user_name: &str,
    slot_name: String,
    created_unix: u64,
    rng: &mut impl CryptoRng,
) -> Result<(SlotTemplate, ProtectorSecret), PasskeyError> {
    let mut prf_salt = [0u8; 32];
    rng.fill_bytes(&mut prf_salt);
    let prf_input = bound_prf_input(rp_id, &prf_salt);
    let created = authenticator.create(rp_id, user_name, &prf_input).await?;
    let params = PasskeyParams {
        credential_id: created.credential_id,
        rp_id: rp_id.to_string(),
        prf_salt,
        input_rule: PrfInputRule::BoundToRpId,
    };
    Ok((
        passkey_template(&params, slot_name, created_unix),
        created.prf_output,
    ))
}

/// The keyslot template of a passkey that was created elsewhere (in a browser).
pub fn passkey_template(
    params: &PasskeyParams,
    slot_name: String,
    created_unix: u64,
) -> SlotTemplate {
    SlotTemplate {
        protector_type: ProtectorType::PASSKEY_PRF,
        name: slot_name,
        created_unix,
        params: params.encode(),
    }
}
