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
}

#[derive(Debug, Default)]
struct FaultState {
    plan: Faults,
    operations: AtomicU64,
    injected: AtomicU64,
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
    /// The location URL is not usable.
    #[error("{0}")]
    Location(String),
}

fn map_err(op: &'static str, path: &str, e: opendal::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound => StoreError::NotFound { path: path.into() },
        ErrorKind::RangeNotSatisfied => StoreError::Truncated {
            path: path.into(),
            detail: "a range read reaches past its end".into(),
        },
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

/// An object store at one location.
#[derive(Clone)]
pub struct Store {
    op: Operator,
    location: String,
    faults: Option<Arc<FaultState>>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// Temporary folder for atomic writes on the fs backend, inside the repository so that a
/// rename never crosses file systems.
pub const FS_TMP_DIR: &str = ".tmp";

impl Store {
    /// Opens a location: a plain path, `file:///abs/path`, or `memory://`.
    pub fn open(location: &str) -> Result<Self, StoreError> {
        let (scheme, rest) = match location.split_once("://") {
            Some((s, r)) => (s, r),
            None => ("file", location),
        };
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
                let builder = opendal::services::Fs::default()
                    .root(&root)
                    .atomic_write_dir(&tmp);
                Operator::new(builder)
                    .map_err(|e| StoreError::Location(format!("cannot open {root}: {e}")))?
            }
            "memory" => Operator::new(opendal::services::Memory::default())
                .map_err(|e| StoreError::Location(format!("cannot open memory store: {e}")))?,
            other => {
                return Err(StoreError::Location(format!(
                "unsupported storage scheme {other:?}: use a folder path, file://PATH or memory://"
            )))
            }
        };
        Ok(Self {
            op,
            location: location.to_string(),
            faults: None,
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
        let mut delay = FIRST_DELAY;
        let mut attempt = 1;
        loop {
            let result = match self.inject().await {
                Some(e) => Err(e),
                None => call().await,
            };
            match result {
                Ok(v) => return Ok(v),
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
        let data = Buffer::from(data);
        self.attempt("write", path, || self.op.write(path, data.clone()))
            .await
            .map(|_| ())
    }

    /// Whether an object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.attempt("check", path, || self.op.exists(path)).await
    }

    /// Object paths under `dir` (which ends in `/`), recursively, sorted.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
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

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.attempt("delete", path, || self.op.delete(path)).await
    }
}
