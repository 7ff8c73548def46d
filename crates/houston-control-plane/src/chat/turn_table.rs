//! The `chat_turns` table: one row per turn, shared by every replica, for idempotent send and
//! for resuming a turn on a replica that does not run it.
//!
//! The table is created at start with `CREATE TABLE IF NOT EXISTS` on the store's own
//! database (Postgres or SQLite); both run the same SQL text.

use houston_protocol::{AgentId, SessionId, TurnId, UserId, WorkspaceId};
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;

use super::error::ChatError;
use super::ports::{TurnRecord, TurnStatus};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS chat_turns (
    turn_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    idempotency_key TEXT,
    prefix_len BIGINT,
    cold_start_ms BIGINT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
)";

// NULL keys never collide in a unique index (Postgres and SQLite alike), so turns without an
// idempotency key are not constrained.
const CREATE_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS chat_turns_idempotency
    ON chat_turns (user_id, agent_id, idempotency_key)";

macro_rules! columns {
    () => {
        "turn_id, session_id, user_id, agent_id, workspace_id, idempotency_key, prefix_len, \
         cold_start_ms, status, created_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO chat_turns (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
);
const SELECT_BY_ID: &str = concat!("SELECT ", columns!(), " FROM chat_turns WHERE turn_id = $1");
const SELECT_BY_KEY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM chat_turns WHERE user_id = $1 AND agent_id = $2 AND idempotency_key = $3"
);

type Row = (String, String, String, String, String, Option<String>, Option<i64>, Option<i64>, String, i64);

/// The turn table on the store's database.
#[derive(Debug, Clone)]
pub enum TurnTable {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

macro_rules! on_pool {
    ($table:expr, $pool:ident => $body:expr) => {
        match $table {
            TurnTable::Postgres($pool) => $body,
            TurnTable::Sqlite($pool) => $body,
        }
    };
}

fn internal(error: sqlx::Error) -> ChatError {
    ChatError::Internal(format!("chat_turns query failed: {error}"))
}

impl TurnTable {
    /// Creates the table and its index when missing.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the statements fail.
    pub async fn create(&self) -> Result<(), ChatError> {
        for statement in [CREATE_TABLE, CREATE_INDEX] {
            // Two replicas starting at once on Postgres can race on `IF NOT EXISTS`; the
            // loser's retry then finds the table.
            let first = on_pool!(self, pool => sqlx::query(statement).execute(pool).await.map(drop));
            if first.is_err() {
                on_pool!(self, pool => sqlx::query(statement).execute(pool).await.map(drop)).map_err(internal)?;
            }
        }
        Ok(())
    }

    /// Inserts a turn. Returns false when a turn with the same user, agent and idempotency
    /// key exists already.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the statement fails.
    pub async fn insert(&self, record: &TurnRecord) -> Result<bool, ChatError> {
        let created_at = (record.created_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let result = on_pool!(self, pool => sqlx::query(INSERT)
            .bind(record.turn_id.as_str())
            .bind(record.session_id.as_str())
            .bind(record.user_id.as_str())
            .bind(record.agent_id.as_str())
            .bind(record.workspace_id.as_str())
            .bind(record.idempotency_key.as_deref())
            .bind(record.prefix_len.map(|n| n as i64))
            .bind(record.cold_start_ms.map(|n| n as i64))
            .bind(record.status.as_str())
            .bind(created_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(internal)?;
        Ok(result == 1)
    }

    /// Returns a turn by id.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the query fails or a stored value is invalid.
    pub async fn get(&self, turn_id: &TurnId) -> Result<Option<TurnRecord>, ChatError> {
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(SELECT_BY_ID)
            .bind(turn_id.as_str())
            .fetch_optional(pool)
            .await)
        .map_err(internal)?;
        row.map(from_row).transpose()
    }

    /// Returns the turn a user sent to an agent with an idempotency key.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the query fails or a stored value is invalid.
    pub async fn find_by_key(&self, user: &UserId, agent: &AgentId, key: &str) -> Result<Option<TurnRecord>, ChatError> {
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(SELECT_BY_KEY)
            .bind(user.as_str())
            .bind(agent.as_str())
            .bind(key)
            .fetch_optional(pool)
            .await)
        .map_err(internal)?;
        row.map(from_row).transpose()
    }

    /// Stores the prefix length and cold-start time of a turn.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the statement fails.
    pub async fn set_prefix(&self, turn_id: &TurnId, prefix_len: u64, cold_start_ms: Option<u64>) -> Result<(), ChatError> {
        let sql = "UPDATE chat_turns SET prefix_len = $1, cold_start_ms = $2 WHERE turn_id = $3";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(prefix_len as i64)
            .bind(cold_start_ms.map(|n| n as i64))
            .bind(turn_id.as_str())
            .execute(pool)
            .await
            .map(drop))
        .map_err(internal)
    }

    /// Stores how a turn ended.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the statement fails.
    pub async fn finish(&self, turn_id: &TurnId, status: TurnStatus) -> Result<(), ChatError> {
        let sql = "UPDATE chat_turns SET status = $1, finished_at = $2 WHERE turn_id = $3";
        let now = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        on_pool!(self, pool => sqlx::query(sql)
            .bind(status.as_str())
            .bind(now)
            .bind(turn_id.as_str())
            .execute(pool)
            .await
            .map(drop))
        .map_err(internal)
    }
}

fn from_row(row: Row) -> Result<TurnRecord, ChatError> {
    let (turn_id, session_id, user_id, agent_id, workspace_id, key, prefix_len, cold_start_ms, status, created_at) = row;
    let invalid = |what: &str| ChatError::Internal(format!("chat_turns holds an invalid {what}"));
    let status = match status.as_str() {
        "open" => TurnStatus::Open,
        "completed" => TurnStatus::Completed,
        "failed" => TurnStatus::Failed,
        "cancelled" => TurnStatus::Cancelled,
        _ => return Err(invalid("status")),
    };
    Ok(TurnRecord {
        turn_id: TurnId::parse(turn_id).map_err(|_| invalid("turn_id"))?,
        session_id: SessionId::parse(session_id).map_err(|_| invalid("session_id"))?,
        user_id: UserId::parse(user_id).map_err(|_| invalid("user_id"))?,
        agent_id: AgentId::parse(agent_id).map_err(|_| invalid("agent_id"))?,
        workspace_id: WorkspaceId::parse(workspace_id).map_err(|_| invalid("workspace_id"))?,
        idempotency_key: key,
        prefix_len: prefix_len.map(|n| n as u64),
        cold_start_ms: cold_start_ms.map(|n| n as u64),
        status,
        created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(created_at) * 1_000_000)
            .map_err(|_| invalid("created_at"))?,
    })
}
