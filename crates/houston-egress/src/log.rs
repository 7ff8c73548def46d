//! Egress log: one JSON line per proxied request or tunnel, readable by the control plane.
//!
//! Entries hold the host and the path but never the query string, a header or a body,
//! because those may carry credentials or other secrets.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use houston_protocol::AgentId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Bytes read per step when the log is scanned from its end.
const READ_BLOCK: u64 = 64 * 1024;
/// Maximum length of a logged path, in bytes; longer paths are cut.
const MAX_LOGGED_PATH: usize = 256;

/// Whether an entry is an HTTP request or a CONNECT tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressKind {
    Http,
    Connect,
}

/// The proxy's decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressOutcome {
    /// Sent upstream; `status` is the upstream's status (200 for a tunnel).
    Forwarded,
    /// Refused by the allowlist or the address check; nothing was sent.
    Denied,
    /// Allowed, but invalid or not delivered (bad target, resolution or connection failed).
    Failed,
}

/// One egress log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgressLogEntry {
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub agent_id: AgentId,
    pub kind: EgressKind,
    pub method: String,
    /// `http` or `https`; absent for tunnels.
    pub scheme: Option<String>,
    pub host: String,
    pub port: u16,
    /// The request path without its query; absent for tunnels.
    pub path: Option<String>,
    /// Name of the trusted upstream that received a credential, if any.
    pub upstream: Option<String>,
    pub outcome: EgressOutcome,
    /// HTTP status returned to the agent.
    pub status: u16,
    /// The reason the request was denied or failed.
    pub reason: Option<String>,
    /// Body bytes (or tunnel bytes) sent from the agent upstream.
    pub bytes_up: u64,
    /// Body bytes (or tunnel bytes) sent from upstream to the agent.
    pub bytes_down: u64,
    /// Time from the request's arrival to the end of the response body or tunnel, in ms.
    pub duration_ms: f64,
}

/// Cuts a path to at most [`MAX_LOGGED_PATH`] bytes on a character boundary.
pub(crate) fn loggable_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_owned();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

/// The JSONL egress log file.
#[derive(Debug)]
pub struct EgressLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl EgressLog {
    /// Opens (or creates, with mode 0600) the log file for appending.
    // NOTE: nothing rotates the file. Because writes use O_APPEND, an external
    // `logrotate` with `copytruncate` works without reopening it.
    ///
    /// # Errors
    /// Returns the I/O error when the file cannot be opened.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Returns the log file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as a single `write` on an `O_APPEND` file, so concurrent writers
    /// never interleave lines. A failed write is logged and otherwise ignored, because
    /// losing a log line must not fail the agent's request.
    pub fn append(&self, entry: &EgressLogEntry) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "failed to encode an egress log entry");
                return;
            }
        };
        line.push(b'\n');
        // The write is one small append to the page cache, short enough to do inline on a
        // runtime thread.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(&line) {
            tracing::error!(%error, path = %self.path.display(), "failed to write the egress log");
        }
    }

    /// Reads the newest `limit` entries of this log, optionally of one agent only.
    ///
    /// # Errors
    /// See [`EgressLog::read_file`].
    pub fn read(&self, agent: Option<&AgentId>, limit: usize) -> io::Result<Vec<EgressLogEntry>> {
        Self::read_file(&self.path, agent, limit)
    }

    /// Reads the newest `limit` entries of the log at `path`, optionally of one agent only,
    /// oldest first. The file is scanned backwards, so the cost grows with `limit`, not with
    /// the file size. Lines that do not parse (a line torn by a crash) are skipped.
    ///
    /// # Errors
    /// Returns the I/O error when the file cannot be read.
    pub fn read_file(
        path: &Path,
        agent: Option<&AgentId>,
        limit: usize,
    ) -> io::Result<Vec<EgressLogEntry>> {
        let mut file = File::open(path)?;
        let mut position = file.seek(SeekFrom::End(0))?;
        let mut entries = Vec::new();
        // Bytes after the last newline seen so far, which belong to the next line back.
        let mut carry: Vec<u8> = Vec::new();
        while position > 0 && entries.len() < limit {
            let start = position.saturating_sub(READ_BLOCK);
            let mut block = vec![0; usize::try_from(position - start).unwrap_or(0)];
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(&mut block)?;
            block.extend_from_slice(&carry);
            let mut lines: Vec<&[u8]> = block.split(|b| *b == b'\n').collect();
            // The first piece may be the tail of a line that starts in an earlier block.
            carry = if start > 0 {
                lines.remove(0).to_vec()
            } else {
                Vec::new()
            };
            collect_newest(&lines, agent, limit, &mut entries);
            position = start;
        }
        entries.reverse();
        Ok(entries)
    }
}

/// Parses `lines` from the last to the first, pushing matching entries until `limit`.
fn collect_newest(
    lines: &[&[u8]],
    agent: Option<&AgentId>,
    limit: usize,
    entries: &mut Vec<EgressLogEntry>,
) {
    for line in lines.iter().rev() {
        if entries.len() >= limit {
            return;
        }
        if line.is_empty() {
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<EgressLogEntry>(line) else {
            continue;
        };
        if agent.is_none_or(|agent| *agent == entry.agent_id) {
            entries.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(agent: &str, host: &str) -> EgressLogEntry {
        EgressLogEntry {
            time: OffsetDateTime::now_utc(),
            agent_id: AgentId::parse(agent).expect("valid id"),
            kind: EgressKind::Http,
            method: "GET".to_owned(),
            scheme: Some("http".to_owned()),
            host: host.to_owned(),
            port: 80,
            path: Some("/".to_owned()),
            upstream: None,
            outcome: EgressOutcome::Forwarded,
            status: 200,
            reason: None,
            bytes_up: 0,
            bytes_down: 10,
            duration_ms: 1.5,
        }
    }

    #[test]
    fn read_returns_newest_entries_of_agent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = EgressLog::open(dir.path().join("egress.jsonl")).expect("open");
        // Long hosts make the file span several read blocks.
        for i in 0..3000 {
            let agent = if i % 2 == 0 { "hr" } else { "sales" };
            log.append(&entry(agent, &format!("host-{i}-{}.test", "x".repeat(40))));
        }
        let hr = AgentId::parse("hr").expect("valid id");
        let newest = log.read(Some(&hr), 1000).expect("read");
        assert_eq!(newest.len(), 1000);
        assert!(newest.iter().all(|e| e.agent_id == hr));
        assert!(
            newest[999].host.starts_with("host-2998-"),
            "{}",
            newest[999].host
        );
        assert!(
            newest[0].host.starts_with("host-1000-"),
            "{}",
            newest[0].host
        );
        assert_eq!(log.read(None, 5000).expect("read").len(), 3000);
    }

    #[test]
    fn read_skips_torn_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("egress.jsonl");
        let log = EgressLog::open(&path).expect("open");
        log.append(&entry("hr", "a.test"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"time\":"))
            .expect("append torn line");
        let entries = EgressLog::read_file(&path, None, 10).expect("read");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].host, "a.test");
    }

    #[test]
    fn loggable_path_cuts_long_paths() {
        assert_eq!(loggable_path("/v1/messages"), "/v1/messages");
        let long = format!("/{}", "é".repeat(300));
        let cut = loggable_path(&long);
        assert!(cut.len() <= MAX_LOGGED_PATH + 3);
        assert!(cut.ends_with("..."));
    }
}
