//! The repository's index on this device: which pack holds which blob, in sorted files on disk
//! rather than in memory, so that memory does not grow with the repository.
//!
//! The index files in storage are the truth; this is a copy in the layout of
//! [`sealback_core::index_cache`]: records sorted by blob id with a fanout table, so that a
//! lookup reads one bucket of about eight records (~450 bytes) with one `pread`. The page cache
//! keeps hot buckets; nothing of them counts toward the process's memory.
//!
//! Why sorted files and not an embedded key-value store: the data is written in bulk (a whole
//! index file at a time), never updated in place, and read by random 32-byte keys that are
//! uniformly distributed (keyed hashes). A sorted array with a fanout finds a key with one read
//! and needs no write-ahead log, page cache, compaction or locking of its own; a B-tree store
//! (redb, LMDB) would bring all of those, plus a memory map whose pages count as the process's
//! memory, to answer the same question.
//!
//! Layers, newest first (a newer entry for a blob wins, as a later insert did in the former
//! in-memory map): a small in-memory `delta` (at most [`DELTA_MAX`] entries), then `segments`,
//! sorted files. A full delta is written out as a segment; two neighbouring segments are merged
//! when the older is not more than twice the newer (a binary counter: about log2(n / DELTA_MAX)
//! segments, each record rewritten about as many times). Segments made during a session are
//! unnamed temporary files (deleted by the kernel when the process ends; no other process can
//! open them). [`Index::persist`] merges everything into one file in this device's cache folder,
//! which the next session opens instead of reading every index file again; that file is checked
//! with its MAC (see the core module for why) and rebuilt from the index files when it does not
//! verify, is cut short, or belongs to another repository.

use sealback_core::index_cache::{self, CacheMac, Head, Record, Tail, RECORD_LEN};
use sealback_core::pack::BlobEntry;
use sealback_core::secret::SubKey;
use sealback_core::{BlobId, Id, RepoId};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entries kept in memory before they are written out as a segment (about 2 MiB).
pub const DELTA_MAX: usize = 16_384;
/// A bucket of at most this many records is read with one `pread`; a larger one (never with
/// uniform ids) is searched record by record.
const BUCKET_READ_MAX: usize = 64;
/// Read buffer of a sequential pass over a segment.
const STREAM_BUFFER: usize = 64 << 10;

/// This device's cache folder for sealback: `SEALBACK_CACHE_DIR` (empty: keep no cache), else
/// `$XDG_CACHE_HOME/sealback`, else `~/.cache/sealback`. Each repository's index cache is
/// `<folder>/<repository id>/index`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEALBACK_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("sealback"))
}

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack.
    pub pack: Id,
    /// Its entry in the pack.
    pub entry: BlobEntry,
}

/// One sorted file of records.
struct Segment {
    file: File,
    bits: u8,
    fanout: Vec<u32>,
    records_at: u64,
    count: u64,
}

impl Segment {
    /// The records of bucket `b`: (first, end).
    fn bucket(&self, b: usize) -> (u64, u64) {
        let start = if b == 0 { 0 } else { self.fanout[b - 1] };
        (start.into(), self.fanout[b].into())
    }

    fn read_record(&self, i: u64) -> io::Result<[u8; RECORD_LEN]> {
        let mut buf = [0u8; RECORD_LEN];
        self.file
            .read_exact_at(&mut buf, self.records_at + i * RECORD_LEN as u64)?;
        Ok(buf)
    }

    /// The raw record of `id`, if this segment has one.
    fn find(&self, id: &BlobId) -> io::Result<Option<[u8; RECORD_LEN]>> {
        let (start, end) = self.bucket(index_cache::bucket(id, self.bits));
        let n = (end - start) as usize;
        if n == 0 {
            return Ok(None);
        }
        if n <= BUCKET_READ_MAX {
            let mut buf = [0u8; BUCKET_READ_MAX * RECORD_LEN];
            let buf = &mut buf[..n * RECORD_LEN];
            self.file
                .read_exact_at(buf, self.records_at + start * RECORD_LEN as u64)?;
            let found = buf
                .chunks_exact(RECORD_LEN)
                .find(|r| r[..32] == id.0)
                .map(|r| r.try_into().expect("56 bytes"));
            return Ok(found);
        }
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let rec = self.read_record(mid)?;
            match rec[..32].cmp(&id.0[..]) {
                std::cmp::Ordering::Equal => return Ok(Some(rec)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Every record, in order.
    fn stream(&self) -> Stream<'_> {
        Stream {
            segment: self,
            next: 0,
            buf: Vec::new(),
            at: 0,
        }
    }
}

/// A sequential pass over a segment's records.
struct Stream<'a> {
    segment: &'a Segment,
    /// The next record to read from the file.
    next: u64,
    buf: Vec<u8>,
    /// The next record in `buf`.
    at: usize,
}

impl Stream<'_> {
    fn peek(&mut self) -> io::Result<Option<&[u8]>> {
        if self.at == self.buf.len() {
            let left = self.segment.count - self.next;
            if left == 0 {
                return Ok(None);
            }
            let n = left.min((STREAM_BUFFER / RECORD_LEN) as u64);
            self.buf.resize(n as usize * RECORD_LEN, 0);
            self.segment.file.read_exact_at(
                &mut self.buf,
                self.segment.records_at + self.next * RECORD_LEN as u64,
            )?;
            self.next += n;
            self.at = 0;
        }
        Ok(Some(&self.buf[self.at..self.at + RECORD_LEN]))
    }

    fn advance(&mut self) {
        self.at += RECORD_LEN;
    }
}

/// The records of `segments` (oldest first) and of `extra` (newest, sorted), in id order: for
/// a blob in several, the newest entry.
struct Merged<'a> {
    streams: Vec<Stream<'a>>,
    extra: &'a [Record],
}

impl<'a> Merged<'a> {
    fn new(segments: &'a [Arc<Segment>], extra: &'a [Record]) -> Self {
        Self {
            streams: segments.iter().map(|s| s.stream()).collect(),
            extra,
        }
    }

    fn next(&mut self) -> io::Result<Option<[u8; RECORD_LEN]>> {
        // The smallest id among the heads; the newest source wins a tie.
        let mut best: Option<[u8; RECORD_LEN]> = None;
        for s in self.streams.iter_mut() {
            if let Some(rec) = s.peek()? {
                if best.is_none_or(|b| rec[..32] <= b[..32]) {
                    best = Some(rec.try_into().expect("56 bytes"));
                }
            }
        }
        if let Some(r) = self.extra.first() {
            if best.is_none_or(|b| r.entry.id.0[..] <= b[..32]) {
                best = Some(r.encode());
            }
        }
        let Some(best) = best else {
            return Ok(None);
        };
        for s in self.streams.iter_mut() {
            if s.peek()?.is_some_and(|r| r[..32] == best[..32]) {
                s.advance();
            }
        }
        if self
            .extra
            .first()
            .is_some_and(|r| r.entry.id.0[..] == best[..32])
        {
            self.extra = &self.extra[1..];
        }
        Ok(Some(best))
    }
}

/// Writes a segment: head, records in order, then fanout, tail and MAC.
struct SegmentWriter {
    out: io::BufWriter<File>,
    mac: CacheMac,
    counts: Vec<u32>,
    bits: u8,
    head_len: u64,
    written: u64,
    last: Option<[u8; 32]>,
}

impl SegmentWriter {
    /// Starts a segment of at most `max_records` records.
    fn new(file: File, key: &SubKey, head: &Head, max_records: u64) -> io::Result<Self> {
        let bits = index_cache::fanout_bits(max_records);
        let head = head.encode();
        let mut w = Self {
            out: io::BufWriter::with_capacity(1 << 20, file),
            mac: CacheMac::with_key(key),
            counts: vec![0; 1 << bits],
            bits,
            head_len: head.len() as u64,
            written: 0,
            last: None,
        };
        w.write(&head)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.mac.update(bytes);
        self.out.write_all(bytes)
    }

    fn push(&mut self, record: &[u8]) -> io::Result<()> {
        let id: [u8; 32] = record[..32].try_into().expect("32 bytes");
        debug_assert!(self.last.is_none_or(|l| l < id), "records out of order");
        self.last = Some(id);
        self.counts[index_cache::bucket(&Id(id), self.bits)] += 1;
        self.written += 1;
        self.write(record)
    }

    fn finish(mut self) -> io::Result<Segment> {
        let mut sum = 0u32;
        for c in self.counts.iter_mut() {
            sum += *c;
            *c = sum;
        }
        let fanout = std::mem::take(&mut self.counts);
        self.write(&index_cache::encode_fanout(&fanout))?;
        let tail = Tail {
            bits: self.bits,
            records: self.written,
        };
        self.write(&tail.encode())?;
        let mac = self.mac.finish();
        self.out.write_all(&mac)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(Segment {
            file,
            bits: self.bits,
            fanout,
            records_at: self.head_len,
            count: self.written,
        })
    }
}

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error)]
pub enum CacheRefused {
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    /// Its layout is wrong (cut short, another version, garbled).
    #[error("{0}")]
    Format(#[from] sealback_core::FormatError),
    /// It belongs to another repository.
    #[error("it belongs to another repository")]
    OtherRepository,
    /// Its MAC does not verify: it was changed, or written under other keys.
    #[error("its MAC does not verify")]
    Mac,
}

/// Opens a cache file and checks it whole: layout, repository and MAC. Returns the segment
/// and its head.
fn open_verified(
    file: File,
    key: &SubKey,
    repo_id: RepoId,
) -> Result<(Segment, Head), CacheRefused> {
    let len = file.metadata()?.len();
    let tail_at = len
        .checked_sub((index_cache::TAIL_LEN + index_cache::MAC_LEN) as u64)
        .ok_or_else(|| sealback_core::FormatError::invalid("index cache", "too short"))?;
    let mut tail = [0u8; index_cache::TAIL_LEN];
    file.read_exact_at(&mut tail, tail_at)?;
    let tail = Tail::decode(&tail)?;
    let layout = tail.layout(len)?;
    if layout.head_len > 1 << 30 {
        return Err(sealback_core::FormatError::invalid("index cache", "head too long").into());
    }
    // The MAC first: nothing else of the file is believed before it verifies.
    let mut mac = CacheMac::with_key(key);
    let mut buf = vec![0u8; 1 << 20];
    let mac_at = len - index_cache::MAC_LEN as u64;
    let mut at = 0u64;
    while at < mac_at {
        let n = (mac_at - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        mac.update(&buf[..n]);
        at += n as u64;
    }
    let mut stored = [0u8; index_cache::MAC_LEN];
    file.read_exact_at(&mut stored, mac_at)?;
    if !mac.verify(&stored) {
        return Err(CacheRefused::Mac);
    }
    let mut head = vec![0u8; layout.head_len as usize];
    file.read_exact_at(&mut head, 0)?;
    let head = Head::decode(&head)?;
    if head.repo_id != repo_id {
        return Err(CacheRefused::OtherRepository);
    }
    let mut fanout = vec![0u8; 4 << tail.bits];
    file.read_exact_at(&mut fanout, layout.fanout_at)?;
    let fanout = index_cache::decode_fanout(&fanout, tail.bits, tail.records)?;
    Ok((
        Segment {
            file,
            bits: tail.bits,
            fanout,
            records_at: layout.records_at,
            count: tail.records,
        },
        head,
    ))
}

/// The index of one repository on this device.
#[derive(Clone)]
pub struct Index {
    repo_id: RepoId,
    key: Arc<SubKey>,
    /// Where unnamed segments are made.
    temp_dir: PathBuf,
    /// The cache file of this repository, when this device keeps one.
    cache_path: Option<PathBuf>,
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    /// Index files whose entries are in, in the order they came.
    covered: Vec<Id>,
    /// Oldest first.
    segments: Vec<Arc<Segment>>,
    delta: HashMap<BlobId, Record>,
    delta_max: usize,
    /// Whether the cache file holds exactly this index (loaded from it or written to it, and
    /// nothing added since): then [`Index::persist`] has nothing to do.
    saved: bool,
}

impl Index {
    /// An empty index of the repository with `repo_id`, whose cache MAC key is `key`
    /// ([`index_cache::cache_key`]); segments go to `temp_dir`, the cache file (if any) to
    /// `cache_path`.
    pub fn new(
        repo_id: RepoId,
        key: SubKey,
        temp_dir: PathBuf,
        cache_path: Option<PathBuf>,
    ) -> Self {
        Self {
            repo_id,
            key: Arc::new(key),
            temp_dir,
            cache_path,
            packs: vec![],
            pack_numbers: HashMap::new(),
            covered: vec![],
            segments: vec![],
            delta: HashMap::new(),
            delta_max: DELTA_MAX,
            saved: false,
        }
    }

    /// Sets how many entries are kept in memory (tests use small numbers to exercise segments).
    pub fn set_delta_max(&mut self, n: usize) {
        self.delta_max = n.max(1);
    }

    /// Empties the index (keeping where it lives).
    pub fn clear(&mut self) {
        *self = Self {
            delta_max: self.delta_max,
            ..Self::new(
                self.repo_id,
                self.key.duplicate(),
                self.temp_dir.clone(),
                self.cache_path.clone(),
            )
        };
    }

    /// The index files whose entries the index holds.
    pub fn covered(&self) -> &[Id] {
        &self.covered
    }

    /// The cache file, if this device keeps one.
    pub fn cache_path(&self) -> Option<&Path> {
        self.cache_path.as_deref()
    }

    /// Loads the cache file when it verifies and holds only index files among `stored`.
    /// Returns whether it was loaded; a file that does not verify is logged and left to be
    /// replaced ([`Index::persist`]). The index must be empty.
    pub fn load_cache(&mut self, stored: &[Id]) -> bool {
        let Some(path) = self.cache_path.clone() else {
            return false;
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open the index cache; rebuilding it");
                return false;
            }
        };
        let (segment, head) = match open_verified(file, &self.key, self.repo_id) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(path = %path.display(), reason = %e, "index cache refused; rebuilding it from the index files");
                return false;
            }
        };
        let stored: std::collections::HashSet<&Id> = stored.iter().collect();
        if !head.covered.iter().all(|c| stored.contains(c)) {
            // A prune replaced index files since: what it holds may name deleted packs.
            tracing::debug!("the index cache predates a prune; rebuilding it");
            return false;
        }
        self.clear();
        self.pack_numbers = head
            .packs
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i as u32))
            .collect();
        self.packs = head.packs;
        self.covered = head.covered;
        self.segments.push(Arc::new(segment));
        self.saved = true;
        true
    }

    /// Adds the entries of one index file.
    pub fn add_file(&mut self, file_id: Id, packs: &[(Id, Vec<BlobEntry>)]) -> io::Result<()> {
        for (pack, entries) in packs {
            self.insert(*pack, entries)?;
        }
        self.covered.push(file_id);
        self.saved = false;
        Ok(())
    }

    /// Adds one pack's entries; a blob already indexed is now found in this pack.
    fn insert(&mut self, pack: Id, entries: &[BlobEntry]) -> io::Result<()> {
        let number = *self.pack_numbers.entry(pack).or_insert_with(|| {
            self.packs.push(pack);
            (self.packs.len() - 1) as u32
        });
        for e in entries {
            self.delta.insert(
                e.id,
                Record {
                    pack: number,
                    entry: *e,
                },
            );
            if self.delta.len() >= self.delta_max {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Where a blob is, if the index knows it.
    pub fn lookup(&self, id: &BlobId) -> io::Result<Option<BlobLocation>> {
        let record = match self.delta.get(id) {
            Some(r) => *r,
            None => match self.find_in_segments(id)? {
                Some(raw) => self.decode(&raw)?,
                None => return Ok(None),
            },
        };
        Ok(Some(BlobLocation {
            pack: self.packs[record.pack as usize],
            entry: record.entry,
        }))
    }

    /// Whether the index knows a blob.
    pub fn contains(&self, id: &BlobId) -> io::Result<bool> {
        Ok(self.delta.contains_key(id) || self.find_in_segments(id)?.is_some())
    }

    fn find_in_segments(&self, id: &BlobId) -> io::Result<Option<[u8; RECORD_LEN]>> {
        for s in self.segments.iter().rev() {
            if let Some(raw) = s.find(id)? {
                return Ok(Some(raw));
            }
        }
        Ok(None)
    }

    fn decode(&self, raw: &[u8]) -> io::Result<Record> {
        Record::decode(raw.try_into().expect("56 bytes"), self.packs.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn head(&self, covered: Vec<Id>) -> Head {
        Head {
            repo_id: self.repo_id,
            packs: self.packs.clone(),
            covered,
        }
    }

    /// Writes the delta out as a segment, then merges segments of like size.
    fn spill(&mut self) -> io::Result<()> {
        if self.delta.is_empty() {
            return Ok(());
        }
        let mut records: Vec<Record> = self.delta.drain().map(|(_, r)| r).collect();
        records.sort_unstable_by_key(|r| r.entry.id);
        let file = tempfile::tempfile_in(&self.temp_dir)?;
        let mut w = SegmentWriter::new(file, &self.key, &self.head(vec![]), records.len() as u64)?;
        for r in &records {
            w.push(&r.encode())?;
        }
        drop(records);
        self.segments.push(Arc::new(w.finish()?));
        while let [.., older, newer] = &self.segments[..] {
            if older.count > newer.count.saturating_mul(2) {
                break;
            }
            let n = self.segments.len();
            let file = tempfile::tempfile_in(&self.temp_dir)?;
            let merged = self.merge(&self.segments[n - 2..], &[], file, vec![])?;
            self.segments.truncate(n - 2);
            self.segments.push(Arc::new(merged));
        }
        Ok(())
    }

    /// Merges `segments` (oldest first) and `extra` (newest, sorted) into one new segment in
    /// `file`: for a blob in several, the newest entry.
    fn merge(
        &self,
        segments: &[Arc<Segment>],
        extra: &[Record],
        file: File,
        covered: Vec<Id>,
    ) -> io::Result<Segment> {
        let max: u64 = segments.iter().map(|s| s.count).sum::<u64>() + extra.len() as u64;
        let mut w = SegmentWriter::new(file, &self.key, &self.head(covered), max)?;
        let mut merged = Merged::new(segments, extra);
        while let Some(rec) = merged.next()? {
            w.push(&rec)?;
        }
        w.finish()
    }

    /// The delta's records, sorted by id.
    fn sorted_delta(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self.delta.values().copied().collect();
        records.sort_unstable_by_key(|r| r.entry.id);
        records
    }

    /// Writes everything into the cache file (atomically: a temporary file renamed over it),
    /// which then serves the lookups; without a cache folder, into one unnamed segment. Does
    /// nothing when the cache file already holds the index (a backup that stored nothing new).
    pub fn persist(&mut self) -> io::Result<()> {
        if self.saved {
            return Ok(());
        }
        // Nothing is taken out of the layers until the merged file is complete: a failure
        // leaves the index as it was.
        let extra = self.sorted_delta();
        let mut covered = self.covered.clone();
        covered.sort();
        covered.dedup();
        let segments = &self.segments;
        let merged = match &self.cache_path {
            Some(path) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                // Only this user lists which repositories this device backs up.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
                let tmp = tempfile::Builder::new()
                    .prefix(".index-cache-")
                    .tempfile_in(dir)?;
                let file = tmp.as_file().try_clone()?;
                let merged = self.merge(segments, &extra, file, covered)?;
                merged.file.sync_all()?;
                tmp.persist(path).map_err(|e| e.error)?;
                merged
            }
            None => {
                let file = tempfile::tempfile_in(&self.temp_dir)?;
                self.merge(segments, &extra, file, vec![])?
            }
        };
        self.delta.clear();
        self.segments = vec![Arc::new(merged)];
        self.saved = self.cache_path.is_some();
        Ok(())
    }

    /// Every blob the index knows, one entry each (reads the whole index: for tests).
    pub fn all(&self) -> io::Result<Vec<BlobLocation>> {
        let mut out = vec![];
        let extra = self.sorted_delta();
        let mut merged = Merged::new(&self.segments, &extra);
        while let Some(raw) = merged.next()? {
            let r = self.decode(&raw)?;
            out.push(BlobLocation {
                pack: self.packs[r.pack as usize],
                entry: r.entry,
            });
        }
        Ok(out)
    }

    /// How many blobs the index knows (reads the whole index, writes nothing).
    pub fn len(&self) -> io::Result<usize> {
        let extra = self.sorted_delta();
        let mut merged = Merged::new(&self.segments, &extra);
        let mut n = 0;
        while merged.next()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.delta.is_empty() && self.segments.iter().all(|s| s.count == 0)
    }

    /// A path to name in an error about the index's files.
    pub fn error_path(&self) -> PathBuf {
        self.cache_path
            .clone()
            .unwrap_or_else(|| self.temp_dir.clone())
    }

    /// Segments on disk (for tests: how the layers stand).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sealback_core::object::ObjectType;

    fn key() -> SubKey {
        SubKey::from_bytes([7; 32])
    }

    fn id(n: u16) -> Id {
        // Spread over the whole id space, like keyed hashes.
        let mut b = *blake3::hash(&n.to_be_bytes()).as_bytes();
        b[31] = 0xAA;
        Id(b)
    }

    fn entry(n: u16, offset: u32) -> BlobEntry {
        BlobEntry {
            ty: if n.is_multiple_of(3) {
                ObjectType::Tree
            } else {
                ObjectType::Data
            },
            id: id(n),
            epoch: (!n.is_multiple_of(5)).then_some(u32::from(n % 4)),
            offset,
            length: 100 + u32::from(n),
            raw_length: 50 + offset,
        }
    }

    /// One index file: packs, each with (blob number, offset) entries.
    type FileSpec = Vec<(u8, Vec<(u16, u32)>)>;

    fn files() -> impl Strategy<Value = Vec<(FileSpec, bool)>> {
        let pack = (
            0u8..6,
            prop::collection::vec((0u16..300, any::<u32>()), 0..40),
        );
        prop::collection::vec((prop::collection::vec(pack, 0..4), any::<bool>()), 0..12)
    }

    fn pack_id(n: u8) -> Id {
        Id([n; 32])
    }

    fn index_in(dir: &Path, cache: bool) -> Index {
        Index::new(
            RepoId([3; 16]),
            key(),
            dir.to_path_buf(),
            cache.then(|| dir.join("cache").join("index")),
        )
    }

    /// Adds `files` to `index` and to the former in-memory map (`model`), persisting where asked.
    fn fill(
        index: &mut Index,
        model: &mut HashMap<BlobId, BlobLocation>,
        files: &[(FileSpec, bool)],
    ) -> Vec<Id> {
        let mut file_ids = vec![];
        for (i, (file, persist)) in files.iter().enumerate() {
            let packs: Vec<(Id, Vec<BlobEntry>)> = file
                .iter()
                .map(|(p, es)| (pack_id(*p), es.iter().map(|(n, o)| entry(*n, *o)).collect()))
                .collect();
            for (p, es) in &packs {
                for e in es {
                    model.insert(
                        e.id,
                        BlobLocation {
                            pack: *p,
                            entry: *e,
                        },
                    );
                }
            }
            let file_id = Id([0x40 + i as u8; 32]);
            index.add_file(file_id, &packs).unwrap();
            file_ids.push(file_id);
            if *persist {
                index.persist().unwrap();
            }
        }
        file_ids
    }

    fn assert_same(index: &Index, model: &HashMap<BlobId, BlobLocation>) {
        for n in 0..320u16 {
            let want = model.get(&id(n)).copied();
            assert_eq!(index.lookup(&id(n)).unwrap(), want, "blob {n}");
            assert_eq!(index.contains(&id(n)).unwrap(), want.is_some());
        }
        let mut all = index.all().unwrap();
        all.sort_by_key(|l| l.entry.id);
        let mut want: Vec<_> = model.values().copied().collect();
        want.sort_by_key(|l| l.entry.id);
        assert_eq!(all, want);
        assert_eq!(index.len().unwrap(), model.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The on-disk index answers as the former in-memory map did, whatever the layering
        /// (delta sizes, spills, merges, persisting), and a new session that loads the cache
        /// file answers the same.
        #[test]
        fn answers_like_the_in_memory_index(files in files(), delta_max in 1usize..64) {
            let dir = tempfile::tempdir().unwrap();
            let mut index = index_in(dir.path(), true);
            index.set_delta_max(delta_max);
            let mut model = HashMap::new();
            let file_ids = fill(&mut index, &mut model, &files);
            assert_same(&index, &model);

            index.persist().unwrap();
            assert_eq!(index.segment_count(), 1);
            let mut again = index_in(dir.path(), true);
            prop_assert!(again.load_cache(&file_ids));
            let mut covered = again.covered().to_vec();
            covered.sort();
            let mut want = file_ids.clone();
            want.sort();
            want.dedup();
            prop_assert_eq!(covered, want);
            assert_same(&again, &model);
        }
    }

    fn persisted(dir: &Path) -> (Vec<Id>, HashMap<BlobId, BlobLocation>) {
        let mut index = index_in(dir, true);
        index.set_delta_max(10);
        let mut model = HashMap::new();
        let files: Vec<(FileSpec, bool)> = (0..5u16)
            .map(|f| {
                let es = (0..40).map(|i| (f * 40 + i, u32::from(i) * 200)).collect();
                (vec![(f as u8, es)], false)
            })
            .collect();
        let ids = fill(&mut index, &mut model, &files);
        index.persist().unwrap();
        (ids, model)
    }

    /// A cache folder that cannot be made (here a file is in its place; as root, permissions
    /// would not stop the write) fails `persist` and leaves the index as it was: every layer
    /// still answers, no temporary file is left, and a later `persist` into a usable folder
    /// writes the same index.
    #[test]
    fn a_cache_that_cannot_be_written_leaves_the_index_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cache"), b"not a folder").unwrap();
        let mut index = index_in(dir.path(), true);
        index.set_delta_max(10);
        let mut model = HashMap::new();
        let files: Vec<(FileSpec, bool)> = (0..3u16)
            .map(|f| {
                let es = (0..25).map(|i| (f * 25 + i, u32::from(i) * 300)).collect();
                (vec![(f as u8, es)], false)
            })
            .collect();
        let ids = fill(&mut index, &mut model, &files);
        let layers = index.segment_count();
        assert!(layers > 0 && !index.delta.is_empty());
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();

        let e = index.persist().unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
            ),
            "{e}"
        );
        assert_eq!(index.segment_count(), layers);
        assert_same(&index, &model);
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(after.len(), before.len(), "a temporary file was left");

        std::fs::remove_file(dir.path().join("cache")).unwrap();
        index.persist().unwrap();
        let mut again = index_in(dir.path(), true);
        assert!(again.load_cache(&ids));
        assert_same(&again, &model);
    }

    /// Persisting an index that the cache file already holds writes nothing (a backup that
    /// stored nothing new does not rewrite the whole cache); one more index file does.
    #[test]
    fn persisting_an_unchanged_index_does_not_rewrite_the_cache() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (ids, model) = persisted(dir.path());
        let path = dir.path().join("cache").join("index");
        let inode = || std::fs::metadata(&path).unwrap().ino();
        let first = inode();
        let mut index = index_in(dir.path(), true);
        assert!(index.load_cache(&ids));
        index.persist().unwrap();
        index.persist().unwrap();
        assert_eq!(inode(), first, "an unchanged index rewrote the cache");

        let mut model = model;
        fill(
            &mut index,
            &mut model,
            &[(vec![(9, vec![(300, 1), (301, 2)])], false)],
        );
        index.persist().unwrap();
        assert_ne!(
            inode(),
            first,
            "a new index file was not written to the cache"
        );
        // (fill named the new file like the first: `ids` still lists every file.)
        let mut again = index_in(dir.path(), true);
        assert!(again.load_cache(&ids));
        assert_same(&again, &model);
    }

    /// A cache file that is cut short, changed anywhere, or not this repository's is refused
    /// (and so rebuilt by the repository), never read.
    #[test]
    fn a_damaged_cache_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, model) = persisted(dir.path());
        let path = dir.path().join("cache").join("index");
        let good = std::fs::read(&path).unwrap();
        let mut loaded = index_in(dir.path(), true);
        assert!(loaded.load_cache(&ids));
        assert_same(&loaded, &model);

        let mut cases: Vec<(String, Vec<u8>)> = vec![];
        for len in [0, 1, 20, good.len() / 2, good.len() - 33, good.len() - 1] {
            cases.push((format!("cut to {len}"), good[..len].to_vec()));
        }
        for at in (0..good.len())
            .step_by(97)
            .chain([good.len() - 1, good.len() - 40])
        {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            cases.push((format!("bit flipped at {at}"), bad));
        }
        let mut longer = good.clone();
        longer.extend([0u8; 56]);
        cases.push(("longer".into(), longer));
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let mut index = index_in(dir.path(), true);
            assert!(!index.load_cache(&ids), "{what}: loaded");
            assert!(index.is_empty(), "{what}: something was read");
        }

        // Another repository's keys (as an attacker without this repository's key would).
        std::fs::write(&path, &good).unwrap();
        let mut other_key = Index::new(
            RepoId([3; 16]),
            SubKey::from_bytes([8; 32]),
            dir.path().to_path_buf(),
            Some(path.clone()),
        );
        assert!(!other_key.load_cache(&ids));
        let mut other_repo = Index::new(
            RepoId([4; 16]),
            key(),
            dir.path().to_path_buf(),
            Some(path.clone()),
        );
        assert!(!other_repo.load_cache(&ids));

        // A cache that holds an index file no longer stored (a prune replaced it) is stale.
        let mut stale = index_in(dir.path(), true);
        assert!(!stale.load_cache(&ids[1..]));
        assert!(stale.is_empty());
    }
}
