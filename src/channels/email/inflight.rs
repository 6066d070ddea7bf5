//! Which messages of a folder are being worked on right now, kept in a small file so that
//! it survives the process: the poison-mail quarantine.
//!
//! A message that makes the process abort (a stack overflow, an `abort`, the kernel's OOM
//! killer) is fetched again on every start, because its UID never got committed; with
//! `Restart=on-failure` the daemon would crash-loop and nothing behind it would ever be
//! ingested. So before the risky work on each message (parsing, deciding) its UID is
//! written here, and cleared when the batch ends in any ordinary way (committed, or failed
//! with an error). A record still present when the folder is next synced means the process
//! died in the middle, and the UIDs in it are suspects.
//!
//! One crash is not proof: `kill -9`, a power cut or an OOM kill of a big but harmless
//! batch look the same, and so does a poison mail in *another* folder, since every folder
//! is synced in the same process. So a suspect gets a second chance, alone: the folder is
//! synced one message at a time (careful mode) up to the highest suspect, and each suspect
//! is worked on holding [`alone`], which waits for every other folder's sync pass to end
//! and keeps new ones from starting. A suspect is recorded with the careful flag. Only a
//! message that was in flight *again, as a suspect, alone* when the process died is
//! quarantined: stored as unprocessable with its raw bytes, never parsed again, and
//! skipped from then on. A poison mail thus costs two restarts, never a loop, and an
//! innocent message next to one is never quarantined for it. Until the careful pass is
//! over, an ordinary error puts the record back as it was found ([`InFlight::finish`]), so
//! a suspect is not forgotten because the connection dropped.
//!
//! The record is one fixed-size write at offset 0 (no fsync: it protects against crash
//! loops, and a crash loop does not lose the page cache). Writes are cheap enough to make
//! one per message and stage. No SQL here; the quarantine itself is stored by the caller.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Held shared by every folder's sync pass, and exclusively while a suspect is worked on.
static GATE: RwLock<()> = RwLock::const_new(());

/// For a folder's ordinary sync pass. Hold one guard at a time, never two.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().await
}

/// For working on one suspect: no other folder's pass runs meanwhile, so a crash now is
/// the suspect's doing (or the operator's).
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

const MAGIC: &[u8; 4] = b"PDI1";
const RECORD: usize = 24;

/// Where the in-flight records of the database at `db` live.
pub fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-inflight");
    db.with_file_name(name)
}

/// What the record says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub uidvalidity: u32,
    /// The message in flight was a suspect of an earlier crash, worked on alone.
    pub careful: bool,
    /// The UID being parsed, or 0.
    pub parsing: u32,
    /// The UID being decided (threaded, applied, composed), or 0.
    pub deciding: u32,
}

impl Record {
    /// The UIDs that were in flight, without zeros or repeats, ascending.
    pub fn suspects(&self) -> Vec<u32> {
        let mut v: Vec<u32> = [self.parsing, self.deciding]
            .into_iter()
            .filter(|u| *u != 0)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn encode(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        let fields = [
            self.uidvalidity,
            u32::from(self.careful),
            self.parsing,
            self.deciding,
        ];
        for (i, chunk) in b.chunks_mut(4).enumerate() {
            let bytes = match i {
                0 => *MAGIC,
                1..=4 => fields.get(i - 1).copied().unwrap_or(0).to_le_bytes(),
                _ => [0; 4],
            };
            chunk.copy_from_slice(&bytes);
        }
        b
    }

    fn decode(b: &[u8]) -> Option<Record> {
        if b.get(..4)? != MAGIC {
            return None;
        }
        let field = |i: usize| -> Option<u32> {
            let s = b.get(4 + 4 * i..8 + 4 * i)?;
            Some(u32::from_le_bytes(s.try_into().ok()?))
        };
        Some(Record {
            uidvalidity: field(0)?,
            careful: field(1)? != 0,
            parsing: field(2)?,
            deciding: field(3)?,
        })
    }
}

/// The in-flight record of one folder.
#[derive(Debug)]
pub struct InFlight {
    file: File,
    path: PathBuf,
    state: Mutex<Record>,
    /// The record found at opening, until its suspects are settled.
    pending: Mutex<Option<Record>>,
}

impl InFlight {
    /// Opens (creating) the record of `mailbox`/`folder` under `dir`, and returns it with
    /// what it said: the record a previous run left behind, if it died mid-batch.
    pub fn open(
        dir: &Path,
        mailbox: &str,
        folder: &str,
    ) -> std::io::Result<(InFlight, Option<Record>)> {
        std::fs::create_dir_all(dir)?;
        let mut h = Sha256::new();
        h.update(mailbox.as_bytes());
        h.update([0]);
        h.update(folder.as_bytes());
        let name = hex::encode(h.finalize());
        let path = dir.join(name.get(..32).unwrap_or(&name));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut buf = [0u8; RECORD];
        let left = match file.read_at(&mut buf, 0) {
            Ok(n) if n == RECORD => Record::decode(&buf).filter(|r| !r.suspects().is_empty()),
            _ => None,
        };
        Ok((
            InFlight {
                file,
                path,
                state: Mutex::new(Record::default()),
                pending: Mutex::new(left),
            },
            left,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn update(&self, f: impl FnOnce(&mut Record)) {
        let mut r = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut r);
        if let Err(e) = self.file.write_at(&r.encode(), 0) {
            // Losing the record only weakens the quarantine; ingest goes on.
            tracing::warn!("Cannot write {}: {e}", self.path.display());
        }
    }

    /// Starts a sync of the folder under `uidvalidity`, carefully or not.
    pub fn begin(&self, uidvalidity: u32, careful: bool) {
        self.update(|r| {
            *r = Record {
                uidvalidity,
                careful,
                parsing: 0,
                deciding: 0,
            }
        });
    }

    /// `uid` is about to be parsed (0: parsing is over).
    pub fn parsing(&self, uid: u32) {
        self.update(|r| r.parsing = uid);
    }

    /// `uid` is about to be decided (0: deciding is over).
    pub fn deciding(&self, uid: u32) {
        self.update(|r| r.deciding = uid);
    }

    /// The suspects found at opening are dealt with (quarantined, or synced carefully).
    pub fn settle(&self) {
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The folder's sync ended in an ordinary way: nothing is in flight, unless suspects
    /// found at opening are still unsettled, whose record is then written back.
    pub fn finish(&self) {
        let pending = *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending {
            Some(left) => self.update(|r| *r = left),
            None => self.clear(),
        }
    }

    /// Nothing is in flight: the batch ended in an ordinary way.
    pub fn clear(&self) {
        self.update(|r| {
            r.parsing = 0;
            r.deciding = 0;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_left_behind_names_its_suspects() {
        let dir = tempfile::tempdir().unwrap();
        let (f, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        assert_eq!(left, None);
        f.begin(7, false);
        f.parsing(12);
        f.deciding(9);
        drop(f);
        let (f, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        let left = left.unwrap();
        assert_eq!(left.uidvalidity, 7);
        assert!(!left.careful);
        assert_eq!(left.suspects(), vec![9, 12]);
        // Another folder has its own record.
        let (_, other) = InFlight::open(dir.path(), "support", "Sent").unwrap();
        assert_eq!(other, None);
        f.begin(7, true);
        f.parsing(12);
        f.clear();
        drop(f);
        let (f, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        assert_eq!(left, None, "a cleared record names nobody");
        // Suspects not yet settled survive an ordinary end; settled ones do not.
        f.begin(7, false);
        f.deciding(30);
        drop(f);
        let (f, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        assert_eq!(left.unwrap().suspects(), vec![30]);
        f.begin(7, false);
        f.finish();
        drop(f);
        let (f, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        assert_eq!(left.unwrap().suspects(), vec![30], "unsettled: kept");
        f.settle();
        f.finish();
        drop(f);
        let (_, left) = InFlight::open(dir.path(), "support", "INBOX").unwrap();
        assert_eq!(left, None, "settled: cleared");
    }

    #[test]
    fn garbage_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let (f, _) = InFlight::open(dir.path(), "m", "f").unwrap();
        std::fs::write(f.path(), b"garbage that is long enough to read").unwrap();
        let (_, left) = InFlight::open(dir.path(), "m", "f").unwrap();
        assert_eq!(left, None);
        assert_eq!(
            dir_for(Path::new("/var/lib/p/postdesk.db")),
            Path::new("/var/lib/p/postdesk.db-inflight")
        );
    }
}
