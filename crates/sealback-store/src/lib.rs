//! # sealback-store: where the encrypted objects live
//!
//! This crate owns access to cloud drives through Apache OpenDAL, addressed by URL: a plain
//! path or `file://` (the embedded default), `memory://` (tests). It reads, writes, lists and
//! deletes opaque objects by path, retries transient failures, and turns backend errors into a
//! small [`StoreError`] whose messages name the path and the operation.
//!
//! It must not know what the objects are: it never sees a key, a plaintext or a format. The
//! repository layout (`config`, `keys`, `packs/…`) belongs to `sealback-engine`.

use opendal::layers::RetryLayer;
use opendal::{ErrorKind, Operator};
use std::time::Duration;

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
        let op = op.layer(
            RetryLayer::new()
                .with_jitter()
                .with_min_delay(Duration::from_millis(50))
                .with_max_times(5),
        );
        Ok(Self {
            op,
            location: location.to_string(),
        })
    }

    /// The location as given (never holds credentials: those come from the environment).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Reads a whole object.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.op
            .read(path)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| map_err("read", path, e))
    }

    /// Reads `len` bytes at `offset`. A short object is an error, not a short read.
    pub async fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let buf = self
            .op
            .read_with(path)
            .range(offset..offset + len)
            .await
            .map_err(|e| map_err("read", path, e))?;
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
        self.op
            .write(path, data)
            .await
            .map(|_| ())
            .map_err(|e| map_err("write", path, e))
    }

    /// Whether an object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, StoreError> {
        self.op
            .exists(path)
            .await
            .map_err(|e| map_err("check", path, e))
    }

    /// Object paths under `dir` (which ends in `/`), recursively, sorted.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let entries = match self.op.list_with(dir).recursive(true).await {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(map_err("list", dir, e)),
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
        self.op
            .delete(path)
            .await
            .map_err(|e| map_err("delete", path, e))
    }
}
