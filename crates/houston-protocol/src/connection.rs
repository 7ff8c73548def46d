//! Per-user connections to tool providers (Composio toolkits).
//!
//! The engine and the control plane both talk to Composio about one Houston user, so both
//! must derive the same Composio `user_id`; [`composio_user_id`] is that derivation.

use serde::{Deserialize, Serialize};

use crate::ids::{UserId, WorkspaceId};

/// Returns the Composio `user_id` of a Houston user in a workspace: `<workspace>:<user>`.
///
/// Ids never contain `:`, so the mapping is one-to-one, and the workspace part keeps the same
/// person's accounts in two workspaces apart.
#[must_use]
pub fn composio_user_id(workspace: &WorkspaceId, user: &UserId) -> String {
    format!("{workspace}:{user}")
}

/// The state of one user's connection to one toolkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connected; tools run as this user.
    Active,
    /// A connect link was created and the user has not finished it yet.
    Pending,
    /// The connection existed and must be renewed (for example a revoked OAuth token).
    Expired,
    /// No connection exists.
    NotConnected,
}

impl ConnectionState {
    /// Maps a Composio connected-account `status` (`ACTIVE`, `INITIATED`, `EXPIRED`, …).
    #[must_use]
    pub fn from_composio_status(status: &str) -> Self {
        match status.to_ascii_uppercase().as_str() {
            "ACTIVE" => Self::Active,
            "INITIATED" | "INITIALIZING" => Self::Pending,
            "EXPIRED" | "FAILED" | "INACTIVE" => Self::Expired,
            _ => Self::NotConnected,
        }
    }

    /// Ranks states so the best of several accounts wins: active over pending over expired.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Self::Active => 3,
            Self::Pending => 2,
            Self::Expired => 1,
            Self::NotConnected => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composio_user_id_joins_workspace_and_user() {
        let workspace = WorkspaceId::parse("acme").unwrap();
        let user = UserId::parse("juan").unwrap();
        assert_eq!(composio_user_id(&workspace, &user), "acme:juan");
    }

    #[test]
    fn composio_statuses_map_to_states() {
        assert_eq!(ConnectionState::from_composio_status("ACTIVE"), ConnectionState::Active);
        assert_eq!(ConnectionState::from_composio_status("INITIATED"), ConnectionState::Pending);
        assert_eq!(ConnectionState::from_composio_status("EXPIRED"), ConnectionState::Expired);
        assert_eq!(ConnectionState::from_composio_status("DELETED"), ConnectionState::NotConnected);
    }
}
