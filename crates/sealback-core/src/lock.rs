//! Repository locks (SPEC §11a): who is working on the repository, so that `prune` never
//! deletes data that a running backup is about to refer to.
//!
//! ```text
//! lock body = version(1)=1 ‖ kind(u8: 1 shared, 2 exclusive) ‖ time(i64, ns since the epoch)
//!             ‖ hostname(bytes16) ‖ pid(u32) ‖ operation(bytes16)
//! ```
//! A lock is an object of type Lock named by a random id, stored as `locks/<id>`. The rules for
//! taking, refreshing and judging locks stale are in the engine, which owns the clock.

use crate::codec::{FormatError, Reader, Writer};

const LOCK_VERSION: u8 = 1;
/// Longest hostname or operation name accepted.
const MAX_TEXT: usize = 1024;

/// Whether a lock may be held alongside others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Backup, restore, check, forget: any number at once, but not with an exclusive lock.
    Shared,
    /// Prune: alone.
    Exclusive,
}

/// One lock record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRecord {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// When it was taken or last refreshed, nanoseconds since the Unix epoch.
    pub time_unix_ns: i64,
    /// The machine holding it.
    pub hostname: String,
    /// The process holding it.
    pub pid: u32,
    /// What the holder is doing (`backup`, `prune`, ...), for messages.
    pub operation: String,
}

impl LockRecord {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(24 + self.hostname.len() + self.operation.len());
        w.u8(LOCK_VERSION)
            .u8(match self.kind {
                LockKind::Shared => 1,
                LockKind::Exclusive => 2,
            })
            .i64(self.time_unix_ns)
            .bytes_u16(self.hostname.as_bytes())
            .u32(self.pid)
            .bytes_u16(self.operation.as_bytes());
        w.into_inner()
    }

    /// Decodes a body.
    pub fn decode(body: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(body, "lock");
        r.version_u8(LOCK_VERSION)?;
        let kind = match r.u8()? {
            1 => LockKind::Shared,
            2 => LockKind::Exclusive,
            k => {
                return Err(FormatError::invalid(
                    "lock",
                    format!("unknown lock kind {k}"),
                ))
            }
        };
        let time_unix_ns = r.i64()?;
        let hostname = r.string_u16(MAX_TEXT)?;
        let pid = r.u32()?;
        let operation = r.string_u16(MAX_TEXT)?;
        r.finish()?;
        Ok(Self {
            kind,
            time_unix_ns,
            hostname,
            pid,
            operation,
        })
    }
}
