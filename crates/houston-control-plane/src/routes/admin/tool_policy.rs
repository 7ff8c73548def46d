//! The tool policy in agent settings: which tools an agent may use and which need the
//! user's approval. The control plane stores it and passes it to the engine at launch.

use houston_store::AgentToolPolicy;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::FieldErrors;

/// Maximum patterns in each list.
const MAX_PATTERNS: usize = 100;
/// Maximum length of one pattern, in bytes.
const MAX_PATTERN_LENGTH: usize = 128;

/// Tool-name patterns: `*` matches any run of characters and case is ignored. A tool is
/// offered when it matches `allow` (or `allow` is empty) and matches no `deny` pattern. A call
/// of a tool matching `require_approval` waits for the user's approval.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ToolPolicyView {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub require_approval: Vec<String>,
}

impl From<&AgentToolPolicy> for ToolPolicyView {
    fn from(policy: &AgentToolPolicy) -> Self {
        Self { allow: policy.allow.clone(), deny: policy.deny.clone(), require_approval: policy.require_approval.clone() }
    }
}

/// Checks every pattern, recording problems under `settings.tools.`, and returns the policy
/// to store.
pub(crate) fn validate_tool_policy(fields: &mut FieldErrors, policy: ToolPolicyView) -> AgentToolPolicy {
    for (list, patterns) in [("allow", &policy.allow), ("deny", &policy.deny), ("require_approval", &policy.require_approval)] {
        if patterns.len() > MAX_PATTERNS {
            fields.add(format!("settings.tools.{list}"), format!("has {} patterns; at most {MAX_PATTERNS} are allowed", patterns.len()));
        }
        for (index, pattern) in patterns.iter().enumerate() {
            if let Err(reason) = check_pattern(pattern) {
                fields.add(format!("settings.tools.{list}[{index}]"), reason);
            }
        }
    }
    AgentToolPolicy { allow: policy.allow, deny: policy.deny, require_approval: policy.require_approval }
}

/// Accepts tool names such as `SLACK_SEND_MESSAGE` or `docs__search`, with `*` wildcards.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LENGTH {
        return Err(format!("must be 1 to {MAX_PATTERN_LENGTH} characters"));
    }
    let valid = pattern.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'*'));
    if !valid {
        return Err(format!("{pattern:?} may contain only letters, digits, '_', '-', '.' and the wildcard '*'"));
    }
    Ok(())
}

/// Reads a field that may be absent (keep the value), `null` (clear it) or set, as
/// `None`, `Some(None)` and `Some(Some(value))`.
pub(crate) fn absent_null_or_value<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
