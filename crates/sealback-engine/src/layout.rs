//! Where things live in storage (SPEC §3).
//!
//! ```text
//! config                      plaintext: format version and repository id
//! keys                        keyslot file
//! packs/<2 hex>/<64 hex>      pack files, named by a random id
//! index/<64 hex>              index files
//! snapshots/<64 hex>          snapshot manifests
//! locks/<64 hex>              who is working on the repository
//! reserve                     random bytes that keep room for prune's lock on a full drive
//! ```

use sealback_core::Id;

/// The repository config.
pub const CONFIG: &str = "config";
/// The keyslot file.
pub const KEYS: &str = "keys";
/// Folder of packs.
pub const PACKS: &str = "packs/";
/// Folder of index files.
pub const INDEX: &str = "index/";
/// Folder of snapshots.
pub const SNAPSHOTS: &str = "snapshots/";

/// Space held back so that `prune` and `forget` can take their lock on a full drive: they
/// delete it when their lock does not fit, and write it again when done (SPEC §11a).
pub const RESERVE: &str = "reserve";
/// Size of [`RESERVE`]: room for a lock and its temporary copy many times over.
pub const RESERVE_LEN: usize = 64 << 10;

/// Folder of locks.
pub const LOCKS: &str = "locks/";

/// Path of a pack.
pub fn pack(id: &Id) -> String {
    let h = id.to_hex();
    format!("{PACKS}{}/{h}", &h[..2])
}
/// Path of an index file.
pub fn index(id: &Id) -> String {
    format!("{INDEX}{}", id.to_hex())
}
/// Path of a snapshot.
pub fn snapshot(id: &Id) -> String {
    format!("{SNAPSHOTS}{}", id.to_hex())
}

/// Path of a lock.
pub fn lock(id: &Id) -> String {
    format!("{LOCKS}{}", id.to_hex())
}

/// The id at the end of an object path, if it is one.
pub fn id_of(path: &str) -> Option<Id> {
    let name = path.rsplit('/').next()?;
    Id::from_hex(name).ok()
}
