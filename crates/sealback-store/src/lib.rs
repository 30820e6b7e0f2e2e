//! # sealback-store: where the encrypted objects live
//!
//! This crate owns access to cloud drives through Apache OpenDAL, addressed by URL: a plain
//! path or `file://` (the embedded default), `memory://` (tests). It reads, writes, lists and
//! deletes opaque objects by path, retries transient failures, and turns backend errors into a
//! small [`StoreError`] whose messages name the path and the operation.
//!
//! It must not know what the objects are: it never sees a key, a plaintext or a format. The
//! repository layout (`config`, `keys`, `packs/…`) belongs to `sealback-engine`.

use opendal::{Buffer, ErrorKind, Operator};
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attempts per operation: the first and up to 5 retries of a transient failure, waiting
/// 50 ms, 100 ms, ... up to 2 s in between (about 3 s in all).
pub const MAX_ATTEMPTS: u32 = 6;
const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Faults injected below the retry logic, for tests of how the engine copes with a flaky or
/// slow cloud drive. Never set in normal use.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every `fail_every`-th operation fails with a transient error before it reaches the
    /// backend (0: never; 1: every operation, an outage).
    pub fail_every: u64,
    /// Every operation waits this long first.
    pub latency: Duration,
    /// A drive that fills up: writes that do not fit fail as a full disk fails them.
    pub drive: Option<DriveLimit>,
}

/// A small drive for tests of a backup that fills it (file locations only). A write that does
/// not fit writes what fits through OpenDAL's fs writer (into its temporary file) and then
/// fails with the error OpenDAL makes of `ENOSPC`, as a real full disk does.
#[derive(Clone, Debug)]
pub struct DriveLimit {
    /// The drive's folder: the repository, or a folder that holds it and other files. What is
    /// used is the size of every file under it (temporary files too).
    pub dir: std::path::PathBuf,
    /// Bytes the drive holds.
    pub capacity: u64,
}

impl DriveLimit {
    /// Bytes that still fit.
    fn room(&self) -> u64 {
        self.capacity.saturating_sub(dir_size(&self.dir))
    }
}

/// The error OpenDAL's fs backend returns when the disk is full (`ENOSPC`, 28 on Linux and
/// macOS).
fn drive_full() -> opendal::Error {
    opendal::raw::new_std_io_error(std::io::Error::from_raw_os_error(28))
}

fn temp_dir_error(dir: &std::path::Path, e: std::io::Error) -> StoreError {
    StoreError::Location(format!(
        "cannot clean the temporary folder {}: {e}",
        dir.display()
    ))
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[derive(Debug, Default)]
struct FaultState {
    plan: Faults,
    operations: AtomicU64,
    injected: AtomicU64,
    /// Writes to a limited drive one at a time, so two cannot both take the last free bytes.
    drive_writes: tokio::sync::Mutex<()>,
}

/// A storage failure, with the object path it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object does not exist.
    #[error("{path} is missing from storage")]
    NotFound {
        /// Object path.
        path: String,
    },
    /// A create-only write found the object already there.
    #[error("{path} already exists in storage")]
    AlreadyExists {
        /// Object path.
        path: String,
    },
    /// The object is shorter than the range asked for: it was truncated.
    #[error("{path} is truncated: {detail}")]
    Truncated {
        /// Object path.
        path: String,
        /// What was expected.
        detail: String,
    },
    /// The backend failed.
    #[error("storage could not {op} {path}: {source}")]
    Backend {
        /// What was attempted.
        op: &'static str,
        /// Object path.
        path: String,
        /// The backend's error.
        #[source]
        source: Box<opendal::Error>,
    },
    /// The drive is full (or the account's quota is used up): the write did not fit, and
    /// nothing of it was left behind.
    #[error("the drive that holds {location} is full: {path} did not fit")]
    Full {
        /// The store's location.
        location: String,
        /// Object path.
        path: String,
    },
    /// A folder repository (fs backend) holds a link where sealback keeps a file or folder.
    /// Links are never followed: whoever writes to the drive (a synced folder, a USB drive)
    /// would otherwise make sealback read, write or delete the person's files elsewhere.
    #[error("{path} in the repository folder is a link, which sealback never makes: it follows no link, so that whoever writes to the drive cannot make it read or delete files outside the repository. Nothing was changed there; remove the link and try again")]
    Link {
        /// The object path (or the part of it) that is a link.
        path: String,
    },
    /// The location URL is not usable.
    #[error("{0}")]
    Location(String),
}

/// Whether a backend error means "no space left" (`ENOSPC`, or `EDQUOT` of a quota). Such a
/// failure is not transient: retrying only leaves more temporary files on the full drive.
fn is_full(e: &opendal::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{QuotaExceeded, StorageFull};
            return matches!(io.kind(), StorageFull | QuotaExceeded);
        }
        source = s.source();
    }
    false
}

fn map_err(op: &'static str, path: &str, e: opendal::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound { path: path.into() },
        ErrorKind::RangeNotSatisfied => StoreError::Truncated {
            path: path.into(),
            detail: "a range read reaches past its end".into(),
        },
        // HTTP backends answer a range past the end with fewer bytes; OpenDAL's reader then
        // reports the shortfall as an unexpected error.
        ErrorKind::Unexpected if e.to_string().contains("got too little data") => {
            StoreError::Truncated {
                path: path.into(),
                detail: "the object is shorter than the range read".into(),
            }
        }
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => {
            StoreError::AlreadyExists { path: path.into() }
        }
        _ => StoreError::Backend {
            op,
            path: path.into(),
            source: Box::new(e),
        },
    }
}

/// The TLS provider for HTTP backends (ring, like the rest of sealback); idempotent;
/// and the process-wide HTTP client OpenDAL uses for them.
fn http_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    opendal_http_transport_reqwest::install_default();
}

/// The first of `vars` that is set, or an error that says what to set.
fn credential(vars: &[&str], service: &str, what: &str) -> Result<String, StoreError> {
    vars.iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            StoreError::Location(format!("{service} needs {what}: set {}", vars.join(" or ")))
        })
}

/// Query parameters of a location (`?endpoint=...&region=...`); values are not secrets.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `s3://BUCKET/PREFIX?endpoint=URL&region=R`; keys from `SEALBACK_S3_ACCESS_KEY_ID` /
/// `SEALBACK_S3_SECRET_ACCESS_KEY` (or the `AWS_` ones). ~/.aws is not read.
fn s3(rest: &str) -> Result<Operator, StoreError> {
    http_tls();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(StoreError::Location(
            "an S3 location is s3://BUCKET/PREFIX[?endpoint=URL&region=REGION]".into(),
        ));
    }
    let mut b = opendal::services::S3::default()
        .bucket(bucket)
        .root(&format!("/{prefix}"))
        .disable_config_load()
        .disable_ec2_metadata();
    let mut region = None;
    for (k, v) in query_params(query) {
        match k.as_str() {
            "endpoint" => b = b.endpoint(&v),
            "region" => region = Some(v),
            other => {
                return Err(StoreError::Location(format!(
                    "unknown S3 option {other:?} (use endpoint and region)"
                )))
            }
        }
    }
    b = b.region(region.as_deref().unwrap_or("us-east-1"));
    let key = credential(
        &["SEALBACK_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"],
        "S3",
        "an access key",
    )?;
    let secret = credential(
        &["SEALBACK_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"],
        "S3",
        "a secret key",
    )?;
    b = b.access_key_id(&key).secret_access_key(&secret);
    Operator::new(b).map_err(|e| StoreError::Location(format!("cannot open s3://{path}: {e}")))
}

/// `webdav+https://HOST[:PORT]/PATH` (or `webdav+http://` on loopback); user and password from
/// `SEALBACK_WEBDAV_USER` / `SEALBACK_WEBDAV_PASSWORD` when set.
fn webdav(scheme: &str, rest: &str) -> Result<Operator, StoreError> {
    http_tls();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(StoreError::Location(
            "a WebDAV location is webdav+https://HOST/PATH".into(),
        ));
    }
    let loopback =
        host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]");
    if scheme == "http" && !loopback {
        return Err(StoreError::Location(format!(
            "refusing plain-HTTP WebDAV to {host}: use webdav+https:// (plain HTTP only on loopback)"
        )));
    }
    let mut b = opendal::services::Webdav::default()
        .endpoint(&format!("{scheme}://{host}"))
        .root(&format!("/{path}"));
    if let Ok(user) = std::env::var("SEALBACK_WEBDAV_USER") {
        b = b.username(&user);
        b = b.password(&std::env::var("SEALBACK_WEBDAV_PASSWORD").unwrap_or_default());
    }
    Operator::new(b)
        .map_err(|e| StoreError::Location(format!("cannot open WebDAV {host}/{path}: {e}")))
}

/// An object store at one location.
#[derive(Clone)]
pub struct Store {
    op: Operator,
    location: String,
    faults: Option<Arc<FaultState>>,
    /// The fs backend's folder of temporary files ([`FS_TMP_DIR`]), for cleaning it.
    fs_temp: Option<std::path::PathBuf>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// Temporary folder for atomic writes on the fs backend, inside the repository so that a
/// rename never crosses file systems.
pub const FS_TMP_DIR: &str = ".tmp";

/// A temporary file not modified for this long was left by a sealback that was killed (a
/// failed write removes its own): a write in progress modifies its file at least every 2 MiB
/// it writes, so an hour is far beyond the slowest drive.
pub const TEMP_STALE: Duration = Duration::from_secs(60 * 60);

impl Store {
    /// Opens a location: a plain path or `file:///abs/path` (the default), `s3://BUCKET/PREFIX`,
    /// `webdav+https://HOST/PATH`, `gdrive://FOLDER`, `onedrive://FOLDER`, or `memory://`.
    /// Credentials come from `SEALBACK_*` environment variables, never from the URL.
    pub fn open(location: &str) -> Result<Self, StoreError> {
        let (scheme, rest) = match location.split_once("://") {
            Some((s, r)) => (s, r),
            None => ("file", location),
        };
        let mut fs_temp = None;
        let op = match scheme {
            "file" => {
                if rest.is_empty() {
                    return Err(StoreError::Location("the repository path is empty".into()));
                }
                let root = std::path::absolute(rest).map_err(|e| {
                    StoreError::Location(format!("cannot resolve repository path {rest}: {e}"))
                })?;
                let root = root.to_string_lossy().to_string();
                let tmp = format!("{}/{FS_TMP_DIR}", root.trim_end_matches('/'));
                fs_temp = Some(std::path::PathBuf::from(&tmp));
                let builder = opendal::services::Fs::default()
                    .root(&root)
                    .atomic_write_dir(&tmp);
                Operator::new(builder)
                    .map_err(|e| StoreError::Location(format!("cannot open {root}: {e}")))?
            }
            "memory" => Operator::new(opendal::services::Memory::default())
                .map_err(|e| StoreError::Location(format!("cannot open memory store: {e}")))?,
            "s3" => s3(rest)?,
            "webdav+http" | "webdav+https" => webdav(&scheme["webdav+".len()..], rest)?,
            "gdrive" => {
                http_tls();
                let token = credential(&["SEALBACK_GDRIVE_ACCESS_TOKEN"], "Google Drive", "an OAuth access token with the drive.file scope")?;
                Operator::new(opendal::services::Gdrive::default().root(&format!("/{rest}")).access_token(&token))
                    .map_err(|e| StoreError::Location(format!("cannot open Google Drive folder {rest}: {e}")))?
            }
            "onedrive" => {
                http_tls();
                let token = credential(&["SEALBACK_ONEDRIVE_ACCESS_TOKEN"], "OneDrive", "an OAuth access token with the Files.ReadWrite scope")?;
                Operator::new(opendal::services::Onedrive::default().root(&format!("/{rest}")).access_token(&token))
                    .map_err(|e| StoreError::Location(format!("cannot open OneDrive folder {rest}: {e}")))?
            }
            other => {
                return Err(StoreError::Location(format!(
                "unsupported storage scheme {other:?}: use a folder path, file://PATH, s3://BUCKET/PREFIX, webdav+https://HOST/PATH, gdrive://FOLDER, onedrive://FOLDER or memory://"
            )))
            }
        };
        Ok(Self {
            op,
            location: location.to_string(),
            faults: None,
            fs_temp,
        })
    }

    /// This store with injected faults (tests only).
    pub fn with_faults(mut self, plan: Faults) -> Self {
        self.faults = Some(Arc::new(FaultState {
            plan,
            ..Default::default()
        }));
        self
    }

    /// How many faults were injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.faults
            .as_ref()
            .map_or(0, |f| f.injected.load(Ordering::Relaxed))
    }

    async fn inject(&self) -> Option<opendal::Error> {
        let f = self.faults.as_ref()?;
        if !f.plan.latency.is_zero() {
            tokio::time::sleep(f.plan.latency).await;
        }
        let n = f.operations.fetch_add(1, Ordering::Relaxed) + 1;
        if f.plan.fail_every > 0 && n % f.plan.fail_every == 0 {
            f.injected.fetch_add(1, Ordering::Relaxed);
            return Some(
                opendal::Error::new(ErrorKind::Unexpected, "injected fault: connection reset")
                    .set_temporary(),
            );
        }
        None
    }

    /// Runs one operation, retrying transient failures with exponential backoff. Every
    /// operation here is idempotent (whole-object writes, reads, deletes), so a retry after a
    /// failure whose outcome is unknown is safe.
    async fn attempt<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        mut call: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = opendal::Result<T>>,
    {
        self.refuse_links(path)?;
        let mut delay = FIRST_DELAY;
        let mut attempt = 1;
        loop {
            let result = match self.inject().await {
                Some(e) => Err(e),
                None => call().await,
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if is_full(&e) => {
                    return Err(StoreError::Full {
                        location: self.location.clone(),
                        path: path.into(),
                    })
                }
                Err(e) if e.is_temporary() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(op, path, attempt, error = %e, "transient storage failure; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_DELAY);
                    attempt += 1;
                }
                Err(e) => return Err(map_err(op, path, e)),
            }
        }
    }

    /// The location as given (never holds credentials: those come from the environment).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Reads a whole object.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.attempt("read", path, || self.op.read(path))
            .await
            .map(|b| b.to_vec())
    }

    /// Reads `len` bytes at `offset`. A short object is an error, not a short read.
    pub async fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let buf = self
            .attempt("read", path, || {
                self.op
                    .read_with(path)
                    .range(offset..offset + len)
                    .into_future()
            })
            .await?;
        if buf.len() as u64 != len {
            return Err(StoreError::Truncated {
                path: path.into(),
                detail: format!("expected {len} bytes at offset {offset}, got {}", buf.len()),
            });
        }
        Ok(buf.to_vec())
    }

    /// Writes a whole object, replacing any previous one. On the fs backend the write is
    /// atomic (temporary file, then rename), so a reader never sees half an object.
    pub async fn write(&self, path: &str, data: Vec<u8>) -> Result<(), StoreError> {
        self.refuse_temp_link()?;
        let data = Buffer::from(data);
        self.attempt("write", path, || self.write_once(path, data.clone()))
            .await
    }

    /// One attempt at a write, as `Operator::write` makes it (a writer, one write, close).
    async fn write_once(&self, path: &str, data: Buffer) -> opendal::Result<()> {
        let drive = self
            .faults
            .as_ref()
            .and_then(|f| Some((f, f.plan.drive.as_ref()?)));
        let _one_at_a_time = match drive {
            Some((f, _)) => Some(f.drive_writes.lock().await),
            None => None,
        };
        let mut w = self.op.writer(path).await?;
        let written = match drive.map(|(_, d)| d.room()) {
            Some(room) if room < data.len() as u64 => {
                match w.write(data.slice(..room as usize)).await {
                    Ok(()) => Err(drive_full()),
                    Err(e) => Err(e),
                }
            }
            _ => w.write(data).await,
        };
        let result = match written {
            Ok(()) => w.close().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            // `Operator::write` would drop the writer here and leave its temporary file (fs)
            // or multipart upload (S3) behind; abort removes it. Backends that cannot abort
            // say so, which changes nothing.
            if let Err(e) = w.abort().await {
                tracing::debug!(path, error = %e, "could not abort a failed write");
            }
        }
        result
    }

    /// Whether an object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.attempt("check", path, || self.op.exists(path)).await
    }

    /// When an object was last modified, by the clock of whoever stores it (the drive's, or
    /// this computer's for a folder); `None` when the backend does not say (the in-memory
    /// store). Used only for ages measured in minutes, never to order events.
    pub async fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>, StoreError> {
        let meta = self.attempt("stat", path, || self.op.stat(path)).await?;
        Ok(meta.last_modified().map(std::time::SystemTime::from))
    }

    /// The fs backend's folder (the repository itself).
    fn fs_root(&self) -> Option<&std::path::Path> {
        self.fs_temp.as_deref().and_then(std::path::Path::parent)
    }

    /// Fails with [`StoreError::Link`] when a part of `path` below a folder repository's root
    /// is a link (the root itself may be one: the person chose it).
    fn refuse_links(&self, path: &str) -> Result<(), StoreError> {
        let Some(root) = self.fs_root() else {
            return Ok(());
        };
        let mut at = root.to_path_buf();
        let mut shown = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push(part);
            shown = if shown.is_empty() {
                part.to_string()
            } else {
                format!("{shown}/{part}")
            };
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(StoreError::Link { path: shown })
                }
                Ok(_) => {}
                // Missing (or unreadable): nothing further down to follow.
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// Fails with [`StoreError::Link`] when the fs backend's temporary folder ([`FS_TMP_DIR`])
    /// is a link: writes go through it, and the clean-up of temporary files deletes old files
    /// in it, which through a link would be the person's own files elsewhere.
    fn refuse_temp_link(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.fs_temp else {
            return Ok(());
        };
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => Err(StoreError::Link {
                path: FS_TMP_DIR.into(),
            }),
            // A folder, or missing (the backend makes it; anything else fails there).
            _ => Ok(()),
        }
    }

    /// Object paths under `dir` (which ends in `/`), recursively, sorted.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.refuse_links(dir)?;
        if let Some(root) = self.fs_root() {
            // Walked here, not by the backend: its listing follows a link to a folder (and
            // lists what is there, for a turn-off to delete).
            let (root, dir) = (root.to_path_buf(), dir.to_string());
            let mut out = tokio::task::spawn_blocking(move || list_folder(&root, &dir))
                .await
                .map_err(|e| StoreError::Location(format!("listing stopped: {e}")))??;
            out.sort();
            return Ok(out);
        }
        let entries = match self
            .attempt("list", dir, || {
                self.op.list_with(dir).recursive(true).into_future()
            })
            .await
        {
            Ok(e) => e,
            Err(StoreError::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out: Vec<String> = entries
            .into_iter()
            .map(|e| e.path().to_string())
            .filter(|p| !p.ends_with('/'))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes the temporary files of the fs backend that were not modified for `older_than`
    /// (left by a sealback that was killed mid-write; see [`TEMP_STALE`]). Returns how many
    /// were removed; other backends have none.
    pub fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, StoreError> {
        let Some(dir) = &self.fs_temp else {
            return Ok(0);
        };
        self.refuse_temp_link()?;
        let entries = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(temp_dir_error(dir, e)),
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= older_than));
            if !stale {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Renamed into place or removed by its writer meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(temp_dir_error(dir, e)),
            }
        }
        Ok(removed)
    }

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.attempt("delete", path, || self.op.delete(path)).await
    }
}

/// The files under `dir` of the folder repository at `root`, as object paths; a link anywhere
/// below is [`StoreError::Link`], never followed.
fn list_folder(root: &std::path::Path, dir: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.trim_end_matches('/').to_string()];
    while let Some(prefix) = pending.pop() {
        let entries = match std::fs::read_dir(root.join(&prefix)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(folder_error(&prefix, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| folder_error(&prefix, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                // Removed between the listing and the look.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(folder_error(&path, e)),
            };
            if kind.is_symlink() {
                return Err(StoreError::Link { path });
            } else if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    Ok(out)
}

fn folder_error(path: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend {
        op: "list",
        path: path.into(),
        source: Box::new(
            opendal::Error::new(ErrorKind::Unexpected, "cannot list the folder").set_source(e),
        ),
    }
}
