//! # sealback-corpus: realistic chat stores, reproducibly
//!
//! This crate owns one thing: generating, from a seed, a folder that looks like a messaging
//! app's local chat history (a SQLite message database in WAL mode with contacts, chats,
//! messages and indexes; photos, videos and voice notes of realistic, incompressible content),
//! and changing it the way a day of use does. Tests, benchmarks and `sealback demo` use it.
//!
//! It must not know about backups, keys or storage.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{params, Connection};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to generate. Sizes are ranges in bytes; counts are exact.
#[derive(Clone, Debug)]
pub struct ChatStoreSpec {
    /// RNG seed: the same spec gives the same bytes.
    pub seed: u64,
    /// Contacts.
    pub contacts: usize,
    /// Chats (one-to-one and groups).
    pub chats: usize,
    /// Messages.
    pub messages: usize,
    /// Photos.
    pub photos: usize,
    /// Photo sizes.
    pub photo_size: (usize, usize),
    /// Videos.
    pub videos: usize,
    /// Video sizes.
    pub video_size: (usize, usize),
    /// Voice notes.
    pub voice_notes: usize,
    /// Voice note sizes.
    pub voice_size: (usize, usize),
}

/// Realistic media sizes: photos 100 KB-4 MB, videos 5-60 MB, voice notes 10-300 KB.
pub const PHOTO_SIZE: (usize, usize) = (100_000, 4_000_000);
/// See [`PHOTO_SIZE`].
pub const VIDEO_SIZE: (usize, usize) = (5_000_000, 60_000_000);
/// See [`PHOTO_SIZE`].
pub const VOICE_SIZE: (usize, usize) = (10_000, 300_000);

impl ChatStoreSpec {
    /// A small store for tests: about 3 MB.
    pub fn tiny(seed: u64) -> Self {
        Self {
            seed,
            contacts: 40,
            chats: 12,
            messages: 3_000,
            photos: 6,
            photo_size: (100_000, 400_000),
            videos: 0,
            video_size: VIDEO_SIZE,
            voice_notes: 8,
            voice_size: VOICE_SIZE,
        }
    }

    /// The demo's store: realistic sizes, about 40 MB.
    pub fn demo(seed: u64) -> Self {
        Self {
            seed,
            contacts: 150,
            chats: 40,
            messages: 25_000,
            photos: 14,
            photo_size: PHOTO_SIZE,
            videos: 1,
            video_size: (5_000_000, 8_000_000),
            voice_notes: 25,
            voice_size: VOICE_SIZE,
        }
    }

    /// A store of about `bytes`, with the proportions of a real one: a message database of
    /// about 15%, the rest media.
    pub fn sized(seed: u64, bytes: u64) -> Self {
        let db = bytes as f64 * 0.15;
        let media = bytes as f64 * 0.85;
        // A message row with its index entries costs about 160 bytes.
        let messages = (db / 160.0) as usize;
        // Average media sizes: photo 2 MB, video 32 MB, voice 155 KB; by bytes 45/50/5 %.
        Self {
            seed,
            contacts: (messages / 400).clamp(20, 5_000),
            chats: (messages / 2_000).clamp(5, 1_000),
            messages,
            photos: (media * 0.45 / 2.05e6) as usize,
            photo_size: PHOTO_SIZE,
            videos: (media * 0.50 / 32.5e6) as usize,
            video_size: VIDEO_SIZE,
            voice_notes: (media * 0.05 / 155e3) as usize,
            voice_size: VOICE_SIZE,
        }
    }
}

/// Errors while generating.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// SQLite.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The message database's file name inside a chat store.
pub const DATABASE: &str = "msgstore.db";

const WORDS: &[&str] = &[
    "ok",
    "yes",
    "no",
    "haha",
    "see",
    "you",
    "tomorrow",
    "tonight",
    "at",
    "the",
    "station",
    "love",
    "this",
    "photo",
    "where",
    "are",
    "we",
    "meeting",
    "running",
    "late",
    "sorry",
    "thanks",
    "so",
    "much",
    "did",
    "get",
    "my",
    "message",
    "call",
    "me",
    "when",
    "free",
    "happy",
    "birthday",
    "dinner",
    "is",
    "ready",
    "bring",
    "kids",
    "school",
    "pick",
    "up",
    "train",
    "delayed",
    "again",
    "weekend",
    "plans",
    "beach",
    "coffee",
    "lunch",
    "meeting",
    "moved",
    "to",
    "three",
    "great",
    "news",
    "congrats",
    "miss",
    "already",
    "what",
    "time",
    "flight",
    "lands",
    "landed",
    "home",
    "safe",
    "good",
    "night",
    "morning",
    "weather",
    "rain",
    "sun",
    "match",
    "score",
    "won",
    "lost",
    "send",
    "address",
    "link",
    "recipe",
    "doctor",
    "appointment",
    "car",
    "keys",
    "forgot",
];

fn sentence(rng: &mut ChaCha8Rng) -> String {
    // Mostly short messages, a few long ones.
    let n = if rng.random_bool(0.08) {
        rng.random_range(30..120)
    } else {
        rng.random_range(1..16)
    };
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s
}

/// What was generated or changed.
#[derive(Clone, Debug, Default)]
pub struct CorpusStats {
    /// Files written.
    pub files: usize,
    /// Bytes written to media files.
    pub media_bytes: u64,
    /// Messages inserted.
    pub messages: usize,
    /// Media files deleted.
    pub deleted: usize,
}

/// Generates a chat store in `dir` (created if missing).
pub fn generate(dir: &Path, spec: &ChatStoreSpec) -> Result<CorpusStats, CorpusError> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    std::fs::create_dir_all(dir)?;
    let mut stats = CorpusStats::default();
    let conn = Connection::open(dir.join(DATABASE))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS contacts(id INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS chats(id INTEGER PRIMARY KEY, title TEXT NOT NULL, is_group INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS messages(
             id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL REFERENCES chats(id),
             sender_id INTEGER REFERENCES contacts(id), ts INTEGER NOT NULL,
             body TEXT, media_path TEXT, status INTEGER NOT NULL DEFAULT 0);
         CREATE INDEX IF NOT EXISTS messages_by_chat ON messages(chat_id, ts);
         CREATE INDEX IF NOT EXISTS messages_by_sender ON messages(sender_id);",
    )?;
    {
        let tx = conn.unchecked_transaction()?;
        for i in 0..spec.contacts {
            tx.execute(
                "INSERT INTO contacts(id, name, phone) VALUES (?1, ?2, ?3)",
                params![
                    i as i64 + 1,
                    format!("{} {}", WORDS[rng.random_range(0..WORDS.len())], i),
                    format!("+1555{:07}", rng.random_range(0..10_000_000u32))
                ],
            )?;
        }
        for i in 0..spec.chats {
            tx.execute(
                "INSERT INTO chats(id, title, is_group) VALUES (?1, ?2, ?3)",
                params![
                    i as i64 + 1,
                    format!("chat {i}"),
                    rng.random_bool(0.3) as i64
                ],
            )?;
        }
        tx.commit()?;
    }
    let media = write_media(dir, &mut rng, spec, 0, &mut stats)?;
    insert_messages(
        &conn,
        &mut rng,
        spec.messages,
        spec.chats,
        spec.contacts,
        &media,
        1_600_000_000,
    )?;
    stats.messages = spec.messages;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    stats.files += 1;
    Ok(stats)
}

struct MediaKind {
    folder: &'static str,
    prefix: &'static str,
    ext: &'static str,
    count: usize,
    size: (usize, usize),
    magic: &'static [u8],
}

fn write_media(
    dir: &Path,
    rng: &mut ChaCha8Rng,
    spec: &ChatStoreSpec,
    serial_base: usize,
    stats: &mut CorpusStats,
) -> Result<Vec<String>, CorpusError> {
    let kinds = [
        MediaKind {
            folder: "Media/Photos",
            prefix: "IMG",
            ext: "jpg",
            count: spec.photos,
            size: spec.photo_size,
            magic: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        },
        MediaKind {
            folder: "Media/Video",
            prefix: "VID",
            ext: "mp4",
            count: spec.videos,
            size: spec.video_size,
            magic: b"\x00\x00\x00\x20ftypmp42",
        },
        MediaKind {
            folder: "Media/Voice Notes",
            prefix: "PTT",
            ext: "opus",
            count: spec.voice_notes,
            size: spec.voice_size,
            magic: b"OggS\x00\x02",
        },
    ];
    let mut names = vec![];
    for MediaKind {
        folder,
        prefix,
        ext,
        count,
        size: (lo, hi),
        magic,
    } in kinds
    {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d)?;
        for i in 0..count {
            let size = rng.random_range(lo..=hi);
            let name = format!(
                "{folder}/{prefix}-2026{:04}-WA{:05}.{ext}",
                101 + (i % 1200),
                serial_base + i
            );
            write_random_file(&dir.join(&name), size, magic, rng)?;
            stats.files += 1;
            stats.media_bytes += size as u64;
            names.push(name);
        }
    }
    Ok(names)
}

/// Writes `size` bytes of incompressible content behind a format's magic bytes.
fn write_random_file(
    path: &Path,
    size: usize,
    magic: &[u8],
    rng: &mut ChaCha8Rng,
) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    f.write_all(&magic[..magic.len().min(size)])?;
    let mut left = size.saturating_sub(magic.len());
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn insert_messages(
    conn: &Connection,
    rng: &mut ChaCha8Rng,
    count: usize,
    chats: usize,
    contacts: usize,
    media: &[String],
    ts_base: i64,
) -> Result<(), CorpusError> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO messages(chat_id, sender_id, ts, body, media_path, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut ts = ts_base;
        for i in 0..count {
            ts += rng.random_range(1..600);
            let media_path = (!media.is_empty() && i % (count / media.len().max(1)).max(1) == 0)
                .then(|| media[rng.random_range(0..media.len())].clone());
            stmt.execute(params![
                rng.random_range(1..=chats.max(1)) as i64,
                rng.random_range(1..=contacts.max(1)) as i64,
                ts,
                sentence(rng),
                media_path,
                rng.random_range(0..4)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A day of use: new messages in many chats, new photos, some media deleted.
#[derive(Clone, Debug)]
pub struct DayOfUse {
    /// RNG seed.
    pub seed: u64,
    /// Messages to add.
    pub new_messages: usize,
    /// Photos to add.
    pub new_photos: usize,
    /// Media files to delete.
    pub deleted_media: usize,
}

/// Applies a [`DayOfUse`] to a chat store made by [`generate`].
pub fn apply_day(dir: &Path, day: &DayOfUse) -> Result<CorpusStats, CorpusError> {
    let mut rng = ChaCha8Rng::seed_from_u64(day.seed);
    let mut stats = CorpusStats::default();
    let conn = Connection::open(dir.join(DATABASE))?;
    let (chats, contacts, last_ts): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT count(*) FROM chats), (SELECT count(*) FROM contacts), (SELECT coalesce(max(ts), 0) FROM messages)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut media_files = list_media(dir)?;
    media_files.sort();
    for _ in 0..day.deleted_media.min(media_files.len()) {
        let victim = media_files.remove(rng.random_range(0..media_files.len()));
        std::fs::remove_file(&victim)?;
        stats.deleted += 1;
    }
    let spec = ChatStoreSpec {
        seed: day.seed,
        contacts: 0,
        chats: 0,
        messages: 0,
        photos: day.new_photos,
        photo_size: PHOTO_SIZE,
        videos: 0,
        video_size: VIDEO_SIZE,
        voice_notes: 0,
        voice_size: VOICE_SIZE,
    };
    let serial = 50_000 + (day.seed % 40_000) as usize;
    let new_media = write_media(dir, &mut rng, &spec, serial, &mut stats)?;
    insert_messages(
        &conn,
        &mut rng,
        day.new_messages,
        chats as usize,
        contacts as usize,
        &new_media,
        last_ts,
    )?;
    // Read receipts: a real app also updates old rows.
    conn.execute(
        "UPDATE messages SET status = 3 WHERE id IN (SELECT id FROM messages ORDER BY random() LIMIT ?1)",
        params![(day.new_messages / 4) as i64],
    )?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    stats.messages = day.new_messages;
    Ok(stats)
}

/// Every media file under a chat store.
pub fn list_media(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let media = dir.join("Media");
    if !media.exists() {
        return Ok(out);
    }
    for sub in std::fs::read_dir(media)? {
        let sub = sub?.path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub)? {
                out.push(f?.path());
            }
        }
    }
    Ok(out)
}

/// How two chat stores differ; empty when they hold the same chats and media.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Files compared.
    pub files: usize,
    /// Databases compared row by row.
    pub databases: usize,
    /// Rows compared.
    pub rows: u64,
    /// Differences found.
    pub differences: Vec<String>,
}

fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|_| &head == b"SQLite format 3\0")
        .unwrap_or(false)
}

fn sidecar(name: &str) -> bool {
    name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")
}

fn files_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if !sidecar(&p.file_name().unwrap_or_default().to_string_lossy()) {
                out.push(p.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every row of every table, in rowid order, as text.
fn dump_database(path: &Path) -> Result<(Vec<String>, String), CorpusError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tables.retain(|t| !t.starts_with("sqlite_"));
    let mut rows = vec![];
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY rowid"))?;
        let n = stmt.column_count();
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            let mut line = format!("{t}:");
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                line.push_str(&format!("{v:?}|"));
            }
            rows.push(line);
        }
    }
    Ok((rows, integrity))
}

/// Compares two chat stores: databases by their rows (and `PRAGMA integrity_check` of the
/// second), every other file by its bytes.
pub fn compare(original: &Path, restored: &Path) -> Result<Comparison, CorpusError> {
    let mut c = Comparison::default();
    let a = files_under(original)?;
    let b = files_under(restored)?;
    for missing in a.iter().filter(|p| !b.contains(p)) {
        c.differences
            .push(format!("{} is missing", missing.display()));
    }
    for extra in b.iter().filter(|p| !a.contains(p)) {
        c.differences.push(format!("{} is extra", extra.display()));
    }
    for rel in a.iter().filter(|p| b.contains(p)) {
        c.files += 1;
        let (pa, pb) = (original.join(rel), restored.join(rel));
        if is_sqlite(&pa) {
            c.databases += 1;
            let (ra, _) = dump_database(&pa)?;
            let (rb, integrity) = dump_database(&pb)?;
            if integrity != "ok" {
                c.differences.push(format!(
                    "{}: integrity_check says {integrity}",
                    rel.display()
                ));
            }
            c.rows += ra.len() as u64;
            if ra != rb {
                c.differences.push(format!(
                    "{}: rows differ ({} vs {})",
                    rel.display(),
                    ra.len(),
                    rb.len()
                ));
            }
        } else if std::fs::read(&pa)? != std::fs::read(&pb)? {
            c.differences
                .push(format!("{}: bytes differ", rel.display()));
        }
    }
    Ok(c)
}
