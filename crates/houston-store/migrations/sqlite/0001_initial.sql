-- Metadata of Houston Cloud. Times are Unix milliseconds (INTEGER) and JSON is stored as
-- TEXT, so that the Postgres and SQLite schemas accept the same queries.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT UNIQUE,
    name             TEXT NOT NULL,
    password_hash    TEXT,
    external_issuer  TEXT,
    external_subject TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (external_issuer, external_subject)
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE agents (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug              TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    icon              TEXT,
    category          TEXT,
    definition        TEXT NOT NULL,
    instructions      TEXT NOT NULL DEFAULT '',
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    idle_timeout_secs INTEGER NOT NULL DEFAULT 120,
    keep_warm         INTEGER NOT NULL DEFAULT 0,
    allowed_hosts     TEXT NOT NULL DEFAULT '[]',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (workspace_id, slug)
);

CREATE TABLE grants (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, agent_id)
);
CREATE INDEX grants_agent ON grants (agent_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER
);

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    at            INTEGER NOT NULL,
    workspace_id  TEXT,
    actor_user_id TEXT,
    action        TEXT NOT NULL,
    agent_id      TEXT,
    target        TEXT,
    decision      TEXT,
    details       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_workspace_at ON audit_log (workspace_id, at);

CREATE TABLE usage_events (
    id              TEXT PRIMARY KEY,
    at              INTEGER NOT NULL,
    day             TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    messages        INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    wake_ups        INTEGER NOT NULL DEFAULT 0,
    runtime_seconds INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_events_workspace_day ON usage_events (workspace_id, day);

CREATE TABLE sessions (
    agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, session_id)
);
CREATE INDEX sessions_user ON sessions (agent_id, user_id, updated_at);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
