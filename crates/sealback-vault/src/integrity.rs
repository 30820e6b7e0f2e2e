//! What a database writer cannot change unnoticed: the guess counters and the records they
//! protect (issue 14, docs/VAULT-PROTOCOL.md "Storage integrity").
//!
//! - A **record** is stored *bound*: `0x01 ‖ generation (16 random bytes) ‖ sealed`, where the
//!   sealing context names the format, the record kind, the generation and the account. A
//!   registration always makes a new generation; a record copied under another account or kind
//!   does not open.
//! - A **counter row** `(account, kind, count, generation, tag)` carries a tag computed by the
//!   sealer's PRF (inside the HSM) over the format, the account, the kind, the generation of
//!   the record it counts against and the count. A count lowered in place fails its tag.
//! - While a record exists, its counter row **must** exist and name the record's generation:
//!   deleting the row, or putting back an older record (another generation), is refused. So
//!   deleting a counter row can never reset it.
//!
//! Every refusal fails closed: the account's logins of that kind are refused (as if at its
//! limit), audited, and answered with a 4xx. A database rolled back as a whole, tags and all, is
//! not detected by a single vault (THREAT_MODEL.md; issue 18's threshold realms answer it).

use crate::db::{DbError, RecordKind};
use crate::sealer::Sealer;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The version byte of a bound record.
pub const BOUND_RECORD_V1: u8 = 1;

/// The length of a record's generation.
pub const GENERATION_LEN: usize = 16;

/// The label of a counter's tag (its format version).
const COUNTER_TAG_LABEL: &[u8] = b"sealback vault 2026-12-02 counter v1";

/// The label of a bound record's sealing context (its format version).
const BOUND_RECORD_LABEL: &[u8] = b"sealback vault 2026-12-02 bound record v1";

/// The sealing context and content of the marker that says a database was upgraded.
const MARKER_AAD: &[u8] = b"sealback vault 2026-12-02 integrity marker";
const MARKER: &[u8] = b"bound records and tagged counters, version 1";

/// A record's generation: random, new at every registration, kept by updates of the record.
pub type Generation = [u8; GENERATION_LEN];

/// A new random generation.
pub fn new_generation() -> Generation {
    let mut g = [0u8; GENERATION_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut g)
        .expect("system randomness");
    g
}

/// The generation of a bound record; `None` for anything else.
pub fn generation_of(stored: &[u8]) -> Option<Generation> {
    let rest = stored.strip_prefix(&[BOUND_RECORD_V1])?;
    rest.get(..GENERATION_LEN)?.try_into().ok()
}

/// The sealing context of a record before bound records: the account alone.
fn legacy_record_aad(kind: RecordKind, account: &str) -> Vec<u8> {
    let label: &[u8] = match kind {
        RecordKind::Password => b"sealback vault 2026-11-25 record:",
        RecordKind::Passkey => b"sealback vault 2026-11-26 passkey record:",
        // Realm records were bound from the start; this context is never used to open one.
        RecordKind::Realm => b"sealback vault 2026-12-02 tvr record:",
    };
    [label, account.as_bytes()].concat()
}

fn bound_record_aad(kind: RecordKind, account: &str, generation: &Generation) -> Vec<u8> {
    crate::service::encode_fields(&[
        BOUND_RECORD_LABEL,
        &[kind.code()],
        generation,
        account.as_bytes(),
    ])
    .to_vec()
}

/// A counter row as stored.
#[derive(Debug, Clone)]
pub(crate) struct CounterRow {
    pub count: i64,
    pub generation: Option<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
}

/// A record as stored, for the upgrade: its kind, account, the session holding it (a last
/// guess's copy in `held`) or none (its own table), and its sealed bytes.
pub(crate) struct StoredRecord {
    pub kind: RecordKind,
    pub account: String,
    pub held_session: Option<String>,
    pub sealed: Vec<u8>,
}

/// A counter row to write: what it counts against, the count and its tag.
pub(crate) struct CounterWrite {
    pub account: String,
    pub kind: RecordKind,
    pub generation: Vec<u8>,
    pub count: i64,
    pub tag: Vec<u8>,
}

/// The integrity keys: the vault's sealer (its PRF never leaves the HSM).
#[derive(Clone)]
pub struct Integrity {
    sealer: Arc<dyn Sealer>,
}

fn tampered(why: &str) -> DbError {
    DbError::Tampered(why.to_string())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Integrity {
    /// Integrity under `sealer`'s keys.
    pub fn new(sealer: Arc<dyn Sealer>) -> Self {
        Self { sealer }
    }

    /// Seals a record of `kind` for `account` in the bound form.
    pub fn seal_record(
        &self,
        kind: RecordKind,
        account: &str,
        generation: &Generation,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let aad = bound_record_aad(kind, account, generation);
        let mut out = vec![BOUND_RECORD_V1];
        out.extend_from_slice(generation);
        out.extend_from_slice(&self.sealer.seal(&aad, plaintext));
        out
    }

    /// Opens a bound record of `kind` for `account`; `None` when it is not one (altered, or
    /// moved from another account or kind).
    pub fn open_record(
        &self,
        kind: RecordKind,
        account: &str,
        stored: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let generation = generation_of(stored)?;
        let sealed = &stored[1 + GENERATION_LEN..];
        self.sealer
            .open(&bound_record_aad(kind, account, &generation), sealed)
            .map(Zeroizing::new)
    }

    /// The tag of a counter row.
    pub(crate) fn counter_tag(
        &self,
        account: &str,
        kind: RecordKind,
        generation: &[u8],
        count: i64,
    ) -> Vec<u8> {
        let input = crate::service::encode_fields(&[
            COUNTER_TAG_LABEL,
            account.as_bytes(),
            &[kind.code()],
            generation,
            &count.to_be_bytes(),
        ]);
        self.sealer.prf(&input).to_vec()
    }

    /// The verified count of `account`'s `kind` and the generation it counts against, from its
    /// counter row and its record (in its table), or why they do not go together.
    pub(crate) fn verified_count(
        &self,
        account: &str,
        kind: RecordKind,
        counter: Option<&CounterRow>,
        record: Option<&[u8]>,
    ) -> Result<(i64, Vec<u8>), DbError> {
        let Some(row) = counter else {
            return match record {
                None => Ok((0, Vec::new())),
                Some(_) => Err(tampered("the record's guess counter is missing")),
            };
        };
        let generation = row.generation.clone().unwrap_or_default();
        let expected = self.counter_tag(account, kind, &generation, row.count);
        if !row.tag.as_deref().is_some_and(|t| same(t, &expected)) {
            return Err(tampered("a guess counter does not match its tag"));
        }
        if let Some(record) = record {
            let Some(record_generation) = generation_of(record) else {
                return Err(tampered("a record is not in the bound form"));
            };
            if !same(&record_generation, &generation) {
                return Err(tampered(
                    "the record is not the one its guess counter counts against",
                ));
            }
        }
        Ok((row.count, generation))
    }

    /// A counter row for `count` guesses against `generation`.
    pub(crate) fn counter(
        &self,
        account: &str,
        kind: RecordKind,
        generation: &[u8],
        count: i64,
    ) -> CounterWrite {
        CounterWrite {
            account: account.to_string(),
            kind,
            generation: generation.to_vec(),
            count,
            tag: self.counter_tag(account, kind, generation, count),
        }
    }

    /// The sealed marker of an upgraded database.
    pub(crate) fn marker(&self) -> Vec<u8> {
        self.sealer.seal(MARKER_AAD, MARKER)
    }

    /// Checks the marker an upgraded database holds.
    pub(crate) fn check_marker(&self, sealed: &[u8]) -> Result<(), DbError> {
        match self.sealer.open(MARKER_AAD, sealed) {
            Some(m) if m == MARKER => Ok(()),
            _ => Err(tampered(
                "the database's integrity marker does not open with this vault's key",
            )),
        }
    }

    /// The upgrade of a database written before bound records and tagged counters: every record
    /// that opens in the old form is sealed again, bound to a new generation (rewritten in
    /// place in `records`), and every counter row gets a tag, against its record's generation.
    /// A record without a counter row gets one at zero; `counters` are `(account, kind, count)`.
    pub(crate) fn plan_upgrade(
        &self,
        records: &mut [StoredRecord],
        counters: &[(String, RecordKind, i64)],
    ) -> Vec<CounterWrite> {
        for r in records.iter_mut() {
            if let Some(plain) = self
                .sealer
                .open(&legacy_record_aad(r.kind, &r.account), &r.sealed)
                .map(Zeroizing::new)
            {
                r.sealed = self.seal_record(r.kind, &r.account, &new_generation(), &plain);
            }
        }
        let generation = |account: &str, kind: RecordKind| {
            records
                .iter()
                .find(|r| r.account == account && r.kind == kind)
                .and_then(|r| generation_of(&r.sealed))
                .map(|g| g.to_vec())
                .unwrap_or_default()
        };
        let mut writes: Vec<CounterWrite> = counters
            .iter()
            .map(|(account, kind, count)| {
                self.counter(account, *kind, &generation(account, *kind), *count)
            })
            .collect();
        for r in records.iter() {
            let counted = writes
                .iter()
                .any(|w| w.account == r.account && w.kind == r.kind);
            if !counted {
                writes.push(self.counter(&r.account, r.kind, &generation(&r.account, r.kind), 0));
            }
        }
        writes
    }
}
