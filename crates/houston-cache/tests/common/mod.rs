//! Checks that every cache implementation must pass, and ids for them.

#![allow(dead_code)]

use houston_cache::{
    Caches, Lookup, Permission, PermissionKey, PermissionScope, Role, Route, RouteKey,
};
use houston_protocol::{AgentId, UserId, WorkspaceId};

pub mod redis;

pub fn key(workspace: &str, user: &str, agent: &str) -> PermissionKey {
    PermissionKey::new(
        WorkspaceId::parse(workspace).unwrap(),
        UserId::parse(user).unwrap(),
        AgentId::parse(agent).unwrap(),
    )
}

pub fn route_key(workspace: &str, agent: &str) -> RouteKey {
    RouteKey::new(
        WorkspaceId::parse(workspace).unwrap(),
        AgentId::parse(agent).unwrap(),
    )
}

/// Stores `permission` for `key` through the miss path, as the control plane does.
pub async fn fill(caches: &Caches, key: &PermissionKey, permission: Permission) {
    let Lookup::Miss(ticket) = caches.permissions.get(key).await else {
        panic!("expected a miss before filling {key:?}");
    };
    caches.permissions.put(key, permission, ticket).await;
}

/// Checks that an entry for workspace A, user U, agent X is returned only for that triple.
pub async fn entry_is_keyed_by_all_three_ids(caches: &Caches) {
    let cached = key("ws-a", "user-u", "agent-x");
    fill(caches, &cached, Permission::allowed(Role::Admin)).await;
    assert_eq!(
        caches.permissions.get(&cached).await,
        Lookup::Hit(Permission::allowed(Role::Admin))
    );

    let others = [
        key("ws-b", "user-u", "agent-x"),
        key("ws-a", "user-v", "agent-x"),
        key("ws-a", "user-u", "agent-y"),
        key("ws-b", "user-v", "agent-y"),
        // The same strings in other positions must not collide either.
        key("user-u", "ws-a", "agent-x"),
        key("ws-a", "agent-x", "user-u"),
    ];
    for other in others {
        let lookup = caches.permissions.get(&other).await;
        assert!(
            lookup.hit().is_none(),
            "entry for {cached:?} returned for {other:?}"
        );
    }
}

/// Checks that a revoke drops the entry and that a put with a ticket from before the revoke is ignored.
pub async fn revoke_beats_slow_database_read(caches: &Caches) {
    let key = key("ws-race", "user-u", "agent-x");
    let Lookup::Miss(ticket) = caches.permissions.get(&key).await else {
        panic!("expected a miss");
    };

    // The database read (which saw the grant) is slow; the revoke commits meanwhile.
    caches
        .permissions
        .invalidate(&PermissionScope::grant(
            key.workspace.clone(),
            key.user.clone(),
            key.agent.clone(),
        ))
        .await;
    caches
        .permissions
        .put(&key, Permission::allowed(Role::Member), ticket)
        .await;

    assert!(
        caches.permissions.get(&key).await.hit().is_none(),
        "old grant was cached"
    );
}

/// Checks that a role change for one user drops all of that user's entries and no other user's.
pub async fn user_scope_drops_only_that_user(caches: &Caches) {
    let first = key("ws-role", "user-u", "agent-x");
    let second = key("ws-role", "user-u", "agent-y");
    let bystander = key("ws-role", "user-v", "agent-x");
    for entry in [&first, &second, &bystander] {
        fill(caches, entry, Permission::allowed(Role::Member)).await;
    }

    caches
        .permissions
        .invalidate(&PermissionScope::user(
            first.workspace.clone(),
            first.user.clone(),
        ))
        .await;

    assert!(caches.permissions.get(&first).await.hit().is_none());
    assert!(caches.permissions.get(&second).await.hit().is_none());
    assert!(caches.permissions.get(&bystander).await.hit().is_some());
}

/// Checks that routes are cached per workspace and agent and dropped by invalidation.
pub async fn route_round_trip(caches: &Caches) {
    let key = route_key("ws-route", "agent-x");
    let route = Route {
        endpoint: "tcp:127.0.0.1:7001".into(),
        generation: 3,
    };
    let Lookup::Miss(ticket) = caches.routes.get(&key).await else {
        panic!("expected a miss");
    };
    caches.routes.put(&key, route.clone(), ticket).await;
    assert_eq!(caches.routes.get(&key).await, Lookup::Hit(route));
    assert!(
        caches
            .routes
            .get(&route_key("ws-other", "agent-x"))
            .await
            .hit()
            .is_none()
    );

    caches.routes.invalidate(&key).await;
    assert!(caches.routes.get(&key).await.hit().is_none());
}
