//! Local stand-ins for third-party services (Anthropic, Composio) used by tests and benchmarks.
