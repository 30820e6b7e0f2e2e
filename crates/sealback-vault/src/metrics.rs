//! Prometheus metrics (OpenMetrics text), served on a separate listener (`GET /metrics`).
//! Labels carry outcomes and routes only: never an account or an address.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// An outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// e.g. `counted`, `ok`, `failed`, `locked`, `rate_limited`, `unauthorized`.
    pub outcome: &'static str,
}

/// A route label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// e.g. `/v1/login/start`.
    pub route: &'static str,
}

/// A flag kind label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `burst` or `many_accounts`.
    pub kind: &'static str,
}

/// A protector and whether it was offered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OfferLabel {
    /// `passkey`, `vault_passkey` or `password`.
    pub protector: &'static str,
    /// `true` or `false`.
    pub offered: &'static str,
}

/// The vault's metrics.
pub struct Metrics {
    registry: Registry,
    /// Login requests by outcome.
    pub logins: Family<OutcomeLabel, Counter>,
    /// Registration requests by outcome.
    pub registrations: Family<OutcomeLabel, Counter>,
    /// Records taken out of the table for their last allowed guess (destroyed unless that
    /// guess is right).
    pub last_guesses: Counter,
    /// Audit flags raised.
    pub flags: Family<KindLabel, Counter>,
    /// Request latency by route.
    pub request_seconds: Family<RouteLabel, Histogram>,
    /// `/v1/features` answers by protector and offer: how far a rollout has reached.
    pub features_answered: Family<OfferLabel, Counter>,
    /// Passkey assertions that surprised the vault: `counter_regression`,
    /// `backup_state_changed`, `backup_eligible_lost`.
    pub passkey_surprises: Family<KindLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sealback_vault");
        let logins = Family::<OutcomeLabel, Counter>::default();
        registry.register("logins", "Login requests by outcome", logins.clone());
        let registrations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "registrations",
            "Registration requests by outcome",
            registrations.clone(),
        );
        let last_guesses = Counter::default();
        registry.register(
            "last_guesses",
            "Records taken out for their last allowed guess (destroyed unless it is right)",
            last_guesses.clone(),
        );
        let flags = Family::<KindLabel, Counter>::default();
        registry.register(
            "audit_flags",
            "Suspicious activity flagged by the audit monitor",
            flags.clone(),
        );
        let request_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "request_seconds",
            "Request handling time by route",
            request_seconds.clone(),
        );
        let features_answered = Family::<OfferLabel, Counter>::default();
        registry.register(
            "features_answered",
            "Feature answers by protector and whether it was offered",
            features_answered.clone(),
        );
        let passkey_surprises = Family::<KindLabel, Counter>::default();
        registry.register(
            "passkey_surprises",
            "Passkey assertions whose counter or backup flags surprised the vault",
            passkey_surprises.clone(),
        );
        Self {
            registry,
            passkey_surprises,
            features_answered,
            logins,
            registrations,
            last_guesses,
            flags,
            request_seconds,
        }
    }
}

impl Metrics {
    /// Counts a login outcome.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }
    /// Counts a registration outcome.
    pub fn registration(&self, outcome: &'static str) {
        self.registrations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry)
            .expect("writing to a String");
        s
    }
}
