//! Single-instance lock: only one postdesk may work on a database at a time.
//!
//! An exclusive advisory lock (flock) on `<database>.lock`, held for the life of the
//! process. The kernel releases it when the process dies, even by `kill -9`, so a crash
//! never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fs4::fs_std::FileExt;

#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock for `database`, or explains who holds it.
pub fn acquire(database: &Path) -> Result<InstanceLock> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("Opening lock file {}", path.display()))?;
    match FileExt::try_lock_exclusive(&file) {
        Ok(true) => {}
        Ok(false) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "another postdesk is already working on {} (lock {} held{}); stop it first",
                database.display(),
                path.display(),
                if holder.trim().is_empty() {
                    String::new()
                } else {
                    format!(" by pid {}", holder.trim())
                }
            );
        }
        Err(e) => return Err(e).with_context(|| format!("Locking {}", path.display())),
    }
    file.set_len(0).ok();
    write!(file, "{}", std::process::id()).ok();
    file.flush().ok();
    Ok(InstanceLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_database_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("x.db");
        let first = acquire(&db).unwrap();
        let err = acquire(&db).unwrap_err().to_string();
        assert!(err.contains("already working"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        acquire(&db).unwrap();
    }
}
