//! The Postgres and SQLite implementations of [`crate::Store`].
//!
//! Both run the same SQL text: `$N` placeholders (SQLite reads `$N` as parameter N too),
//! `ON CONFLICT`, `RETURNING`, text ids and millisecond times. The [`impl_store`] macro
//! expands that one body for each pool type, so the two can only differ in how they connect.

mod postgres;
mod queries;
mod rows;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
