//! Egress proxy: per-agent hostname allowlist, credential injection and egress log.
