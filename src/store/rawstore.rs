//! Raw message bytes, kept for ever in append-only segment files beside the database.
//!
//! The bytes of every message are the one thing postdesk may never lose, and also most of
//! what it writes: a BLOB column made SQLite copy each message three times (into its page
//! cache, into the WAL, from the WAL into the database file) and more than doubled the time
//! of a bulk import. Here each message is written once, with `pwrite`, and the database
//! row only says where it lies (`raw_messages.seg`, `seg_offset`, `seg_len`).
//!
//! ## Layout
//! `<database>-raw/00000001.seg`, `00000002.seg`, ...: a new segment starts once the
//! current one passes [`SEGMENT_BYTES`], so that finished segments never change again (an
//! incremental backup copies each once). A record is a 48-byte header followed by the
//! message: the magic `PDRAW01\n`, the length as a little-endian u64 and the SHA-256 of the
//! bytes. Segments are therefore self-describing: the mail can be recovered from them
//! without the database.
//!
//! ## Durability
//! A writer reserves space ([`RawStore::stage`]), writes it and `fdatasync`s it
//! ([`Staged::write`]) before the transaction whose rows point at it commits. So every row
//! a committed transaction holds points at bytes on disk. A transaction that fails or a
//! crash before COMMIT leaves unreferenced bytes behind; nothing ever points at them and
//! space is never reused, so they are harmless (a later compaction could reclaim them).
//! After a restart, writing resumes at the end of the newest segment. Reservations are
//! taken in order under a mutex, and writers hold SQLite's write lock, so they never overlap.
//!
//! ## Backups
//! Back up the database first (`sqlite3 postdesk.db ".backup copy.db"`), then copy the
//! `-raw` directory: everything the copy of the database refers to was on disk before it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// A segment is closed once it holds this many bytes (a single batch may pass it).
pub const SEGMENT_BYTES: u64 = 256 << 20;

const MAGIC: &[u8; 8] = b"PDRAW01\n";
/// Magic, length, SHA-256.
pub const HEADER_BYTES: u64 = 48;

/// Where one message's bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLoc {
    pub seg: i64,
    /// Of the first byte of the message (after the record header).
    pub offset: i64,
    pub len: i64,
}

#[derive(Debug)]
struct Current {
    seg: u32,
    file: Arc<File>,
    /// Where the next record goes.
    end: u64,
}

/// The segment files of one database.
#[derive(Debug)]
pub struct RawStore {
    dir: PathBuf,
    current: Mutex<Current>,
}

/// Where the segments of the database at `db` live: `<db>-raw`, like SQLite's `-wal`.
pub fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-raw");
    db.with_file_name(name)
}

fn segment_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("{seg:08}.seg"))
}

fn open_segment(dir: &Path, seg: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(segment_path(dir, seg))
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl RawStore {
    /// Opens (creating if needed) the segment directory `dir`.
    pub fn open(dir: &Path) -> io::Result<RawStore> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| {
            other(format!(
                "cannot create the raw message directory {}: {e}",
                dir.display()
            ))
        })?;
        if created && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let mut newest = 0u32;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(n) = stem.parse::<u32>() {
                newest = newest.max(n);
            }
        }
        let seg = newest.max(1);
        let file = open_segment(dir, seg)?;
        if newest == 0 {
            sync_dir(dir)?;
        }
        let end = file.metadata()?.len();
        Ok(RawStore {
            dir: dir.to_path_buf(),
            current: Mutex::new(Current {
                seg,
                file: Arc::new(file),
                end,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reserves room for `messages` (bytes and their hex SHA-256, as `raw_messages` keeps
    /// it) and lays out their records. Nothing is on disk until [`Staged::write`].
    pub fn stage(&self, messages: &[(&[u8], &str)]) -> io::Result<(Vec<RawLoc>, Staged)> {
        let total: u64 = messages
            .iter()
            .map(|(m, _)| HEADER_BYTES + m.len() as u64)
            .sum();
        let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut cur = self
            .current
            .lock()
            .map_err(|_| other("the raw store lock is poisoned".into()))?;
        if cur.end > 0 && cur.end + total > SEGMENT_BYTES {
            let seg = cur.seg + 1;
            let file = open_segment(&self.dir, seg)?;
            sync_dir(&self.dir)?;
            *cur = Current {
                seg,
                file: Arc::new(file),
                end: file_len_or_zero(&self.dir, seg),
            };
        }
        let start = cur.end;
        let mut locs = Vec::with_capacity(messages.len());
        for (data, sha_hex) in messages {
            let mut sha = [0u8; 32];
            if hex::decode_to_slice(sha_hex, &mut sha).is_err() {
                sha.copy_from_slice(&Sha256::digest(data));
            }
            buf.extend_from_slice(MAGIC);
            buf.extend_from_slice(&(data.len() as u64).to_le_bytes());
            buf.extend_from_slice(&sha);
            locs.push(RawLoc {
                seg: i64::from(cur.seg),
                offset: (start + buf.len() as u64) as i64,
                len: data.len() as i64,
            });
            buf.extend_from_slice(data);
        }
        cur.end = start + total;
        Ok((
            locs,
            Staged {
                file: Arc::clone(&cur.file),
                offset: start,
                buf,
            },
        ))
    }

    /// Writes `messages` durably at once; for the single messages outside batches.
    pub async fn append(&self, messages: &[(&[u8], &str)]) -> io::Result<Vec<RawLoc>> {
        let (locs, staged) = self.stage(messages)?;
        staged.write().await?;
        Ok(locs)
    }

    /// Reads one message back, checking its record header.
    pub fn read(&self, loc: RawLoc) -> io::Result<Vec<u8>> {
        let seg = u32::try_from(loc.seg).map_err(|_| other(format!("bad segment {}", loc.seg)))?;
        let (Ok(offset), Ok(len)) = (u64::try_from(loc.offset), usize::try_from(loc.len)) else {
            return Err(other(format!("bad location {loc:?}")));
        };
        if offset < HEADER_BYTES {
            return Err(other(format!("bad location {loc:?}")));
        }
        let path = segment_path(&self.dir, seg);
        let file =
            File::open(&path).map_err(|e| other(format!("cannot open {}: {e}", path.display())))?;
        let mut header = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut header, offset - HEADER_BYTES)?;
        let stored_len = header
            .get(8..16)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        if header.get(..8) != Some(MAGIC.as_slice()) || stored_len != Some(len as u64) {
            return Err(other(format!(
                "{} holds no record of {len} bytes at {offset}",
                path.display()
            )));
        }
        let mut data = vec![0u8; len];
        file.read_exact_at(&mut data, offset)?;
        if header.get(16..) != Some(Sha256::digest(&data).as_slice()) {
            return Err(other(format!(
                "the message at {}:{offset} does not match its SHA-256",
                path.display()
            )));
        }
        Ok(data)
    }
}

fn file_len_or_zero(dir: &Path, seg: u32) -> u64 {
    std::fs::metadata(segment_path(dir, seg))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Records laid out by [`RawStore::stage`], not yet on disk.
#[derive(Debug)]
#[must_use = "staged bytes are not stored until written"]
pub struct Staged {
    file: Arc<File>,
    offset: u64,
    buf: Vec<u8>,
}

impl Staged {
    /// Starts writing the records on a blocking thread, so that the caller's SQL runs
    /// meanwhile; [`RawWrite::finish`] waits until they are on disk (`fdatasync`).
    pub fn spawn(self) -> RawWrite {
        if self.buf.is_empty() {
            return RawWrite(None);
        }
        RawWrite(Some(tokio::task::spawn_blocking(move || {
            self.file.write_all_at(&self.buf, self.offset)?;
            self.file.sync_data()
        })))
    }

    /// Writes the records and waits until they are on disk.
    pub async fn write(self) -> io::Result<()> {
        self.spawn().finish().await
    }
}

/// A write under way (see [`Staged::spawn`]). Dropping it does not stop it; its bytes are
/// then merely unreferenced.
#[derive(Debug)]
#[must_use = "the bytes are not known to be on disk until finish() returns"]
pub struct RawWrite(Option<tokio::task::JoinHandle<io::Result<()>>>);

impl RawWrite {
    pub async fn finish(self) -> io::Result<()> {
        match self.0 {
            None => Ok(()),
            Some(task) => task
                .await
                .map_err(|e| other(format!("the raw write task failed: {e}")))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let raw_dir = dir.path().join("t.db-raw");
        let a = b"From: a@example.com\r\n\r\nhello".as_slice();
        let b = vec![0u8; 70_000];
        let sha_a = hex::encode(Sha256::digest(a));
        let sha_b = hex::encode(Sha256::digest(&b));
        let store = RawStore::open(&raw_dir).unwrap();
        let locs = store.append(&[(a, &sha_a), (&b, &sha_b)]).await.unwrap();
        assert_eq!(locs.len(), 2);
        assert_eq!(locs[0].offset, HEADER_BYTES as i64);
        assert_eq!(
            locs[1].offset,
            locs[0].offset + a.len() as i64 + HEADER_BYTES as i64
        );
        assert_eq!(store.read(locs[0]).unwrap(), a);
        assert_eq!(store.read(locs[1]).unwrap(), b);
        drop(store);

        // A reopened store appends after what is there and still reads the old records.
        let store = RawStore::open(&raw_dir).unwrap();
        let c = b"third".as_slice();
        let sha_c = hex::encode(Sha256::digest(c));
        let more = store.append(&[(c, &sha_c)]).await.unwrap();
        assert!(more[0].offset > locs[1].offset + locs[1].len);
        assert_eq!(store.read(more[0]).unwrap(), c);
        assert_eq!(store.read(locs[1]).unwrap(), b);
    }

    #[tokio::test]
    async fn a_staged_batch_that_is_never_written_does_not_move_later_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::open(&dir.path().join("r")).unwrap();
        let x = b"lost with its transaction".as_slice();
        let sha = hex::encode(Sha256::digest(x));
        let (lost, staged) = store.stage(&[(x, &sha)]).unwrap();
        drop(staged);
        let kept = store.append(&[(x, &sha)]).await.unwrap();
        assert!(kept[0].offset > lost[0].offset);
        assert_eq!(store.read(kept[0]).unwrap(), x);
        // The reserved but unwritten record is not mistaken for a message.
        assert!(store.read(lost[0]).is_err());
    }

    #[tokio::test]
    async fn corruption_and_bad_locations_are_errors_not_wrong_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw_dir = dir.path().join("r");
        let store = RawStore::open(&raw_dir).unwrap();
        let x = b"Subject: integrity\r\n\r\nbody".as_slice();
        let sha = hex::encode(Sha256::digest(x));
        let loc = store.append(&[(x, &sha)]).await.unwrap()[0];
        // Wrong length, offset inside the header, missing segment.
        assert!(store.read(RawLoc { len: 3, ..loc }).is_err());
        assert!(store.read(RawLoc { offset: 5, ..loc }).is_err());
        assert!(store.read(RawLoc { seg: 9, ..loc }).is_err());
        // A flipped byte in the message is caught by the stored SHA-256.
        let file = OpenOptions::new()
            .write(true)
            .open(segment_path(&raw_dir, 1))
            .unwrap();
        file.write_all_at(b"X", loc.offset as u64 + 2).unwrap();
        let err = store.read(loc).unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
    }

    #[tokio::test]
    async fn a_full_segment_rolls_over_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let raw_dir = dir.path().join("r");
        let store = RawStore::open(&raw_dir).unwrap();
        let small = b"first".as_slice();
        let sha = hex::encode(Sha256::digest(small));
        let first = store.append(&[(small, &sha)]).await.unwrap()[0];
        // Pretend the first segment is full.
        store.current.lock().unwrap().end = SEGMENT_BYTES;
        let second = store.append(&[(small, &sha)]).await.unwrap()[0];
        assert_eq!((first.seg, second.seg), (1, 2));
        assert_eq!(second.offset, HEADER_BYTES as i64);
        assert!(segment_path(&raw_dir, 2).exists());
        drop(store);
        let store = RawStore::open(&raw_dir).unwrap();
        let third = store.append(&[(small, &sha)]).await.unwrap()[0];
        assert_eq!(
            third.seg, 2,
            "a reopened store appends to the newest segment"
        );
        assert_eq!(store.read(first).unwrap(), small);
        assert_eq!(store.read(third).unwrap(), small);
    }

    #[test]
    fn the_directory_sits_beside_the_database() {
        assert_eq!(
            dir_for(Path::new("/var/lib/postdesk/postdesk.db")),
            PathBuf::from("/var/lib/postdesk/postdesk.db-raw")
        );
        assert_eq!(dir_for(Path::new("t.db")), PathBuf::from("t.db-raw"));
    }
}
