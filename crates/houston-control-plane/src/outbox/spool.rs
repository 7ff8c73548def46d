//! The spool: one JSON-lines file per batch in the outbox's folder, so records survive a
//! crash until the store has them.
//!
//! A batch is written to `NAME.tmp`, fsynced, renamed to `NAME.jsonl` and the folder fsynced,
//! so a `.jsonl` file is always complete. A leftover `.tmp` file is a batch that was never
//! handed to the store writer and is deleted at start. File names are UUIDv7, so sorting them
//! replays batches in the order they were spooled.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The folder of one outbox's spool files.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    dir: PathBuf,
}

/// A batch read back from the spool at start.
pub(crate) struct SpooledBatch<T> {
    pub(crate) path: PathBuf,
    pub(crate) records: Vec<T>,
}

impl Spool {
    /// Creates the folder (mode 0700) when it is missing.
    pub(crate) fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir })
    }

    /// Writes one batch, already encoded by [`encode`], durably as one file and returns its
    /// path. Blocks on disk I/O.
    pub(crate) fn append(&self, text: &[u8]) -> io::Result<PathBuf> {
        let name = uuid::Uuid::now_v7().simple().to_string();
        let temporary = self.dir.join(format!("{name}.tmp"));
        let path = self.dir.join(format!("{name}.jsonl"));
        let mut file = File::create(&temporary)?;
        file.write_all(text)?;
        file.sync_data()?;
        fs::rename(&temporary, &path)?;
        sync_dir(&self.dir)?;
        Ok(path)
    }

    /// Reads every complete batch left by an earlier process, oldest first, and deletes
    /// unfinished `.tmp` files. A file that cannot be parsed is renamed to `.corrupt` and
    /// kept for an operator, with an error logged.
    pub(crate) fn leftovers<T: DeserializeOwned>(&self, outbox: &'static str) -> io::Result<Vec<SpooledBatch<T>>> {
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)?.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
        paths.sort();
        let mut batches = Vec::new();
        for path in paths {
            match path.extension().and_then(|extension| extension.to_str()) {
                Some("tmp") => fs::remove_file(&path)?,
                Some("jsonl") => match read_batch(&path) {
                    Ok(records) => batches.push(SpooledBatch { path, records }),
                    Err(error) => {
                        tracing::error!(outbox, path = %path.display(), %error, "a spool file is unreadable; renamed it to .corrupt");
                        fs::rename(&path, path.with_extension("corrupt"))?;
                    }
                },
                _ => {}
            }
        }
        Ok(batches)
    }
}

/// Encodes records as JSON lines, the spool file format.
pub(crate) fn encode<T: Serialize>(records: &[T]) -> Result<Vec<u8>, serde_json::Error> {
    let mut text = Vec::new();
    for record in records {
        serde_json::to_writer(&mut text, record)?;
        text.push(b'\n');
    }
    Ok(text)
}

fn read_batch<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let mut records = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if !line.is_empty() {
            records.push(serde_json::from_str(&line).map_err(io::Error::other)?);
        }
    }
    Ok(records)
}

/// Deletes a batch file once the store has its records, and fsyncs the folder so the
/// deletion survives a crash (otherwise the batch would only be replayed, harmlessly).
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
