//! Snapshots and trees (SPEC §11).
//!
//! A snapshot names a root tree; a tree is a sorted list of nodes; a file node lists the blobs
//! of its content, directly or through content-list blobs. Trees are blobs, so an unchanged
//! directory costs nothing in the next snapshot.

use crate::codec::{FormatError, Reader, Writer};
use crate::id::Id;

/// Snapshot layout version.
pub const SNAPSHOT_VERSION: u8 = 1;
/// Version 2: version 1 and the files the backup left out by setting (videos, when the
/// person chose to leave them out). Written only when something was left out.
pub const SNAPSHOT_VERSION_LEFT_OUT: u8 = 2;
/// Most files a snapshot lists as left out.
pub const MAX_LEFT_OUT: usize = 1 << 20;
/// Tree layout version.
pub const TREE_VERSION: u8 = 1;
/// Longest file name.
pub const MAX_NAME_LEN: usize = 4096;
const MAX_TEXT: usize = 64 * 1024;

/// What a backup run saw and stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files backed up.
    pub files: u64,
    /// Directories backed up.
    pub dirs: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes of new packs written to storage.
    pub bytes_added: u64,
    /// New blobs stored.
    pub blobs_added: u64,
}

/// A snapshot manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// When the backup started, nanoseconds since the Unix epoch.
    pub time_unix_ns: i64,
    /// The machine that made it.
    pub hostname: String,
    /// The source paths as given.
    pub paths: Vec<String>,
    /// Root tree blob.
    pub tree: Id,
    /// The snapshot this one was made relative to.
    pub parent: Option<Id>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Statistics.
    pub summary: Summary,
    /// Files left out by setting (paths under the snapshot's root, `/`-separated), so that a
    /// restore can say which; empty for version 1.
    pub left_out: Vec<String>,
}

impl Snapshot {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let version = if self.left_out.is_empty() {
            SNAPSHOT_VERSION
        } else {
            SNAPSHOT_VERSION_LEFT_OUT
        };
        w.u8(version)
            .i64(self.time_unix_ns)
            .bytes_u16(self.hostname.as_bytes())
            .u16(self.paths.len() as u16);
        for p in &self.paths {
            w.bytes_u16(p.as_bytes());
        }
        w.bytes(&self.tree.0);
        match &self.parent {
            Some(p) => w.u8(1).bytes(&p.0),
            None => w.u8(0),
        };
        w.u16(self.tags.len() as u16);
        for t in &self.tags {
            w.bytes_u16(t.as_bytes());
        }
        let s = &self.summary;
        w.u64(s.files)
            .u64(s.dirs)
            .u64(s.bytes_read)
            .u64(s.bytes_added)
            .u64(s.blobs_added);
        if !self.left_out.is_empty() {
            w.u32(self.left_out.len() as u32);
            for p in &self.left_out {
                w.bytes_u16(p.as_bytes());
            }
        }
        w.into_inner()
    }

    /// Decodes a body.
    pub fn decode(body: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(body, "snapshot");
        let version = r.u8()?;
        if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_LEFT_OUT {
            return Err(FormatError::UnsupportedVersion {
                what: "snapshot",
                found: version.into(),
                supported: SNAPSHOT_VERSION_LEFT_OUT.into(),
            });
        }
        let time_unix_ns = r.i64()?;
        let hostname = r.string_u16(MAX_TEXT)?;
        let n = r.u16()?;
        let n = r.count(n.into(), 2)?;
        let mut paths = Vec::with_capacity(n);
        for _ in 0..n {
            paths.push(r.string_u16(MAX_TEXT)?);
        }
        let tree = Id(r.array()?);
        let parent = match r.u8()? {
            0 => None,
            1 => Some(Id(r.array()?)),
            _ => return Err(FormatError::invalid("snapshot", "bad parent flag")),
        };
        let n = r.u16()?;
        let n = r.count(n.into(), 2)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push(r.string_u16(MAX_TEXT)?);
        }
        let summary = Summary {
            files: r.u64()?,
            dirs: r.u64()?,
            bytes_read: r.u64()?,
            bytes_added: r.u64()?,
            blobs_added: r.u64()?,
        };
        let left_out = if version == SNAPSHOT_VERSION_LEFT_OUT {
            decode_left_out(&mut r)?
        } else {
            vec![]
        };
        r.finish()?;
        Ok(Self {
            time_unix_ns,
            hostname,
            paths,
            tree,
            parent,
            tags,
            summary,
            left_out,
        })
    }
}

/// Version 2's list: `u32(n ≥ 1) ‖ n × bytes16(path)`.
fn decode_left_out(r: &mut Reader<'_>) -> Result<Vec<String>, FormatError> {
    let n = r.u32()? as usize;
    if n == 0 || n > MAX_LEFT_OUT {
        return Err(FormatError::invalid(
            "snapshot",
            "a version-2 snapshot lists 1 or more files left out",
        ));
    }
    let n = r.count(n as u64, 2)?;
    let mut left_out = Vec::with_capacity(n);
    for _ in 0..n {
        left_out.push(r.string_u16(MAX_TEXT)?);
    }
    Ok(left_out)
}

/// Where a file's content is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// The data blobs, in order.
    Blobs(Vec<Id>),
    /// Content-list blobs whose concatenated bodies are the data blob ids, in order.
    Lists(Vec<Id>),
}

/// File flag: the content is a consistent copy of a live SQLite database taken through the
/// online backup API.
pub const FLAG_SQLITE_SNAPSHOT: u8 = 1;

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// `FLAG_*` bits.
        flags: u8,
        /// Content blobs.
        content: Content,
    },
    /// A directory.
    Dir {
        /// The tree blob of its entries.
        subtree: Id,
    },
    /// A symbolic link.
    Symlink {
        /// Link target bytes.
        target: Vec<u8>,
    },
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// File name bytes: not empty, not `.` or `..`, no `/` or NUL.
    pub name: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
    /// Modification time, whole seconds since the Unix epoch (negative before 1970), as
    /// `st_mtim.tv_sec`.
    pub mtime_s: i64,
    /// Nanoseconds to add to `mtime_s` (always forward, also before 1970), below 10^9.
    pub mtime_ns: u32,
    /// What it is.
    pub kind: NodeKind,
}

impl Node {
    /// The modification time as a point in time: `mtime_s` seconds from the epoch (backwards
    /// when negative), then `mtime_ns` forward. `None` when the platform cannot represent it.
    pub fn mtime(&self) -> Option<std::time::SystemTime> {
        let epoch = std::time::UNIX_EPOCH;
        let secs = std::time::Duration::from_secs(self.mtime_s.unsigned_abs());
        let whole = if self.mtime_s >= 0 {
            epoch.checked_add(secs)
        } else {
            epoch.checked_sub(secs)
        };
        whole?.checked_add(std::time::Duration::from_nanos(self.mtime_ns.into()))
    }
}

/// Checks a name is a single safe path component, so a restore cannot escape its target.
pub fn validate_name(name: &[u8]) -> Result<(), FormatError> {
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name.len() > MAX_NAME_LEN
        || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(FormatError::invalid(
            "tree",
            "a file name is empty, '.', '..', too long, or contains '/' or NUL",
        ));
    }
    Ok(())
}

/// A directory listing, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries sorted by name, names unique.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Encodes the body (nodes must be sorted and valid).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TREE_VERSION).u32(self.nodes.len() as u32);
        for n in &self.nodes {
            w.bytes_u16(&n.name)
                .u32(n.mode)
                .i64(n.mtime_s)
                .u32(n.mtime_ns);
            match &n.kind {
                NodeKind::File {
                    size,
                    flags,
                    content,
                } => {
                    w.u8(1).u64(*size).u8(*flags);
                    let (k, ids) = match content {
                        Content::Blobs(ids) => (0, ids),
                        Content::Lists(ids) => (1, ids),
                    };
                    w.u8(k).u32(ids.len() as u32);
                    for id in ids {
                        w.bytes(&id.0);
                    }
                }
                NodeKind::Dir { subtree } => {
                    w.u8(2).bytes(&subtree.0);
                }
                NodeKind::Symlink { target } => {
                    w.u8(3).bytes_u16(target);
                }
            }
        }
        w.into_inner()
    }

    /// Decodes and validates a body.
    pub fn decode(body: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(body, "tree");
        r.version_u8(TREE_VERSION)?;
        let n = r.u32()?;
        let n = r.count(n.into(), 2 + 4 + 8 + 4 + 1)?;
        let mut nodes: Vec<Node> = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.bytes_u16(MAX_NAME_LEN)?.to_vec();
            validate_name(&name)?;
            if let Some(prev) = nodes.last() {
                if prev.name >= name {
                    return Err(FormatError::invalid(
                        "tree",
                        "names are not sorted and unique",
                    ));
                }
            }
            let mode = r.u32()?;
            let mtime_s = r.i64()?;
            let mtime_ns = r.u32()?;
            if mtime_ns >= 1_000_000_000 {
                return Err(FormatError::invalid("tree", "nanoseconds out of range"));
            }
            let kind = match r.u8()? {
                1 => {
                    let size = r.u64()?;
                    let flags = r.u8()?;
                    let k = r.u8()?;
                    let m = r.u32()?;
                    let m = r.count(m.into(), 32)?;
                    let mut ids = Vec::with_capacity(m);
                    for _ in 0..m {
                        ids.push(Id(r.array()?));
                    }
                    let content = match k {
                        0 => Content::Blobs(ids),
                        1 => Content::Lists(ids),
                        _ => return Err(FormatError::invalid("tree", "unknown content kind")),
                    };
                    NodeKind::File {
                        size,
                        flags,
                        content,
                    }
                }
                2 => NodeKind::Dir {
                    subtree: Id(r.array()?),
                },
                3 => NodeKind::Symlink {
                    target: r.bytes_u16(MAX_NAME_LEN)?.to_vec(),
                },
                k => {
                    return Err(FormatError::invalid(
                        "tree",
                        format!("unknown node kind {k}"),
                    ))
                }
            };
            nodes.push(Node {
                name,
                mode,
                mtime_s,
                mtime_ns,
                kind,
            });
        }
        r.finish()?;
        Ok(Self { nodes })
    }
}

/// Decodes a content-list body: concatenated 32-byte blob ids.
pub fn decode_content_list(body: &[u8]) -> Result<Vec<Id>, FormatError> {
    if !body.len().is_multiple_of(32) {
        return Err(FormatError::invalid(
            "content list",
            "length is not a multiple of 32",
        ));
    }
    Ok(body
        .chunks_exact(32)
        .map(|c| Id(c.try_into().expect("32 bytes")))
        .collect())
}
