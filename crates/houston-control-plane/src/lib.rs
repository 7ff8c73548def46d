//! Public API: identity, grants, routing, stream proxy, audit, usage, rate limits, admin.
