//! The same test bodies run against Postgres (a fresh database per test) and SQLite.

use houston_protocol::{AgentId, SessionId};
use houston_store::testing::{all_stores, TestStore};
use houston_store::{
    AgentSettings, AgentToolPolicy, AgentUpdate, AuditEntry, AuditFilter, Invitation, NewAgent, NewRefreshToken, NewUser, RefreshOutcome, Role,
    SessionRecord, Store, StoreError, UsageEvent, UsageGrouping,
};
use time::{Duration, OffsetDateTime};

fn new_agent(workspace: &houston_protocol::WorkspaceId, slug: &str) -> NewAgent {
    NewAgent {
        workspace_id: workspace.clone(),
        slug: slug.to_owned(),
        name: slug.to_uppercase(),
        description: format!("{slug} agent"),
        icon: Some("icon".to_owned()),
        category: None,
        definition: serde_json::json!({"id": slug, "name": slug}),
        instructions: "Be kind.".to_owned(),
        settings: AgentSettings::default(),
    }
}

async fn user(store: &dyn Store, email: &str) -> houston_store::User {
    store.create_user(NewUser { email: Some(email.to_owned()), name: email.to_owned(), ..NewUser::default() }).await.unwrap()
}

#[tokio::test]
async fn workspace_slug_is_unique() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let created = store.create_workspace("acme", "Acme").await.unwrap();
        let by_slug = store.get_workspace_by_slug("acme").await.unwrap().unwrap();
        assert_eq!(by_slug, created, "{backend}");
        let again = store.create_workspace("acme", "Other").await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{backend}: {again:?}");
    }
}

#[tokio::test]
async fn user_email_is_case_insensitive() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let created = user(store.as_ref(), "Juan@Acme.example").await;
        let found = store.get_user_by_email("JUAN@acme.example").await.unwrap().unwrap();
        assert_eq!(found.id, created.id, "{backend}");
        let duplicate = store.create_user(NewUser { email: Some("juan@acme.example".into()), ..NewUser::default() }).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{backend}");
    }
}

#[tokio::test]
async fn external_user_matched_by_issuer_and_subject() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let first = store.upsert_external_user("https://a.example", "sub-1", Some("x@a.example"), "X").await.unwrap();
        let again = store.upsert_external_user("https://a.example", "sub-1", None, "X").await.unwrap();
        let other_issuer = store.upsert_external_user("https://b.example", "sub-1", None, "X").await.unwrap();
        assert_eq!(first.id, again.id, "{backend}");
        assert_ne!(first.id, other_issuer.id, "{backend}");
        assert_eq!(first.email.as_deref(), Some("x@a.example"), "{backend}");
        user(store.as_ref(), "taken@a.example").await;
        let claims_taken = store.upsert_external_user("https://a.example", "sub-2", Some("Taken@a.example"), "Y").await.unwrap();
        assert_eq!(claims_taken.email, None, "{backend}: an email of another user is not stored");
        assert_eq!(claims_taken.external_subject.as_deref(), Some("sub-2"), "{backend}");
    }
}

#[tokio::test]
async fn access_needs_membership_and_grant() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        let sales = store.create_agent(new_agent(&acme.id, "sales")).await.unwrap();
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let boss = user(store.as_ref(), "boss@acme.example").await;
        let outsider = user(store.as_ref(), "eve@other.example").await;
        store.set_membership(&acme.id, &juan.id, Role::Member).await.unwrap();
        store.set_membership(&acme.id, &boss.id, Role::Admin).await.unwrap();
        assert!(store.put_grant(&acme.id, &hr.id, &juan.id).await.unwrap(), "{backend}");
        assert!(!store.put_grant(&acme.id, &hr.id, &juan.id).await.unwrap(), "{backend}: second put is a no-op");
        store.put_grant(&acme.id, &hr.id, &outsider.id).await.unwrap();

        assert!(store.agent_access(&juan.id, &hr.id).await.unwrap().allowed(), "{backend}");
        assert!(!store.agent_access(&juan.id, &sales.id).await.unwrap().allowed(), "{backend}");
        assert!(store.agent_access(&boss.id, &sales.id).await.unwrap().allowed(), "{backend}");
        assert!(!store.agent_access(&outsider.id, &hr.id).await.unwrap().allowed(), "{backend}: grant without membership");
        let unknown = AgentId::parse("no-such-agent").unwrap();
        assert!(!store.agent_access(&juan.id, &unknown).await.unwrap().allowed(), "{backend}");

        let usable: Vec<String> = store.list_usable_agents(&juan.id, None).await.unwrap().into_iter().map(|a| a.slug).collect();
        assert_eq!(usable, ["hr"], "{backend}");
        let usable_boss = store.list_usable_agents(&boss.id, Some(&acme.id)).await.unwrap();
        assert_eq!(usable_boss.len(), 2, "{backend}");
        assert!(store.list_usable_agents(&outsider.id, None).await.unwrap().is_empty(), "{backend}");

        assert!(store.delete_grant(&hr.id, &juan.id).await.unwrap(), "{backend}");
        assert!(!store.agent_access(&juan.id, &hr.id).await.unwrap().allowed(), "{backend}");
    }
}

#[tokio::test]
async fn removing_member_drops_grants() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        let juan = user(store.as_ref(), "juan@acme.example").await;
        store.set_membership(&acme.id, &juan.id, Role::Member).await.unwrap();
        store.put_grant(&acme.id, &hr.id, &juan.id).await.unwrap();
        assert!(store.remove_membership(&acme.id, &juan.id).await.unwrap(), "{backend}");
        assert!(store.list_grants(&acme.id, None, Some(&juan.id)).await.unwrap().is_empty(), "{backend}");
        store.set_membership(&acme.id, &juan.id, Role::Member).await.unwrap();
        assert!(!store.agent_access(&juan.id, &hr.id).await.unwrap().allowed(), "{backend}: grant must not come back");
    }
}

#[tokio::test]
async fn agent_slug_unique_per_workspace() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let globex = store.create_workspace("globex", "Globex").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        store.create_agent(new_agent(&globex.id, "hr")).await.unwrap();
        let duplicate = store.create_agent(new_agent(&acme.id, "hr")).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{backend}");
        assert_eq!(store.get_agent_by_slug(&acme.id, "hr").await.unwrap().unwrap().id, hr.id, "{backend}");
        assert_eq!(hr.settings.idle_timeout_secs, 120, "{backend}");
        assert_eq!(hr.definition, serde_json::json!({"id": "hr", "name": "hr"}), "{backend}");
    }
}

#[tokio::test]
async fn agent_update_and_delete() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        let settings = AgentSettings {
            provider: "offline".into(),
            model: "echo".into(),
            idle_timeout_secs: 30,
            keep_warm: true,
            allowed_hosts: vec!["slack.com".into()],
            tools: Some(AgentToolPolicy {
                allow: vec!["SLACK_*".into()],
                deny: vec!["*_DELETE_*".into()],
                require_approval: vec!["SLACK_SEND_MESSAGE".into()],
            }),
        };
        let update = AgentUpdate { name: Some("People".into()), settings: Some(settings.clone()) };
        let updated = store.update_agent(&hr.id, update).await.unwrap().unwrap();
        assert_eq!(updated.name, "People", "{backend}");
        assert_eq!(updated.settings, settings, "{backend}");
        assert_eq!(store.get_agent(&hr.id).await.unwrap().unwrap().settings, settings, "{backend}: read back");
        assert!(store.delete_agent(&hr.id).await.unwrap(), "{backend}");
        assert!(store.get_agent(&hr.id).await.unwrap().is_none(), "{backend}");
        assert!(store.update_agent(&hr.id, AgentUpdate::default()).await.unwrap().is_none(), "{backend}");
        assert!(!store.delete_agent(&hr.id).await.unwrap(), "{backend}");
    }
}

#[tokio::test]
async fn refresh_token_rotates_once() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let now = OffsetDateTime::now_utc();
        let token = |hash: &str| NewRefreshToken {
            token_hash: hash.to_owned(),
            family_id: "family-1".to_owned(),
            user_id: juan.id.clone(),
            expires_at: now + Duration::days(1),
        };
        store.insert_refresh_token(token("first")).await.unwrap();
        let outcome = store.use_refresh_token("first", now).await.unwrap();
        assert_eq!(outcome, RefreshOutcome::Rotated { user_id: juan.id.clone(), family_id: "family-1".into() }, "{backend}");
        store.insert_refresh_token(token("second")).await.unwrap();

        let replay = store.use_refresh_token("first", now).await.unwrap();
        assert_eq!(replay, RefreshOutcome::Reused { family_id: "family-1".into() }, "{backend}");
        let after_replay = store.use_refresh_token("second", now).await.unwrap();
        assert_eq!(after_replay, RefreshOutcome::Reused { family_id: "family-1".into() }, "{backend}: family revoked");
        assert_eq!(store.use_refresh_token("unknown", now).await.unwrap(), RefreshOutcome::Invalid, "{backend}");
    }
}

#[tokio::test]
async fn refresh_token_expires_and_revokes() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let now = OffsetDateTime::now_utc();
        let token = |hash: &str, family: &str| NewRefreshToken {
            token_hash: hash.to_owned(),
            family_id: family.to_owned(),
            user_id: juan.id.clone(),
            expires_at: now + Duration::minutes(1),
        };
        store.insert_refresh_token(token("a", "f-a")).await.unwrap();
        let later = now + Duration::minutes(2);
        assert_eq!(store.use_refresh_token("a", later).await.unwrap(), RefreshOutcome::Invalid, "{backend}: expired");
        store.insert_refresh_token(token("b", "f-b")).await.unwrap();
        assert!(store.revoke_refresh_token("b").await.unwrap(), "{backend}");
        assert!(matches!(store.use_refresh_token("b", now).await.unwrap(), RefreshOutcome::Reused { .. }), "{backend}");
    }
}

#[tokio::test]
async fn invitation_accepted_once() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let now = OffsetDateTime::now_utc();
        let invitation = Invitation {
            id: "inv-1".into(),
            workspace_id: acme.id.clone(),
            email: "New@Acme.example".into(),
            role: Role::Member,
            token_hash: "hash-1".into(),
            created_by: None,
            expires_at: now + Duration::days(7),
        };
        store.create_invitation(invitation).await.unwrap();
        let accepted = store.accept_invitation("hash-1", now).await.unwrap().unwrap();
        assert_eq!(accepted.email, "new@acme.example", "{backend}");
        assert!(store.accept_invitation("hash-1", now).await.unwrap().is_none(), "{backend}: second accept");
    }
}

#[tokio::test]
async fn audit_filters_and_orders() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let base = OffsetDateTime::now_utc();
        let entries: Vec<AuditEntry> = (0..5)
            .map(|index| AuditEntry {
                id: format!("entry-{index}"),
                at: base + Duration::seconds(index),
                workspace_id: Some(acme.id.clone()),
                actor_user_id: Some(juan.id.clone()),
                action: if index % 2 == 0 { "agent.access".into() } else { "grant.create".into() },
                agent_id: None,
                target: None,
                decision: Some("allowed".into()),
                details: serde_json::json!({"index": index}),
            })
            .collect();
        store.insert_audit_entries(&entries).await.unwrap();
        store.insert_audit_entries(&entries[..1]).await.unwrap();

        let all = store.list_audit_entries(&acme.id, &AuditFilter { limit: 100, ..AuditFilter::default() }).await.unwrap();
        assert_eq!(all.len(), 5, "{backend}: a retried entry counts once");
        assert_eq!(all[0].id, "entry-4", "{backend}: newest first");
        let filter = AuditFilter { action: Some("agent.access".into()), limit: 2, ..AuditFilter::default() };
        let access = store.list_audit_entries(&acme.id, &filter).await.unwrap();
        let ids: Vec<&str> = access.iter().map(|entry| entry.id.as_str()).collect();
        assert_eq!(ids, ["entry-4", "entry-2"], "{backend}");
        let before = AuditFilter { before: Some(all[1].at), limit: 100, ..AuditFilter::default() };
        assert_eq!(store.list_audit_entries(&acme.id, &before).await.unwrap().len(), 3, "{backend}");
    }
}

#[tokio::test]
async fn usage_sums_by_day_agent_user() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let day_one = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let event = |id: &str, at: OffsetDateTime| UsageEvent {
            id: id.to_owned(),
            at,
            workspace_id: acme.id.clone(),
            agent_id: hr.id.clone(),
            user_id: juan.id.clone(),
            messages: 1,
            input_tokens: 10,
            output_tokens: 20,
            wake_ups: 1,
            runtime_seconds: 5,
        };
        let events = [event("u1", day_one), event("u2", day_one), event("u3", day_one + Duration::days(1))];
        store.insert_usage_events(&events).await.unwrap();
        store.insert_usage_events(&events[..2]).await.unwrap();

        let by_day = store.usage_report(&acme.id, UsageGrouping::Day, "2000-01-01", "2999-12-31").await.unwrap();
        assert_eq!(by_day.len(), 2, "{backend}");
        assert_eq!(by_day[0].key, houston_store::day_of(day_one), "{backend}");
        assert_eq!(by_day[0].messages, 2, "{backend}: retried events count once");
        assert_eq!(by_day[0].output_tokens, 40, "{backend}");
        let by_agent = store.usage_report(&acme.id, UsageGrouping::Agent, "2000-01-01", "2999-12-31").await.unwrap();
        assert_eq!(by_agent[0].key, hr.id.as_str(), "{backend}");
        assert_eq!(by_agent[0].runtime_seconds, 15, "{backend}");
        let first_day = houston_store::day_of(day_one);
        let by_user = store.usage_report(&acme.id, UsageGrouping::User, &first_day, &first_day).await.unwrap();
        assert_eq!(by_user[0].input_tokens, 20, "{backend}: range excludes the second day");
    }
}

#[tokio::test]
async fn sessions_listed_per_user() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let acme = store.create_workspace("acme", "Acme").await.unwrap();
        let hr = store.create_agent(new_agent(&acme.id, "hr")).await.unwrap();
        let juan = user(store.as_ref(), "juan@acme.example").await;
        let ana = user(store.as_ref(), "ana@acme.example").await;
        let now = OffsetDateTime::now_utc();
        let session = |id: &str, user: &houston_store::User, title: &str, at: OffsetDateTime| SessionRecord {
            session_id: SessionId::parse(id).unwrap(),
            agent_id: hr.id.clone(),
            user_id: user.id.clone(),
            title: title.to_owned(),
            created_at: at,
            updated_at: at,
        };
        store.upsert_session(&session("s1", &juan, "Vacation", now)).await.unwrap();
        store.upsert_session(&session("s2", &juan, "Payroll", now + Duration::seconds(1))).await.unwrap();
        store.upsert_session(&session("s1", &juan, "ignored", now + Duration::seconds(2))).await.unwrap();
        store.upsert_session(&session("s1", &ana, "hijack", now + Duration::seconds(3))).await.unwrap();

        let listed = store.list_sessions(&hr.id, &juan.id).await.unwrap();
        let titles: Vec<&str> = listed.iter().map(|session| session.title.as_str()).collect();
        assert_eq!(titles, ["Vacation", "Payroll"], "{backend}: touched session first, title kept");
        assert!(store.list_sessions(&hr.id, &ana.id).await.unwrap().is_empty(), "{backend}: another user's id changes nothing");
        let stored = store.get_session(&hr.id, &SessionId::parse("s1").unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.user_id, juan.id, "{backend}");
    }
}

#[tokio::test]
async fn signing_keys_shared() {
    for TestStore { store, backend, .. } in all_stores(2).await {
        let key = houston_store::SigningKeyRecord {
            kid: "k1".into(),
            algorithm: "ES256".into(),
            private_key_pem: "pem".into(),
            created_at: OffsetDateTime::now_utc(),
        };
        store.insert_signing_key(&key).await.unwrap();
        store.insert_signing_key(&key).await.unwrap();
        assert_eq!(store.list_signing_keys().await.unwrap().len(), 1, "{backend}");
    }
}

async fn database_exists(name: &str) -> bool {
    use sqlx::Connection;

    let mut admin = sqlx::PgConnection::connect(&houston_store::testing::postgres_admin_url()).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1").bind(name).fetch_one(&mut admin).await.unwrap();
    count == 1
}

#[tokio::test]
async fn test_database_dropped_after_last_handle() {
    let Some(test_store) = houston_store::testing::postgres_store(1).await.unwrap() else {
        return;
    };
    let name = test_store.url.rsplit('/').next().unwrap().to_owned();
    test_store.store.create_workspace("acme", "Acme").await.unwrap();
    let shared = test_store.share();
    assert!(database_exists(&name).await, "the database was not created");

    drop(test_store);
    assert!(database_exists(&name).await, "a shared handle must keep the database");
    shared.store.get_workspace_by_slug("acme").await.unwrap().expect("the shared handle lost its data");

    drop(shared);
    assert!(!database_exists(&name).await, "{name} was not dropped with its last handle");
}
