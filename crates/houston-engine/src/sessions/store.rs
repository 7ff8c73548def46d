//! Reading and appending session files.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use houston_protocol::{SessionId, UserId};
use time::OffsetDateTime;

use super::record::SessionRecord;

/// Error of a session file operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to {operation} {path}: {source}")]
    Io { operation: &'static str, path: PathBuf, source: std::io::Error },
}

/// Who is reading a session file, which decides how an unterminated last line is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// The session's writer, holding the session: an unterminated last line is a torn
    /// record from a crash and is copied aside.
    Writer,
    /// Any other reader: an unterminated last line may be a record being written right now,
    /// so it is left alone.
    Reader,
}

/// A written record whose fsync is still due.
#[derive(Debug)]
pub struct PendingSync {
    file: File,
    path: PathBuf,
    /// The folder to fsync as well, because the file was created by this write.
    new_file_dir: Option<PathBuf>,
}

impl PendingSync {
    /// Fsyncs the file, and its folder when the write created the file.
    ///
    /// # Errors
    /// Returns [`StoreError`] when an fsync fails.
    pub fn sync(self) -> Result<(), StoreError> {
        let failed = |operation: &'static str| {
            let path = self.path.clone();
            move |source| StoreError::Io { operation, path, source }
        };
        self.file.sync_data().map_err(failed("fsync"))?;
        if let Some(dir) = &self.new_file_dir {
            File::open(dir).and_then(|d| d.sync_all()).map_err(failed("fsync the folder of"))?;
        }
        Ok(())
    }
}

/// One session of a user, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub session_id: SessionId,
    /// The start of the first user message.
    pub title: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The session files of one agent folder.
#[derive(Debug, Clone)]
pub struct SessionStore {
    root: PathBuf,
}

impl SessionStore {
    /// Opens the store of the agent folder `agent_dir` (files under `.houston/sessions`).
    #[must_use]
    pub fn new(agent_dir: &Path) -> Self {
        Self { root: agent_dir.join(".houston/sessions") }
    }

    /// Returns the path of a session file.
    #[must_use]
    pub fn path(&self, user: &UserId, session: &SessionId) -> PathBuf {
        self.root.join(user.as_str()).join(format!("{session}.jsonl"))
    }

    /// Appends `record` as one line and fsyncs the file (and its folder when the file is new).
    ///
    /// Only the session's single writer may call this. When the file does not end with a
    /// newline (a torn record from a crash), a newline is written first, so the new record
    /// never joins the damaged one.
    ///
    /// # Errors
    /// Returns [`StoreError`] when a folder or the file cannot be created, written or synced.
    pub fn append(&self, user: &UserId, session: &SessionId, record: &SessionRecord) -> Result<(), StoreError> {
        self.append_unsynced(user, session, record)?.sync()
    }

    /// Appends `record` like [`SessionStore::append`] but leaves the fsync to the returned
    /// [`PendingSync`], so the caller can overlap it with other work. The record is durable
    /// only once [`PendingSync::sync`] returned.
    ///
    /// # Errors
    /// Returns [`StoreError`] when a folder or the file cannot be created or written.
    pub fn append_unsynced(&self, user: &UserId, session: &SessionId, record: &SessionRecord) -> Result<PendingSync, StoreError> {
        let path = self.path(user, session);
        let dir = path.parent().expect("session paths have a parent").to_owned();
        let io = |operation: &'static str| {
            let path = path.clone();
            move |source| StoreError::Io { operation, path, source }
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io("create the folder of"))?;

        let file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&path).map_err(io("open"))?;
        let length = file.metadata().map_err(io("stat"))?.len();
        let mut line = Vec::with_capacity(256);
        if length > 0 && !ends_with_newline(&file, length).map_err(io("read"))? {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, record).expect("session records always serialize");
        line.push(b'\n');
        (&file).write_all(&line).map_err(io("write"))?;
        let new_file_dir = (length == 0).then_some(dir);
        Ok(PendingSync { file, path, new_file_dir })
    }

    /// Reads a session's records, or `None` when the session does not exist.
    ///
    /// Damaged lines (invalid JSON, NUL bytes, torn writes) are skipped, logged and copied to
    /// the side file `<session-id>.jsonl.damaged` once each; the records around them load.
    ///
    /// # Errors
    /// Returns [`StoreError`] when the file exists but cannot be read.
    pub fn load(&self, user: &UserId, session: &SessionId, mode: LoadMode) -> Result<Option<Vec<SessionRecord>>, StoreError> {
        let path = self.path(user, session);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { operation: "read", path, source }),
        };
        let (records, damaged) = parse_lines(&bytes, mode);
        if !damaged.is_empty() {
            tracing::warn!(path = %path.display(), count = damaged.len(), "skipped damaged session lines");
            if let Err(error) = keep_aside(&path, &damaged) {
                tracing::error!(path = %path.display(), %error, "failed to copy damaged session lines aside");
            }
        }
        Ok(Some(records))
    }

    /// Lists the sessions of `user`, most recently updated first.
    ///
    /// # Errors
    /// Returns [`StoreError`] when the user's folder exists but cannot be read.
    pub fn list(&self, user: &UserId) -> Result<Vec<SessionSummary>, StoreError> {
        let dir = self.root.join(user.as_str());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Io { operation: "list", path: dir, source }),
        };
        let mut sessions = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".jsonl") else { continue };
            let Ok(session_id) = SessionId::parse(stem) else { continue };
            let Some(records) = self.load(user, &session_id, LoadMode::Reader)? else { continue };
            if let Some(summary) = summarize(session_id, &records) {
                sessions.push(summary);
            }
        }
        sessions.sort_by_key(|session| std::cmp::Reverse(session.updated_at));
        Ok(sessions)
    }
}

fn ends_with_newline(file: &File, length: u64) -> std::io::Result<bool> {
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, length - 1)?;
    Ok(last[0] == b'\n')
}

/// A line that did not parse, with its byte offset in the file.
struct DamagedLine {
    offset: usize,
    text: String,
}

fn parse_lines(bytes: &[u8], mode: LoadMode) -> (Vec<SessionRecord>, Vec<DamagedLine>) {
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    let mut offset = 0;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        let start = offset;
        offset += raw.len();
        let terminated = raw.ends_with(b"\n");
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = (!line.contains(&0)).then(|| serde_json::from_slice::<SessionRecord>(line).ok()).flatten();
        match parsed {
            Some(record) => records.push(record),
            None if !terminated && mode == LoadMode::Reader => {}
            None => damaged.push(DamagedLine { offset: start, text: String::from_utf8_lossy(line).into_owned() }),
        }
    }
    (records, damaged)
}

/// Appends each damaged line to the side file unless a line from the same offset is already
/// there, so repeated loads do not copy it again.
fn keep_aside(path: &Path, damaged: &[DamagedLine]) -> std::io::Result<()> {
    let mut side_path = path.as_os_str().to_owned();
    side_path.push(".damaged");
    let side_path = PathBuf::from(side_path);
    let known: HashSet<u64> = match File::open(&side_path) {
        Ok(file) => BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
            .filter_map(|value| value["offset"].as_u64())
            .collect(),
        Err(_) => HashSet::new(),
    };
    let mut file = OpenOptions::new().append(true).create(true).mode(0o600).open(&side_path)?;
    for line in damaged.iter().filter(|line| !known.contains(&(line.offset as u64))) {
        let entry = serde_json::json!({ "offset": line.offset, "line": line.text });
        writeln!(file, "{entry}")?;
    }
    file.sync_data()
}

fn summarize(session_id: SessionId, records: &[SessionRecord]) -> Option<SessionSummary> {
    let first = records.first()?;
    let last = records.last()?;
    let title = records
        .iter()
        .find_map(|record| match record {
            SessionRecord::User(user) => Some(user.text.chars().take(80).collect::<String>()),
            SessionRecord::Assistant(_) => None,
        })
        .unwrap_or_default();
    Some(SessionSummary { session_id, title, created_at: first.at(), updated_at: last.at() })
}

#[cfg(test)]
mod tests {
    use houston_protocol::TurnId;

    use super::*;
    use crate::sessions::{UserRecord, now};

    fn user_record(turn: &str, text: &str) -> SessionRecord {
        SessionRecord::User(UserRecord {
            turn_id: TurnId::parse(turn).unwrap(),
            at: now(),
            text: text.into(),
            idempotency_key: None,
        })
    }

    fn ids() -> (UserId, SessionId) {
        (UserId::parse("u1").unwrap(), SessionId::parse("s1").unwrap())
    }

    #[test]
    fn append_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let (user, session) = ids();
        store.append(&user, &session, &user_record("t1", "hello")).unwrap();
        store.append(&user, &session, &user_record("t2", "again")).unwrap();
        let records = store.load(&user, &session, LoadMode::Reader).unwrap().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].turn_id().as_str(), "t2");
        assert!(dir.path().join(".houston/sessions/u1/s1.jsonl").is_file());
    }

    #[test]
    fn torn_line_is_skipped_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let (user, session) = ids();
        store.append(&user, &session, &user_record("t1", "before")).unwrap();
        let path = store.path(&user, &session);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"type":"user","turn_id":"t2","at":"20"#).unwrap();
        store.append(&user, &session, &user_record("t3", "after")).unwrap();

        let records = store.load(&user, &session, LoadMode::Writer).unwrap().unwrap();
        let turns: Vec<_> = records.iter().map(|r| r.turn_id().as_str().to_owned()).collect();
        assert_eq!(turns, ["t1", "t3"]);
        let side = std::fs::read_to_string(path.with_extension("jsonl.damaged")).unwrap();
        assert_eq!(side.lines().count(), 1);
        assert!(side.contains("turn_id"), "{side}");

        store.load(&user, &session, LoadMode::Writer).unwrap();
        let side = std::fs::read_to_string(path.with_extension("jsonl.damaged")).unwrap();
        assert_eq!(side.lines().count(), 1, "a damaged line is copied aside once");
    }

    #[test]
    fn nul_damaged_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let (user, session) = ids();
        store.append(&user, &session, &user_record("t1", "before")).unwrap();
        let path = store.path(&user, &session);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0u8; 64]).unwrap();
        file.write_all(b"\n").unwrap();
        store.append(&user, &session, &user_record("t2", "after")).unwrap();
        let records = store.load(&user, &session, LoadMode::Reader).unwrap().unwrap();
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn reader_ignores_unterminated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let (user, session) = ids();
        store.append(&user, &session, &user_record("t1", "before")).unwrap();
        let path = store.path(&user, &session);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"type\":").unwrap();
        store.load(&user, &session, LoadMode::Reader).unwrap();
        assert!(!path.with_extension("jsonl.damaged").exists());
    }

    #[test]
    fn list_returns_titles_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(dir.path());
        let user = UserId::parse("u1").unwrap();
        store.append(&user, &SessionId::parse("a").unwrap(), &user_record("t1", "first question")).unwrap();
        store.append(&user, &SessionId::parse("b").unwrap(), &user_record("t2", "second question")).unwrap();
        let sessions = store.list(&user).unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].title, "second question");
        assert!(store.list(&UserId::parse("nobody").unwrap()).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn valid_records_survive_garbage_lines(entries in proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..80)), 0..12)) {
            let dir = tempfile::tempdir().unwrap();
            let store = SessionStore::new(dir.path());
            let (user, session) = ids();
            let path = store.path(&user, &session);
            let mut expected = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                match entry {
                    None => {
                        let turn = format!("t{index}");
                        store.append(&user, &session, &user_record(&turn, "text")).unwrap();
                        expected.push(turn);
                    }
                    Some(garbage) => {
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        let mut file = OpenOptions::new().append(true).create(true).open(&path).unwrap();
                        file.write_all(garbage).unwrap();
                    }
                }
            }
            let records = store.load(&user, &session, LoadMode::Writer).unwrap().unwrap_or_default();
            let turns: Vec<String> = records.iter().map(|r| r.turn_id().as_str().to_owned()).collect();
            proptest::prop_assert_eq!(turns, expected);
        }
    }
}
