//! Staged rollout: which clients are offered which protectors (`POST /v1/features`).
//!
//! The operator writes rules in a TOML file given to `vault serve --rollout FILE`:
//!
//! ```toml
//! [[rule]]
//! protector = "vault_passkey"     # passkey, vault_passkey or password
//! percent = 30                    # share of accounts, by a stable hash (0-100, decimals allowed)
//! platforms = ["android", "web"]  # optional; missing or empty: every platform
//! regions = ["DE", "FR"]          # optional; ISO 3166 codes; missing or empty: everywhere
//! min_app_version = "2.24.0"      # optional
//! ```
//!
//! A protector without a rule is offered to everyone; a protector with several rules is offered
//! when any of them matches. An account's bucket is [`sealback_proto::rollout_bucket`], so it
//! gets the same answer on every call and keeps it when the percentage grows. The file is
//! re-read when it changes (checked every [`RELOAD_SECONDS`] s), without a restart: a valid file
//! replaces the rules, an invalid one is refused and the old rules stay; either way the change
//! is written to the audit trail and logged (without accounts).

use sealback_proto::{self as proto, protectors, FeatureOffer, FeaturesReply, FeaturesRequest};
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// How often the rules file is checked for changes.
pub const RELOAD_SECONDS: u64 = 1;

/// One rule of the rules file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The protector it offers.
    pub protector: String,
    /// Share of accounts, 0-100.
    pub percent: f64,
    /// Platforms (case-insensitive); empty: all.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Regions (case-insensitive); empty: all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Lowest app version offered.
    #[serde(default)]
    pub min_app_version: Option<String>,
}

/// The rules in force.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Every rule.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// A short digest of the file the rules came from ("default" without a file).
    #[serde(skip)]
    pub version: String,
}

impl Rules {
    /// Parses and validates a rules file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_digested(text, &text_digest(text))
    }

    /// [`Rules::parse`] with the text's digest already computed (the reloader has it).
    fn parse_digested(text: &str, digest: &str) -> Result<Self, String> {
        let mut rules: Rules = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, r) in rules.rules.iter().enumerate() {
            let n = i + 1;
            if !protectors::ALL.contains(&r.protector.as_str()) {
                return Err(format!(
                    "rule {n}: unknown protector {:?} (one of {})",
                    r.protector,
                    protectors::ALL.join(", ")
                ));
            }
            if !(0.0..=100.0).contains(&r.percent) {
                return Err(format!("rule {n}: percent must be 0 to 100"));
            }
            if let Some(v) = &r.min_app_version {
                parse_version(v).ok_or_else(|| {
                    format!("rule {n}: min_app_version {v:?} is not dotted numbers like 2.24.0")
                })?;
            }
        }
        // The version names the file's text: its digest's first 8 bytes.
        rules.version = digest[..16].to_string();
        Ok(rules)
    }

    /// What `req` is offered.
    pub fn evaluate(&self, req: &FeaturesRequest) -> FeaturesReply {
        let protectors = protectors::ALL
            .iter()
            .map(|name| {
                let mine: Vec<&Rule> = self.rules.iter().filter(|r| r.protector == *name).collect();
                if mine.is_empty() {
                    return FeatureOffer {
                        protector: name.to_string(),
                        offered: true,
                        reason: None,
                    };
                }
                let mut reason = None;
                for rule in mine {
                    match rule.admits(name, req) {
                        Ok(()) => {
                            return FeatureOffer {
                                protector: name.to_string(),
                                offered: true,
                                reason: None,
                            }
                        }
                        Err(why) => {
                            reason.get_or_insert(why);
                        }
                    }
                }
                FeatureOffer {
                    protector: name.to_string(),
                    offered: false,
                    reason,
                }
            })
            .collect();
        FeaturesReply {
            protectors,
            rules_version: self.version.clone(),
        }
    }
}

impl Rule {
    /// `Ok` when the rule offers its protector to `req`, else why not, for people.
    fn admits(&self, name: &str, req: &FeaturesRequest) -> Result<(), String> {
        let what = match name {
            protectors::PASSKEY => "passkeys",
            protectors::VAULT_PASSKEY => "passkeys kept by the key vault",
            _ => "passwords kept by the key vault",
        };
        if !self.platforms.is_empty()
            && !self
                .platforms
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&req.platform))
        {
            return Err(format!(
                "{what} are not available on {} yet",
                if req.platform.is_empty() {
                    "this platform"
                } else {
                    &req.platform
                }
            ));
        }
        if !self.regions.is_empty()
            && !self
                .regions
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&req.region))
        {
            return Err(format!("{what} are not available in your region yet"));
        }
        if let Some(min) = &self.min_app_version {
            let ok = match (parse_version(&req.app_version), parse_version(min)) {
                (Some(have), Some(need)) => have >= need,
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{what} need app version {min} or later; update the app"
                ));
            }
        }
        let threshold = (self.percent * 100.0).round() as u32;
        if proto::rollout_bucket(name, &req.account) >= threshold {
            return Err(format!(
                "{what} are being introduced step by step and are not available for your account yet"
            ));
        }
        Ok(())
    }
}

/// SHA-256 of a rules file's text, hex.
fn text_digest(text: &str) -> String {
    use sha2_010::Digest;
    hex::encode(sha2_010::Sha256::digest(text.as_bytes()))
}

/// Dotted numbers, compared component by component (`2.10` > `2.9`; `2.24` == `2.24.0`).
fn parse_version(v: &str) -> Option<Vec<u64>> {
    let mut parts: Vec<u64> = v
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    (!parts.is_empty() && parts.len() <= 8).then_some(parts)
}

/// The rules in force, shared by request handlers and the reloader.
#[derive(Clone, Default)]
pub struct Rollout {
    current: Arc<RwLock<Arc<Rules>>>,
    /// Digest of the file text last looked at, valid or not, so a bad file is reported once.
    seen: Arc<std::sync::Mutex<String>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file did not change.
    Unchanged,
    /// New rules are in force.
    Applied {
        /// Their version.
        version: String,
        /// How many rules.
        rules: usize,
    },
    /// The file is invalid; the old rules stay.
    Rejected(String),
}

impl Rollout {
    /// Everything offered to everyone (no rules file).
    pub fn everyone() -> Self {
        let rules = Rules {
            version: "default".into(),
            ..Default::default()
        };
        Self {
            current: Arc::new(RwLock::new(Arc::new(rules))),
            seen: Default::default(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.current.read().expect("rollout lock").clone()
    }

    /// Answers a client.
    pub fn evaluate(&self, req: &FeaturesRequest) -> FeaturesReply {
        self.rules().evaluate(req)
    }

    /// Reads `path` and puts its rules in force if they are valid and differ from the current.
    pub fn reload(&self, path: &Path) -> Reload {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return Reload::Rejected(format!("cannot read {}: {e}", path.display())),
        };
        let digest = text_digest(&text);
        {
            let mut seen = self.seen.lock().expect("rollout lock");
            if *seen == digest {
                return Reload::Unchanged;
            }
            seen.clone_from(&digest);
        }
        match Rules::parse_digested(&text, &digest) {
            Ok(rules) => {
                let outcome = Reload::Applied {
                    version: rules.version.clone(),
                    rules: rules.rules.len(),
                };
                *self.current.write().expect("rollout lock") = Arc::new(rules);
                outcome
            }
            Err(e) => Reload::Rejected(format!("{}: {e}", path.display())),
        }
    }
}
