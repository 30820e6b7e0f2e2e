//! The protocol sessions: registration (client deals shares), a realm's side (open a sealed
//! share, evaluate with a DLEQ proof, check a tag) and recovery (blind, verify each realm's
//! proof against its `P_i`, combine, finalize, compare `C`). Each client session consumes
//! itself, so a registration cannot release its secret twice and a recovery cannot be
//! finished with unverified answers.

use crate::derive::{self, Stretched};
use crate::params::{check_shape, Argon2Cost, SlotRealm, TvrParams};
use crate::shamir;
use crate::TvrError;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand08::{CryptoRng, RngCore};
use rand_core::SeedableRng;
use sealback_core::codec::{Reader, Writer};
use sealback_core::keyslot::SlotId;
use sealback_core::vault::VaultId;
use sealback_core::{ProtectorSecret, RepoId};
use subtle::ConstantTimeEq;
use voprf::{
    BlindedElement, EvaluationElement, OprfClient, Proof, Ristretto255, VoprfClient, VoprfServer,
};
use zeroize::Zeroizing;

/// A realm as the client's configuration knows it: its id (the audience of its account proofs)
/// and the X25519 key its key shares are sealed to. Never read from the drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Realm {
    /// The realm's id.
    pub id: VaultId,
    /// Its HPKE (DHKEM(X25519, HKDF-SHA256)) public key.
    pub share_key: [u8; 32],
}

/// What a new slot is for.
#[derive(Clone, Copy, Debug)]
pub struct NewSlot<'a> {
    /// The repository (bound into the Argon2 salt).
    pub repo: RepoId,
    /// The slot's id (bound into the Argon2 salt).
    pub slot: SlotId,
    /// The account at every realm.
    pub account: &'a str,
    /// Realms needed to recover.
    pub threshold: u8,
    /// Evaluations each realm allows.
    pub limit: u16,
    /// The password stretch.
    pub argon2: Argon2Cost,
}

/// The default threshold (2 of 3 realms).
pub const DEFAULT_THRESHOLD: u8 = 2;
/// The default per-realm limit: with 3 realms, threshold 2 and one realm that rolls its
/// counter back or leaks its share, `⌊(3−1)·5/(2−1)⌋ = 10` password tests (SPEC §7f.4).
pub const DEFAULT_LIMIT: u16 = 5;

/// The random choices of a registration (explicit so that vectors can fix them).
pub struct Dealing {
    /// The registration's version `v`.
    pub version: [u8; 16],
    /// The OPRF key `k` (non-zero).
    pub key: Zeroizing<Scalar>,
    /// The polynomial's higher coefficients (`t − 1`).
    pub coefficients: Vec<Zeroizing<Scalar>>,
    /// Seeds the HPKE ephemeral keys.
    pub hpke_seed: Zeroizing<[u8; 32]>,
}

impl Dealing {
    /// Fresh random choices for a threshold of `t`.
    pub fn random(t: u8, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut version = [0u8; 16];
        rng.fill_bytes(&mut version);
        let mut hpke_seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut hpke_seed[..]);
        Self {
            version,
            key: Zeroizing::new(nonzero_scalar(rng)),
            coefficients: (1..t)
                .map(|_| Zeroizing::new(Scalar::random(rng)))
                .collect(),
            hpke_seed,
        }
    }
}

fn nonzero_scalar(rng: &mut (impl RngCore + CryptoRng)) -> Scalar {
    loop {
        let s = Scalar::random(rng);
        if s != Scalar::ZERO {
            return s;
        }
    }
}

/// One realm's part of a registration: its index and the cleartext fields, and its key share
/// and unlock tag sealed to its key (HPKE base mode, info binding every cleartext field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRequest {
    /// The realm.
    pub realm: VaultId,
    /// Its 1-based index `i`.
    pub index: u8,
    /// `t`.
    pub threshold: u8,
    /// `L`.
    pub limit: u16,
    /// `v`.
    pub version: [u8; 16],
    /// HPKE encapsulated key (32 bytes).
    pub enc: Vec<u8>,
    /// HPKE ciphertext of `k_i ‖ tag_i` (64 + 16 bytes).
    pub sealed: Vec<u8>,
}

/// `SHARE ‖ realm_id ‖ bytes16(account) ‖ v ‖ u8(i) ‖ u8(t) ‖ u16(L)`.
fn share_info(realm: VaultId, account: &str, r: &ShareRequest) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(derive::SHARE)
        .bytes(&realm.0)
        .bytes_u16(account.as_bytes())
        .bytes(&r.version)
        .u8(r.index)
        .u8(r.threshold)
        .u16(r.limit);
    w.into_inner()
}

/// A registration in progress: the slot's params, one [`ShareRequest`] per realm, and the
/// secret, released only by [`Registration::finish`] once every realm acknowledged.
pub struct Registration {
    params: TvrParams,
    requests: Vec<ShareRequest>,
    secret: ProtectorSecret,
}

impl core::fmt::Debug for Registration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registration")
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Deals fresh shares of a fresh key to `realms` (in slot order).
    pub fn start(
        new: &NewSlot<'_>,
        password: &[u8],
        realms: &[Realm],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, TvrError> {
        Self::start_with(new, password, realms, Dealing::random(new.threshold, rng))
    }

    /// [`Registration::start`] with explicit random choices (vectors).
    pub fn start_with(
        new: &NewSlot<'_>,
        password: &[u8],
        realms: &[Realm],
        dealing: Dealing,
    ) -> Result<Self, TvrError> {
        check_shape(realms.len(), new.threshold, new.limit, new.account)?;
        if dealing.coefficients.len() + 1 != usize::from(new.threshold) {
            return Err(TvrError::Invalid("t − 1 coefficients are needed"));
        }
        if *dealing.key == Scalar::ZERO {
            return Err(TvrError::Invalid("the OPRF key is zero"));
        }
        let v = dealing.version;
        let a = derive::stretch(password, new.repo, new.slot, &v, new.argon2)?;
        let y = VoprfServer::<Ristretto255>::new_with_key(dealing.key.as_bytes())
            .and_then(|s| s.evaluate(&a[..]))
            .map_err(|_| TvrError::Crypto)?;
        let derived = derive::from_output(&y, &v);
        let coefficients: Vec<Scalar> = dealing.coefficients.iter().map(|c| **c).collect();
        let shares = shamir::split(&dealing.key, &coefficients, realms.len())
            .map_err(|_| TvrError::Invalid("threshold"))?;
        let mut hpke_rng = rand_chacha::ChaCha20Rng::from_seed(*dealing.hpke_seed);
        let mut slot_realms = Vec::with_capacity(realms.len());
        let mut requests = Vec::with_capacity(realms.len());
        for (n, (realm, share)) in realms.iter().zip(&shares).enumerate() {
            if **share == Scalar::ZERO {
                // Probability 2^-252; a zero share would make P_i the identity.
                return Err(TvrError::Crypto);
            }
            let index = n as u8 + 1;
            slot_realms.push(SlotRealm {
                id: realm.id,
                public_share: (RISTRETTO_BASEPOINT_POINT * **share).compress().to_bytes(),
            });
            let tag = derive::tag(&derived.unlock, realm.id, new.account, &v);
            let mut plaintext = Zeroizing::new([0u8; 64]);
            plaintext[..32].copy_from_slice(share.as_bytes());
            plaintext[32..].copy_from_slice(&tag[..]);
            let mut request = ShareRequest {
                realm: realm.id,
                index,
                threshold: new.threshold,
                limit: new.limit,
                version: v,
                enc: Vec::new(),
                sealed: Vec::new(),
            };
            let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&realm.share_key)
                .map_err(|_| TvrError::Invalid("a realm's configured share key"))?;
            let (enc, sealed) =
                hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
                    &OpModeS::Base,
                    &pk,
                    &share_info(realm.id, new.account, &request),
                    &plaintext[..],
                    &[],
                    &mut hpke_rng,
                )
                .map_err(|_| TvrError::Invalid("a realm's configured share key"))?;
            request.enc = enc.to_bytes().to_vec();
            request.sealed = sealed;
            requests.push(request);
        }
        let params = TvrParams {
            account: new.account.into(),
            version: v,
            threshold: new.threshold,
            limit: new.limit,
            argon2: new.argon2,
            commitment: derived.commitment,
            realms: slot_realms,
        };
        params.check()?;
        Ok(Self {
            params,
            requests,
            secret: derived.secret,
        })
    }

    /// The slot's params (to write once [`Registration::finish`] succeeded).
    pub fn params(&self) -> &TvrParams {
        &self.params
    }

    /// What to send to each realm.
    pub fn requests(&self) -> &[ShareRequest] {
        &self.requests
    }

    /// The params and the slot's secret, once every realm of the slot acknowledged its share
    /// (registration fails closed: a slot some realm does not hold could not survive that
    /// realm's loss as the person was told).
    pub fn finish(
        self,
        acknowledged: &[VaultId],
    ) -> Result<(TvrParams, ProtectorSecret), TvrError> {
        let missing: Vec<VaultId> = self
            .params
            .realms
            .iter()
            .map(|r| r.id)
            .filter(|id| !acknowledged.contains(id))
            .collect();
        if !missing.is_empty() {
            return Err(TvrError::NotAllAcknowledged { missing });
        }
        Ok((self.params, self.secret))
    }
}

/// A realm's X25519 key pair for opening key shares.
pub struct RealmKey {
    private: <X25519HkdfSha256 as Kem>::PrivateKey,
    public: [u8; 32],
}

impl core::fmt::Debug for RealmKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RealmKey(public {})", hex::encode(self.public))
    }
}

impl RealmKey {
    /// The key pair derived from a 32-byte seed (RFC 9180 DeriveKeyPair); the realm keeps the
    /// seed sealed by its HSM key.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let (private, public) = X25519HkdfSha256::derive_keypair(seed);
        let public = public.to_bytes().into();
        Self { private, public }
    }

    /// The public key clients seal to (published in `/v1/info`, pinned in their configuration).
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Opens a key share sent to realm `realm` for `account`.
    pub fn open_share(
        &self,
        realm: VaultId,
        account: &str,
        request: &ShareRequest,
    ) -> Result<RealmRecord, TvrError> {
        check_shape(2, 2, request.limit, account)?;
        if request.index == 0 || usize::from(request.index) > crate::params::MAX_REALMS {
            return Err(TvrError::Invalid("realm index"));
        }
        let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&request.enc)
            .map_err(|_| TvrError::BadShare)?;
        let plaintext = Zeroizing::new(
            hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &self.private,
                &enc,
                &share_info(realm, account, request),
                &request.sealed,
                &[],
            )
            .map_err(|_| TvrError::BadShare)?,
        );
        if plaintext.len() != 64 {
            return Err(TvrError::BadShare);
        }
        RealmRecord::new(
            request.version,
            request.index,
            request.threshold,
            request.limit,
            Zeroizing::new(plaintext[..32].try_into().expect("32 bytes")),
            Zeroizing::new(plaintext[32..].try_into().expect("32 bytes")),
        )
    }
}

/// What a realm keeps per account (sealed at rest by its HSM key).
pub struct RealmRecord {
    /// `v`.
    pub version: [u8; 16],
    /// `i`.
    pub index: u8,
    /// `t`.
    pub threshold: u8,
    /// `L`.
    pub limit: u16,
    key_share: Zeroizing<[u8; 32]>,
    tag: Zeroizing<[u8; 32]>,
    /// `k_i` as the VOPRF server (with `P_i`), checked and built once per record rather than
    /// once more per evaluation. Zeroized on drop by `voprf`; its derived `Debug` would print
    /// the key, which is why this struct's `Debug` is written by hand.
    server: VoprfServer<Ristretto255>,
}

impl core::fmt::Debug for RealmRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RealmRecord")
            .field("version", &hex::encode(self.version))
            .field("index", &self.index)
            .field("key_share", &"<redacted>")
            .field("tag", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The layout version of an encoded [`RealmRecord`].
const RECORD_VERSION: u8 = 1;

impl RealmRecord {
    /// `u8(1) ‖ v(16) ‖ u8(i) ‖ u8(t) ‖ u16(L) ‖ k_i(32) ‖ tag_i(32)`: to seal, never to store in clear.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(RECORD_VERSION)
            .bytes(&self.version)
            .u8(self.index)
            .u8(self.threshold)
            .u16(self.limit)
            .bytes(&self.key_share[..])
            .bytes(&self.tag[..]);
        Zeroizing::new(w.into_inner())
    }

    /// Decodes [`RealmRecord::encode`]'s output.
    pub fn decode(b: &[u8]) -> Result<Self, TvrError> {
        let mut r = Reader::new(b, "tvr realm record");
        let bad = |_| TvrError::Invalid("realm record");
        r.version_u8(RECORD_VERSION).map_err(bad)?;
        let version = r.array().map_err(bad)?;
        let index = r.u8().map_err(bad)?;
        let threshold = r.u8().map_err(bad)?;
        let limit = r.u16().map_err(bad)?;
        let key_share = Zeroizing::new(r.array().map_err(bad)?);
        let tag = Zeroizing::new(r.array().map_err(bad)?);
        r.finish().map_err(bad)?;
        Self::new(version, index, threshold, limit, key_share, tag)
    }

    /// A record whose key share is a non-zero canonical scalar.
    fn new(
        version: [u8; 16],
        index: u8,
        threshold: u8,
        limit: u16,
        key_share: Zeroizing<[u8; 32]>,
        tag: Zeroizing<[u8; 32]>,
    ) -> Result<Self, TvrError> {
        let server = VoprfServer::new_with_key(&key_share[..])
            .map_err(|_| TvrError::Invalid("a key share is not a non-zero canonical scalar"))?;
        Ok(Self {
            version,
            index,
            threshold,
            limit,
            key_share,
            tag,
            server,
        })
    }

    /// `P_i`, the public key share.
    pub fn public_share(&self) -> Result<[u8; 32], TvrError> {
        Ok(self.server.get_public_key().compress().to_bytes())
    }

    /// Evaluates the blinded element `b` with this share, with a DLEQ proof (RFC 9497 §3.3.2
    /// BlindEvaluate). The caller MUST have counted this evaluation durably first.
    pub fn evaluate(
        &self,
        blinded: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Evaluation, TvrError> {
        evaluate_with(&self.server, blinded, rng)
    }

    /// Whether `tag` is this record's unlock tag (constant time).
    pub fn tag_matches(&self, tag: &[u8]) -> bool {
        tag.len() == 32 && bool::from(self.tag[..].ct_eq(tag))
    }

    /// The key share's bytes: for the malicious-realm test (a realm that unseals its share
    /// and evaluates at will) and nothing else.
    #[doc(hidden)]
    pub fn expose_key_share(&self) -> &[u8; 32] {
        &self.key_share
    }
}

fn evaluate_with(
    server: &VoprfServer<Ristretto255>,
    blinded: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Evaluation, TvrError> {
    let blinded = BlindedElement::<Ristretto255>::deserialize(blinded)
        .map_err(|_| TvrError::Invalid("the blinded element is not a valid group element"))?;
    let result = server.blind_evaluate(rng, &blinded);
    Ok(Evaluation {
        element: result.message.serialize().into(),
        proof: result.proof.serialize().into(),
    })
}

/// How a realm answers an account it holds no record for: with a key derived from its own
/// secret and the account, so that answers do not reveal whether the account exists.
pub fn evaluate_unknown(
    realm_secret: &[u8; 32],
    account: &str,
    blinded: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Evaluation, TvrError> {
    let mut w = Writer::new();
    w.bytes(derive::UNKNOWN_ACCOUNT)
        .bytes_u16(account.as_bytes());
    let server = VoprfServer::<Ristretto255>::new_from_seed(realm_secret, &w.into_inner())
        .map_err(|_| TvrError::Crypto)?;
    evaluate_with(&server, blinded, rng)
}

/// A realm's answer: `Z_i = k_i·B` and its DLEQ proof `(c, s)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// `Z_i`.
    pub element: [u8; 32],
    /// The proof.
    pub proof: [u8; 64],
}

/// A recovery in progress: the blinded element to send, and the realms' verified answers.
pub struct Recovery {
    params: TvrParams,
    usable: Vec<VaultId>,
    a: Stretched,
    client: VoprfClient<Ristretto255>,
    blinded: [u8; 32],
    verified: Vec<(u8, RistrettoPoint, u32)>,
    excluded: Vec<VaultId>,
}

impl core::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recovery")
            .field("account", &self.params.account)
            .field("verified", &self.verified.len())
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

/// How a recovery ended.
pub enum Outcome {
    /// The password was right: the slot's secret, and the tag to send each realm that did not
    /// fail its proof (a confirm resets that realm's count).
    Unlocked {
        /// The protector secret.
        secret: ProtectorSecret,
        /// `(realm, tag_i)` for every realm of the slot except the excluded ones.
        confirmations: Vec<(VaultId, Zeroizing<[u8; 32]>)>,
    },
    /// Every answer was proven, so the password was wrong. No tag may be sent.
    WrongPassword {
        /// The fewest evaluations left at any realm that answered.
        attempts_left: u32,
    },
    /// Fewer than `t` realms gave a proven answer.
    NotEnoughRealms {
        /// Proven answers.
        verified: usize,
        /// `t`.
        needed: usize,
    },
}

impl core::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Unlocked { confirmations, .. } => write!(
                f,
                "Unlocked {{ secret: <redacted>, confirmations: {} }}",
                confirmations.len()
            ),
            Outcome::WrongPassword { attempts_left } => {
                write!(f, "WrongPassword {{ attempts_left: {attempts_left} }}")
            }
            Outcome::NotEnoughRealms { verified, needed } => {
                write!(
                    f,
                    "NotEnoughRealms {{ verified: {verified}, needed: {needed} }}"
                )
            }
        }
    }
}

impl Recovery {
    /// Stretches the password and blinds it. Only realms that are both in the slot and in
    /// `configured` (the client's own realm set) will be asked; fewer than `t` of them is
    /// [`TvrError::NotEnoughConfigured`].
    pub fn start(
        params: TvrParams,
        repo: RepoId,
        slot: SlotId,
        password: &[u8],
        configured: &[VaultId],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, TvrError> {
        params.check()?;
        let usable: Vec<VaultId> = params
            .realms
            .iter()
            .map(|r| r.id)
            .filter(|id| configured.contains(id))
            .collect();
        if usable.len() < usize::from(params.threshold) {
            return Err(TvrError::NotEnoughConfigured {
                configured: usable.len(),
                needed: params.threshold.into(),
            });
        }
        let a = derive::stretch(password, repo, slot, &params.version, params.argon2)?;
        let blind =
            VoprfClient::<Ristretto255>::blind(&a[..], rng).map_err(|_| TvrError::Crypto)?;
        Ok(Self {
            blinded: blind.message.serialize().into(),
            client: blind.state,
            a,
            usable,
            params,
            verified: Vec::new(),
            excluded: Vec::new(),
        })
    }

    /// The blinded element `B` every realm evaluates.
    pub fn blinded_element(&self) -> [u8; 32] {
        self.blinded
    }

    /// The slot's realms the client may ask, in slot order (the caller asks `t` of them and
    /// another for each that fails).
    pub fn realms(&self) -> &[VaultId] {
        &self.usable
    }

    /// The slot's params.
    pub fn params(&self) -> &TvrParams {
        &self.params
    }

    /// Proven answers so far.
    pub fn verified(&self) -> usize {
        self.verified.len()
    }

    /// Whether `t` proven answers are in.
    pub fn complete(&self) -> bool {
        self.verified.len() >= usize::from(self.params.threshold)
    }

    /// Checks realm `realm`'s answer against its `P_i` from the slot (RFC 9497 §3.3.2
    /// Finalize's proof verification, through `voprf`). A realm whose proof fails is excluded:
    /// it gets no tag, whatever happens next.
    pub fn accept(
        &mut self,
        realm: VaultId,
        answer: &Evaluation,
        guesses_left: u32,
    ) -> Result<(), TvrError> {
        let index = self
            .params
            .index_of(realm)
            .filter(|_| self.usable.contains(&realm))
            .ok_or(TvrError::Invalid("a realm this recovery did not ask"))?;
        if self.excluded.contains(&realm) || self.verified.iter().any(|(i, _, _)| *i == index) {
            return Err(TvrError::Invalid("a realm answered twice"));
        }
        match self.check(index, answer) {
            Some(point) => {
                self.verified.push((index, point, guesses_left));
                Ok(())
            }
            None => {
                self.excluded.push(realm);
                Err(TvrError::BadProof { realm })
            }
        }
    }

    /// Excludes realm `realm` whose reply was not an evaluation at all (a body of the wrong
    /// shape): like a realm whose proof failed, it is not combined and gets no tag.
    pub fn reject(&mut self, realm: VaultId) {
        if !self.excluded.contains(&realm) {
            self.excluded.push(realm);
        }
    }

    fn check(&self, index: u8, answer: &Evaluation) -> Option<RistrettoPoint> {
        let p_i = CompressedRistretto(self.params.realm(index)?.public_share).decompress()?;
        let element = EvaluationElement::<Ristretto255>::deserialize(&answer.element).ok()?;
        let proof = Proof::<Ristretto255>::deserialize(&answer.proof).ok()?;
        // The output (this realm's share of y) is discarded: only the proof matters here.
        self.client
            .finalize(&self.a[..], &element, &proof, p_i)
            .ok()?;
        CompressedRistretto(answer.element).decompress()
    }

    /// Combines `t` proven answers, finalizes and compares `C` (constant time).
    pub fn finish(self) -> Outcome {
        let t = usize::from(self.params.threshold);
        if self.verified.len() < t {
            return Outcome::NotEnoughRealms {
                verified: self.verified.len(),
                needed: t,
            };
        }
        let mut used = self.verified.clone();
        used.sort_by_key(|(i, _, _)| *i);
        used.truncate(t);
        let indices: Vec<u8> = used.iter().map(|(i, _, _)| *i).collect();
        let lambdas = shamir::lagrange_at_zero(&indices).expect("distinct slot indices");
        let combined: RistrettoPoint = used.iter().zip(&lambdas).map(|((_, z, _), l)| z * l).sum();
        let Some(y) = self.finalize_combined(combined) else {
            return self.wrong_password();
        };
        let derived = derive::from_output(&y, &self.params.version);
        if !bool::from(derived.commitment.ct_eq(&self.params.commitment)) {
            return self.wrong_password();
        }
        let confirmations = self
            .params
            .realms
            .iter()
            .filter(|r| !self.excluded.contains(&r.id))
            .map(|r| {
                (
                    r.id,
                    derive::tag(
                        &derived.unlock,
                        r.id,
                        &self.params.account,
                        &self.params.version,
                    ),
                )
            })
            .collect();
        Outcome::Unlocked {
            secret: derived.secret,
            confirmations,
        }
    }

    /// RFC 9497 §3.3.1 Finalize on the combined element: `voprf`'s VOPRF client finalizes only
    /// after a proof, which a combination has none of, so the same blind drives its OPRF
    /// client, whose Finalize is the same hash (§3.3.1 and §3.3.2 share it; the property tests
    /// check the result against `VoprfServer::evaluate`).
    fn finalize_combined(&self, combined: RistrettoPoint) -> Option<Zeroizing<Vec<u8>>> {
        let state = Zeroizing::new(self.client.serialize().to_vec());
        let oprf = OprfClient::<Ristretto255>::deserialize(&state[..32]).ok()?;
        let element =
            EvaluationElement::<Ristretto255>::deserialize(combined.compress().as_bytes()).ok()?;
        let y = oprf.finalize(&self.a[..], &element).ok()?;
        Some(Zeroizing::new(y.to_vec()))
    }

    fn wrong_password(&self) -> Outcome {
        Outcome::WrongPassword {
            attempts_left: self
                .verified
                .iter()
                .map(|(_, _, left)| *left)
                .min()
                .unwrap_or(0),
        }
    }
}
