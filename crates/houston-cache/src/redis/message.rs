//! The invalidation message replicas publish and apply.

use serde::{Deserialize, Serialize};

use crate::keys::{PermissionScope, RouteKey};

/// Entries every replica must drop, sent as JSON on the invalidation channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Invalidation {
    /// `{"kind":"permission","workspace":"acme","user":"juan","agent":null}`
    Permission(PermissionScope),
    /// `{"kind":"route","workspace":"acme","agent":"hr"}`
    Route(RouteKey),
}

#[cfg(test)]
mod tests {
    use super::*;
    use houston_protocol::{AgentId, UserId, WorkspaceId};

    #[test]
    fn messages_round_trip() {
        let scope = PermissionScope::user(
            WorkspaceId::parse("acme").unwrap(),
            UserId::parse("juan").unwrap(),
        );
        let text = serde_json::to_string(&Invalidation::Permission(scope.clone())).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"permission","workspace":"acme","user":"juan","agent":null}"#
        );
        assert_eq!(
            serde_json::from_str::<Invalidation>(&text).unwrap(),
            Invalidation::Permission(scope)
        );

        let route = RouteKey::new(
            WorkspaceId::parse("acme").unwrap(),
            AgentId::parse("hr").unwrap(),
        );
        let text = serde_json::to_string(&Invalidation::Route(route.clone())).unwrap();
        assert_eq!(text, r#"{"kind":"route","workspace":"acme","agent":"hr"}"#);
        assert_eq!(
            serde_json::from_str::<Invalidation>(&text).unwrap(),
            Invalidation::Route(route)
        );
    }

    #[test]
    fn rejects_invalid_ids() {
        let text = r#"{"kind":"route","workspace":"../x","agent":"hr"}"#;
        assert!(serde_json::from_str::<Invalidation>(text).is_err());
    }
}
