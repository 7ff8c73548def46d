//! Public API: identity, grants, routing, stream proxy, audit, usage, rate limits, admin.
pub mod chat;
pub mod web_assets;
