//! Staged rollout: `/v1/features` over HTTP, rules reloaded without a restart and audited.

use super::{start_with, Running};
use sealback_proto::{protectors, FeaturesRequest};
use sealback_vault::limits::RateLimit;
use sealback_vault::{SystemClock, VaultOptions};
use sealback_vault_client::VaultClient;
use std::path::Path;
use std::sync::Arc;

async fn start_with_rules(dir: &Path, rules: &str) -> Running {
    let file = dir.join("rollout.toml");
    std::fs::write(&file, rules).unwrap();
    let options = VaultOptions {
        dev_accounts: true,
        account_rate: RateLimit::OFF,
        source_rate: RateLimit::OFF,
        rollout_file: Some(file),
        relying_party: Some(sealback_vault::passkeys::RelyingParty::new("localhost")),
        ..Default::default()
    };
    let db = format!("sqlite:{}", dir.join("vault.db").display());
    start_with(dir, &db, options, Arc::new(SystemClock)).await
}

fn request(account: &str, platform: &str, version: &str) -> FeaturesRequest {
    FeaturesRequest {
        account: account.into(),
        platform: platform.into(),
        region: "DE".into(),
        app_version: version.into(),
    }
}

const THIRTY_PERCENT: &str = r#"
[[rule]]
protector = "vault_passkey"
percent = 30
platforms = ["android", "web"]
min_app_version = "2.24"
"#;

#[tokio::test]
async fn thirty_percent_of_ten_thousand_accounts_get_the_same_answer_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start_with_rules(tmp.path(), THIRTY_PERCENT).await;
    let offered = |round: u32| {
        let vault = v.vault.clone();
        async move {
            let mut yes = std::collections::BTreeSet::new();
            for i in 0..10_000 {
                let account = format!("account-{i}");
                let reply = vault
                    .features(&request(&account, "android", "2.24.1"), "127.0.0.1")
                    .unwrap();
                // Protectors without a rule are offered to everyone.
                assert!(reply.offers(protectors::PASSWORD) && reply.offers(protectors::PASSKEY));
                if reply.offers(protectors::VAULT_PASSKEY) {
                    yes.insert(account);
                } else if round == 0 && i < 50 {
                    let why = reply.reason(protectors::VAULT_PASSKEY).unwrap();
                    assert!(why.contains("step by step"), "{why}");
                }
            }
            yes
        }
    };
    let first = offered(0).await;
    let share = first.len() as f64 / 10_000.0;
    assert!((0.285..=0.315).contains(&share), "{share}");
    assert_eq!(
        offered(1).await,
        first,
        "an account's answer changed between calls"
    );

    // Over HTTP: an offered account, and the rules' limits.
    let client = VaultClient::new(&v.url).unwrap();
    let lucky = first.iter().next().unwrap();
    let reply = client
        .features(&request(lucky, "web", "2.30"))
        .await
        .unwrap();
    assert!(reply.offers(protectors::VAULT_PASSKEY), "{reply:?}");
    let ios = client
        .features(&request(lucky, "ios", "2.30"))
        .await
        .unwrap();
    assert!(!ios.offers(protectors::VAULT_PASSKEY));
    assert!(
        ios.reason(protectors::VAULT_PASSKEY)
            .unwrap()
            .contains("not available on ios yet"),
        "{ios:?}"
    );
    let old = client
        .features(&request(lucky, "android", "2.9.9"))
        .await
        .unwrap();
    assert!(!old.offers(protectors::VAULT_PASSKEY));
    assert!(
        old.reason(protectors::VAULT_PASSKEY)
            .unwrap()
            .contains("2.24 or later"),
        "{old:?}"
    );
    // 2.100 is newer than 2.24 (numbers, not text).
    let newer = client
        .features(&request(lucky, "android", "2.100"))
        .await
        .unwrap();
    assert!(newer.offers(protectors::VAULT_PASSKEY));
}

#[tokio::test]
async fn rules_change_without_a_restart_bad_files_are_refused_and_both_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let v = start_with_rules(tmp.path(), THIRTY_PERCENT).await;
    let client = VaultClient::new(&v.url).unwrap();
    let before = client
        .features(&request("someone", "android", "3.0"))
        .await
        .unwrap();

    // Everyone on android and web, from the same version.
    let file = tmp.path().join("rollout.toml");
    std::fs::write(
        &file,
        THIRTY_PERCENT.replace("percent = 30", "percent = 100"),
    )
    .unwrap();
    let mut after = before.clone();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = client
            .features(&request("someone", "android", "3.0"))
            .await
            .unwrap();
        if after.rules_version != before.rules_version {
            break;
        }
    }
    assert_ne!(
        after.rules_version, before.rules_version,
        "the new rules never took effect"
    );
    assert!(after.offers(protectors::VAULT_PASSKEY));

    // A broken file is refused: the rules in force stay.
    std::fs::write(&file, "[[rule]]\nprotector = \"telepathy\"\npercent = 5\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let still = client
        .features(&request("someone", "android", "3.0"))
        .await
        .unwrap();
    assert_eq!(still, after);

    let audit = v.vault.db().audit_log(100).await.unwrap();
    let rollout: Vec<_> = audit
        .iter()
        .filter(|e| e.event == "rollout")
        .map(|e| e.outcome.clone())
        .collect();
    assert!(rollout.len() >= 3, "{rollout:?}");
    assert!(rollout
        .iter()
        .any(|o| o == &format!("applied {}", after.rules_version)));
    assert!(rollout.iter().any(|o| o == "rejected"), "{rollout:?}");
    assert!(audit
        .iter()
        .filter(|e| e.event == "rollout")
        .all(|e| e.account.is_empty()));
}

#[tokio::test]
async fn a_vault_does_not_start_with_invalid_rules_and_requests_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("rollout.toml");
    for (bad, says) in [
        (
            "[[rule]]\nprotector = \"password\"\npercent = 130\n",
            "percent must be 0 to 100",
        ),
        (
            "[[rule]]\nprotector = \"password\"\npercent = 5\nmin_app_version = \"two\"\n",
            "dotted numbers",
        ),
        (
            "[[rule]]\nprotector = \"password\"\npercent = 5\ncountries = [\"DE\"]\n",
            "unknown field",
        ),
    ] {
        std::fs::write(&file, bad).unwrap();
        let options = VaultOptions {
            dev_accounts: true,
            rollout_file: Some(file.clone()),
            ..Default::default()
        };
        let db =
            sealback_vault::db::Db::open(&format!("sqlite:{}", tmp.path().join("v.db").display()))
                .await
                .unwrap();
        let sealer = Arc::new(
            sealback_vault::sealer::SoftwareSealer::open_or_create(&tmp.path().join("k")).unwrap(),
        );
        let err = sealback_vault::Vault::new(db, sealer, options, Arc::new(SystemClock))
            .await
            .err()
            .expect("a vault started with invalid rollout rules");
        assert!(err.to_string().contains(says), "{err}");
    }
    let v = start_with_rules(tmp.path(), "").await;
    let client = VaultClient::new(&v.url).unwrap();
    let err = client
        .features(&request("", "android", "1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("1-256 printable characters"),
        "{err}"
    );
    // No rules: everything for everyone.
    let all = client.features(&request("a", "", "")).await.unwrap();
    assert!(protectors::ALL.iter().all(|p| all.offers(p)), "{all:?}");
}
