//! Metadata store: one interface with Postgres and SQLite implementations.
