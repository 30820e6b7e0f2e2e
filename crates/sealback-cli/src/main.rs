//! # sealback: the command
//!
//! This crate owns the command line: parsing flags, `SEALBACK_*` variables and the config file,
//! prompting, progress bars, human and `--json` output, and exit codes. It holds no logic a
//! library user would need: every operation is a call into `sealback-engine`.
//!
//! Exit codes: 0 success; 1 other error; 2 usage; 3 could not unlock; 4 integrity failure;
//! 5 refused by the key vault; 6 repository busy (a prune, or a backup while pruning: try again);
//! 7 the drive that holds the repository is full (free space, then try again).

mod cli;
mod commands;
mod demo;
mod keys;
mod output;
mod realms;
mod schedule;
mod settings;
mod unlock;

use clap::Parser;
use std::process::ExitCode;

/// Exit codes of the CLI contract.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other error.
    pub const OTHER: u8 = 1;
    /// Bad usage.
    pub const USAGE: u8 = 2;
    /// Could not unlock.
    pub const UNLOCK: u8 = 3;
    /// Integrity failure.
    pub const INTEGRITY: u8 = 4;
    /// Refused by the key vault.
    pub const VAULT: u8 = 5;
    /// The repository is busy (another operation holds its lock); nothing was changed.
    pub const BUSY: u8 = 6;
    /// The drive that holds the repository is full; nothing saved before was lost.
    pub const DRIVE_FULL: u8 = 7;
}

/// glibc gives threads that allocate at once their own heaps ("arenas", up to 8 per core) and
/// keeps what each one freed for later use by that heap. A restore passes 4 MiB buffers between
/// many threads (runtime, blocking pool, opening threads): with the default it peaked at 206 MiB
/// of memory on the 2 GiB benchmark store, with two arenas at 97 MiB and one at 91 MiB, no
/// slower (bench/RESULTS.md, memory). Two keep the two runtime workers from contending on one
/// lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes the allocator's tuning, with a valid option and value; it
    // runs first in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    let args = cli::Cli::parse();
    output::init_logging(args.global.verbose);
    let json = args.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            output::report_error(&e, json);
            ExitCode::from(e.exit_code())
        }
    }
}
