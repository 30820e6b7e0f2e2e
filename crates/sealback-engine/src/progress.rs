//! Progress reporting: the engine says what it is doing; the CLI or web UI decides how to show
//! it. Messages never carry file contents or key material; file names stay in the process.

/// Receives progress events. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A phase begins ("backup", "restore", "check"), with its total bytes when known.
    fn start(&self, _phase: &str, _total_bytes: Option<u64>) {}
    /// `bytes` more were processed.
    fn advance(&self, _bytes: u64) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
