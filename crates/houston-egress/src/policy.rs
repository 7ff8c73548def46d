//! Per-agent egress policy: the hostname allowlist.

use crate::target::{TargetError, normalize_host};

/// An allowlist entry with an invalid host, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed_hosts entries: {}", .0.join("; "))]
pub struct PolicyError(pub Vec<String>);

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this normalized host.
    Exact(String),
    /// Any subdomain of this name (written `*.example.com`), not the name itself.
    Subdomains(String),
}

impl HostPattern {
    fn parse(raw: &str) -> Result<Self, TargetError> {
        match raw.strip_prefix("*.") {
            Some(suffix) => Ok(Self::Subdomains(normalize_host(suffix)?)),
            None => Ok(Self::Exact(normalize_host(raw)?)),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => host == exact,
            Self::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }

    fn as_text(&self) -> String {
        match self {
            Self::Exact(exact) => exact.clone(),
            Self::Subdomains(suffix) => format!("*.{suffix}"),
        }
    }
}

/// The hosts one agent may reach through the egress proxy.
///
/// A trusted upstream is reachable only when its host is in `allowed_hosts`, so the default
/// policy ([`crate::EgressProxy::default_policy`]) lists the trusted upstreams' hosts, and an
/// operator can take the tool broker away from an agent by leaving its host out. Every host
/// that is not a trusted upstream must also pass the address check, whatever this list contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentEgressPolicy {
    allowed_hosts: Vec<HostPattern>,
}

impl AgentEgressPolicy {
    /// Builds a policy from host names, IP literals and `*.domain` patterns.
    ///
    /// # Errors
    /// Returns [`PolicyError`] listing every invalid entry at once.
    pub fn new<I, S>(allowed_hosts: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = Vec::new();
        let mut errors = Vec::new();
        for raw in allowed_hosts {
            match HostPattern::parse(raw.as_ref()) {
                Ok(pattern) if !patterns.contains(&pattern) => patterns.push(pattern),
                Ok(_) => {}
                Err(error) => errors.push(error.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyError(errors));
        }
        Ok(Self {
            allowed_hosts: patterns,
        })
    }

    /// Builds a policy from hosts that are already normalized, such as upstream origins.
    pub(crate) fn from_normalized_hosts(hosts: impl IntoIterator<Item = String>) -> Self {
        let mut patterns = Vec::new();
        for host in hosts {
            let pattern = HostPattern::Exact(host);
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Self {
            allowed_hosts: patterns,
        }
    }

    /// Returns whether the normalized `host` is on the allowlist.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| pattern.matches(host))
    }

    /// Returns the allowlist entries in their normalized spelling.
    #[must_use]
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.allowed_hosts
            .iter()
            .map(HostPattern::as_text)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_entries_match_normalized_hosts() {
        let policy = AgentEgressPolicy::new(["API.example.com.", "[::1]"]).expect("valid");
        assert!(policy.allows("api.example.com"));
        assert!(policy.allows("::1"));
        assert!(!policy.allows("example.com"));
        assert!(!policy.allows("evil-api.example.com"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let policy = AgentEgressPolicy::new(["*.example.com"]).expect("valid");
        assert!(policy.allows("a.example.com"));
        assert!(policy.allows("a.b.example.com"));
        assert!(!policy.allows("example.com"));
        assert!(!policy.allows("badexample.com"));
    }

    #[test]
    fn new_lists_every_invalid_entry() {
        let Err(PolicyError(errors)) = AgentEgressPolicy::new(["ok.com", "a b", "x/y"]) else {
            panic!("invalid entries must be rejected");
        };
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("a b"), "{errors:?}");
    }

    #[test]
    fn empty_policy_allows_nothing() {
        assert!(!AgentEgressPolicy::default().allows("example.com"));
    }
}
