//! `sealback demo`: the whole story on one machine, with nothing set up by hand.

use crate::commands::{hostname, now_ns};
use crate::output::{bytes, Bar, CliError};
use sealback_core::keyslot::{ProtectorType, SlotTemplate};
use sealback_core::recovery::{RecoveryKey, RecoveryKeyProtector};
use sealback_corpus::{ChatStoreSpec, DayOfUse};
use sealback_engine::backup::{backup, BackupOptions};
use sealback_engine::{check, restore, Repository};
use sealback_store::Store;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn step(json: bool, n: u32, text: &str) {
    if !json {
        println!("\n[{n}/7] {text}");
    }
}

fn say(json: bool, text: impl AsRef<str>) {
    if !json {
        println!("      {}", text.as_ref());
    }
}

fn other(e: impl std::fmt::Display) -> CliError {
    CliError::Other(e.to_string())
}

pub async fn run(dir: Option<PathBuf>, json: bool) -> Result<(), CliError> {
    let base = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d).map_err(other)?.next().is_some() {
                return Err(CliError::Usage(format!(
                    "{} is not empty; give a new or empty folder",
                    d.display()
                )));
            }
            std::fs::create_dir_all(&d).map_err(other)?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("sealback-demo-")
            .tempdir()
            .map_err(other)?
            .keep(),
    };
    let phone_a = base.join("phone-A").join("chats");
    let cloud = base.join("cloud-drive");
    let phone_b = base.join("phone-B").join("restored");
    if !json {
        println!("sealback demo in {}", base.display());
        println!("  phone-A/chats    the chat history on your phone");
        println!("  cloud-drive      your cloud drive (it only ever receives ciphertext)");
        println!("  phone-B/restored a new phone, restoring from the cloud");
    }

    step(json, 1, "Generating a realistic chat store on phone A (message database + photos, a video, voice notes)");
    let spec = ChatStoreSpec::demo(2026);
    let stats = sealback_corpus::generate(&phone_a, &spec).map_err(other)?;
    say(
        json,
        format!(
            "{} messages in {} chats, {} media files ({})",
            stats.messages,
            spec.chats,
            stats.files - 1,
            bytes(stats.media_bytes)
        ),
    );

    step(json, 2, "Turning on end-to-end encrypted backup");
    let store = Store::open(&cloud.to_string_lossy()).map_err(other)?;
    let key = RecoveryKey::generate(&mut sealback_engine::os_rng());
    let template = SlotTemplate {
        protector_type: ProtectorType::RECOVERY_KEY,
        name: "demo recovery key".into(),
        created_unix: (now_ns() / 1_000_000_000) as u64,
        params: vec![],
    };
    let mut repo = Repository::init(store.clone(), template, &key.to_secret()).await?;
    say(
        json,
        "a fresh 256-bit backup key was made on this device; it never leaves it in clear",
    );
    say(
        json,
        "it is sealed to a 64-digit recovery key, which a real app shows once:",
    );
    say(json, format!("    {}", key.display_groups().as_str()));

    let opts = |tag: &str| BackupOptions {
        hostname: hostname(),
        tags: vec![tag.to_string()],
        time_unix_ns: now_ns(),
        ..Default::default()
    };
    step(json, 3, "First backup: everything is chunked, deduplicated, compressed where it pays, encrypted and packed");
    let bar = Bar::new(json);
    let first = backup(
        &mut repo,
        std::slice::from_ref(&phone_a),
        &opts("first"),
        &bar,
    )
    .await?;
    say(
        json,
        format!(
            "snapshot {}: {} files, {} read, {} uploaded in {:.1} s",
            first.snapshot_id.short(),
            first.summary.files,
            bytes(first.summary.bytes_read),
            bytes(first.summary.bytes_added),
            first.duration.as_secs_f64()
        ),
    );

    step(
        json,
        4,
        "A day of chatting: 2,000 new messages, 5 new photos, 2 media files deleted",
    );
    let day = DayOfUse {
        seed: 7,
        new_messages: 2_000,
        new_photos: 5,
        deleted_media: 2,
    };
    sealback_corpus::apply_day(&phone_a, &day).map_err(other)?;

    step(json, 5, "Second backup: only what changed is uploaded");
    let second = backup(
        &mut repo,
        std::slice::from_ref(&phone_a),
        &opts("second"),
        &bar,
    )
    .await?;
    let ratio = second.summary.bytes_added as f64 / first.summary.bytes_added.max(1) as f64;
    say(
        json,
        format!(
            "snapshot {}: {} read, {} uploaded ({:.0}% of the first backup)",
            second.snapshot_id.short(),
            bytes(second.summary.bytes_read),
            bytes(second.summary.bytes_added),
            ratio * 100.0
        ),
    );
    drop(repo);

    step(
        json,
        6,
        "New phone B: nothing but the cloud drive and the recovery key",
    );
    let started = Instant::now();
    let mut protector =
        RecoveryKeyProtector(RecoveryKey::parse(&key.display_groups()).map_err(other)?);
    let mut repo = Repository::open(store, &mut protector).await?;
    let report = check::check(&mut repo, true, &bar).await?.into_result()?;
    say(
        json,
        format!(
            "check --read-data: {} packs, {} authenticated, no problems",
            report.packs,
            bytes(report.bytes_verified)
        ),
    );
    let (latest, _) = repo.find_snapshot("latest").await?;
    let restored = restore::restore(&mut repo, &latest, &phone_b, &bar).await?;
    say(
        json,
        format!(
            "restored {} files ({}) in {:.1} s",
            restored.files,
            bytes(restored.bytes),
            started.elapsed().as_secs_f64()
        ),
    );

    step(json, 7, "Verifying phone B holds exactly phone A's chats");
    let cmp = sealback_corpus::compare(&phone_a, &phone_b.join("chats")).map_err(other)?;
    if !cmp.differences.is_empty() {
        return Err(CliError::Other(format!(
            "the restore differs: {}",
            cmp.differences.join("; ")
        )));
    }
    say(
        json,
        format!(
            "identical: {} files, {} database rows, PRAGMA integrity_check = ok",
            cmp.files, cmp.rows
        ),
    );
    let leaked = find_plaintext(&phone_a, &cloud).map_err(other)?;
    if leaked {
        return Err(CliError::Other(
            "a message text was found in the cloud drive's bytes".into(),
        ));
    }
    say(
        json,
        "and the cloud drive's bytes contain none of the messages' text",
    );

    if json {
        println!(
            "{}",
            json!({
                "dir": base,
                "first": {"snapshot_id": first.snapshot_id.to_hex(), "bytes_read": first.summary.bytes_read, "bytes_added": first.summary.bytes_added, "duration_s": first.duration.as_secs_f64()},
                "second": {"snapshot_id": second.snapshot_id.to_hex(), "bytes_read": second.summary.bytes_read, "bytes_added": second.summary.bytes_added, "duration_s": second.duration.as_secs_f64()},
                "restore": {"files": restored.files, "bytes": restored.bytes},
                "identical": true, "rows_compared": cmp.rows,
            })
        );
    } else {
        println!(
            "\nDone. Everything is left in {} to look at.",
            base.display()
        );
        println!(
            "Try: sealback --repo {} snapshots   (it will ask for the recovery key above)",
            cloud.display()
        );
    }
    Ok(())
}

/// Whether any of a sample of long message texts appears in the repository's bytes.
fn find_plaintext(chat_store: &Path, repo: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let conn = rusqlite_free_sample(chat_store)?;
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p)?;
            if conn
                .iter()
                .any(|needle| bytes.windows(needle.len()).any(|w| w == needle.as_slice()))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A few distinctive byte strings from the chat store: the database header and long runs of
/// media bytes, which any unencrypted copy would contain.
fn rusqlite_free_sample(chat_store: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = vec![b"CREATE TABLE messages".to_vec()];
    for m in sealback_corpus::list_media(chat_store)?.iter().take(3) {
        let b = std::fs::read(m)?;
        if b.len() > 4096 {
            out.push(b[2048..2048 + 64].to_vec());
        }
    }
    Ok(out)
}
