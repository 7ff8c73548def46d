//! The identity, agent and administration routes, against Postgres and SQLite.

mod common;

use axum::http::{Method, StatusCode};
use common::{PASSWORD, apps, seed_tenants};
use houston_control_plane::IdentityConfig;
use houston_control_plane::auth::config::OidcSignInConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn login_me_and_workspaces() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let token = app.login("Juan@Acme.test", PASSWORD).await;

        let me = app.get("/v1/me", &token).await;
        assert_eq!(me.status, StatusCode::OK, "{backend}: {}", me.body);
        assert_eq!(me.body["user"]["id"], tenants.juan.as_str(), "{backend}");
        assert_eq!(me.body["user"]["email"], "juan@acme.test", "{backend}");
        assert_eq!(me.body["workspaces"][0]["slug"], "acme", "{backend}");
        assert_eq!(me.body["workspaces"][0]["role"], "member", "{backend}");

        let workspaces = app.get("/v1/workspaces", &token).await;
        assert_eq!(workspaces.body["workspaces"].as_array().unwrap().len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn login_failures_look_identical() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let wrong_password = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "juan@acme.test", "password": "nope"}))).await;
        let unknown_email = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "nobody@acme.test", "password": "nope"}))).await;
        assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED, "{backend}");
        assert_eq!(wrong_password.status, unknown_email.status, "{backend}");
        assert_eq!(wrong_password.body, unknown_email.body, "{backend}");
        assert_eq!(wrong_password.body["error"]["code"], "invalid_credentials", "{backend}");
    }
}

#[tokio::test]
async fn login_rate_limited_per_email() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let attempt = json!({"email": "juan@acme.test", "password": "wrong"});
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(app.call(Method::POST, "/v1/login", None, Some(attempt.clone())).await);
        }
        assert!(statuses[..10].iter().all(|answer| answer.status == StatusCode::UNAUTHORIZED), "{backend}");
        let limited = &statuses[10];
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{backend}");
        assert!(limited.headers.contains_key("retry-after"), "{backend}");
        let correct = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "juan@acme.test", "password": PASSWORD}))).await;
        assert_eq!(correct.status, StatusCode::TOO_MANY_REQUESTS, "{backend}: the limit holds for a correct password too");
    }
}

#[tokio::test]
async fn login_successes_not_rate_limited() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let attempt = json!({"email": "juan@acme.test", "password": PASSWORD});
        // Twice the per-email limit of 10 failed logins per minute.
        for number in 1..=20 {
            let answer = app.call(Method::POST, "/v1/login", None, Some(attempt.clone())).await;
            assert_eq!(answer.status, StatusCode::OK, "{backend}: login {number}: {}", answer.body);
        }
    }
}

#[tokio::test]
async fn login_failures_limited_per_address() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        // 60 failures per minute per client address, spread over different emails so the
        // per-email limit of 10 is never reached. Argon2 makes each attempt take a while, and
        // the limit refills one failure per second meanwhile, so the first 429 may come late.
        let mut first_limited = None;
        for number in 0..90 {
            let attempt = json!({"email": format!("user{number}@acme.test"), "password": "wrong"});
            let answer = app.call(Method::POST, "/v1/login", None, Some(attempt)).await;
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                first_limited = Some(number);
                break;
            }
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{backend}: failure {number}");
        }
        let first_limited = first_limited.expect("90 failed logins from one address were never limited");
        assert!(first_limited >= 60, "{backend}: limited after only {first_limited} failures");
        let correct = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "juan@acme.test", "password": PASSWORD}))).await;
        assert_eq!(correct.status, StatusCode::TOO_MANY_REQUESTS, "{backend}");
        assert!(correct.headers.contains_key("retry-after"), "{backend}");
    }
}

#[tokio::test]
async fn invalid_login_lists_all_fields() {
    for app in apps(IdentityConfig::default()).await {
        let answer = app.call(Method::POST, "/v1/login", None, Some(json!({}))).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", app.backend);
        let fields: Vec<&str> = answer.body["error"]["details"]["fields"].as_array().unwrap().iter().map(|field| field["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["email", "password"], "{}", app.backend);
    }
}

#[tokio::test]
async fn login_body_errors_use_error_format() {
    let huge = format!(r#"{{"email": "juan@acme.test", "password": "{}"}}"#, "a".repeat(3 * 1024 * 1024));
    // (content type, body, status, code)
    let cases = [
        ("application/json", huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("application/json", "{".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("application/json", r#"{"email": "juan@acme.test"}"#.to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
        ("application/json", r#"{"email": "juan@acme.test", "password": 5}"#.to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
        ("text/plain", r#"{"email": "juan@acme.test", "password": "x"}"#.to_owned(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for app in apps(IdentityConfig::default()).await {
        for (content_type, body, status, code) in cases.clone() {
            let shown: String = body.chars().take(40).collect();
            let request = axum::http::Request::post("/v1/login").header("content-type", content_type).body(axum::body::Body::from(body)).unwrap();
            let answer = app.send(request).await;
            assert_eq!(answer.status, status, "{}: {shown:?}: {}", app.backend, answer.body);
            assert_eq!(answer.headers["content-type"], "application/json", "{}: {shown:?}", app.backend);
            assert_eq!(answer.body["error"]["code"], code, "{}: {shown:?}: {}", app.backend, answer.body);
        }

        let request = axum::http::Request::post("/v1/login").header("content-type", "application/json").body(axum::body::Body::from("{\n\"email\": }")).unwrap();
        let answer = app.send(request).await;
        assert_eq!(answer.body["error"]["details"]["line"], 2, "{}: {}", app.backend, answer.body);

        let request = axum::http::Request::post("/v1/login").header("content-type", "application/json").body(axum::body::Body::from(r#"{"email": "juan@acme.test", "password": 5}"#)).unwrap();
        let answer = app.send(request).await;
        assert_eq!(answer.body["error"]["details"]["fields"][0]["field"], "password", "{}: {}", app.backend, answer.body);
    }
}

#[tokio::test]
async fn refresh_rotates_and_logout_revokes() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let login = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "juan@acme.test", "password": PASSWORD}))).await;
        assert_eq!(login.body["token_type"], "Bearer", "{backend}");
        assert_eq!(login.body["expires_in"], 900, "{backend}");
        let first = login.body["refresh_token"].as_str().unwrap().to_owned();

        let refreshed = app.call(Method::POST, "/v1/token/refresh", None, Some(json!({"refresh_token": first}))).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{backend}: {}", refreshed.body);
        let second = refreshed.body["refresh_token"].as_str().unwrap().to_owned();
        let new_access = refreshed.body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/me", &new_access).await.status, StatusCode::OK, "{backend}");

        let replay = app.call(Method::POST, "/v1/token/refresh", None, Some(json!({"refresh_token": first}))).await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{backend}");
        let after_replay = app.call(Method::POST, "/v1/token/refresh", None, Some(json!({"refresh_token": second}))).await;
        assert_eq!(after_replay.status, StatusCode::UNAUTHORIZED, "{backend}: replay revokes the family");

        let other = app.call(Method::POST, "/v1/login", None, Some(json!({"email": "juan@acme.test", "password": PASSWORD}))).await;
        let third = other.body["refresh_token"].as_str().unwrap().to_owned();
        let logout = app.call(Method::POST, "/v1/logout", None, Some(json!({"refresh_token": third}))).await;
        assert_eq!(logout.status, StatusCode::NO_CONTENT, "{backend}");
        let after_logout = app.call(Method::POST, "/v1/token/refresh", None, Some(json!({"refresh_token": third}))).await;
        assert_eq!(after_logout.status, StatusCode::UNAUTHORIZED, "{backend}");
    }
}

#[tokio::test]
async fn agents_listed_only_when_granted() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;

        let listed = app.get("/v1/agents", &juan).await;
        let slugs: Vec<&str> = listed.body["agents"].as_array().unwrap().iter().map(|agent| agent["slug"].as_str().unwrap()).collect();
        assert_eq!(slugs, ["hr"], "{backend}");
        assert_eq!(listed.body["agents"][0]["name"], "HR", "{backend}");
        assert_eq!(listed.body["agents"][0]["workspace_id"], tenants.acme.as_str(), "{backend}");

        let owner_list = app.get(&format!("/v1/agents?workspace_id={}", tenants.acme), &alice).await;
        assert_eq!(owner_list.body["agents"].as_array().unwrap().len(), 2, "{backend}: owners use every agent");
        let bad_filter = app.get("/v1/agents?workspace_id=../x", &alice).await;
        assert_eq!(bad_filter.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");

        let by_slug = app.get("/v1/agents/hr", &juan).await;
        assert_eq!(by_slug.status, StatusCode::OK, "{backend}");
        assert_eq!(by_slug.body["id"], tenants.acme_hr.as_str(), "{backend}");
        let by_id = app.get(&format!("/v1/agents/{}", tenants.acme_hr), &juan).await;
        assert_eq!(by_id.body, by_slug.body, "{backend}");

        let not_granted = app.get("/v1/agents/sales", &juan).await;
        let unknown = app.get("/v1/agents/no-such-agent", &juan).await;
        assert_eq!(not_granted.status, StatusCode::NOT_FOUND, "{backend}");
        assert_eq!(not_granted.body, unknown.body, "{backend}: a forbidden agent answers like an unknown one");
        assert_eq!(not_granted.body["error"]["code"], "agent_not_found", "{backend}");
    }
}

#[tokio::test]
async fn authorization_decisions_audited() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        app.get("/v1/agents/hr", &juan).await;
        app.get("/v1/agents/sales", &juan).await;
        app.state.flush().await;

        let audit = app.get("/v1/workspaces/acme/audit?action=agent.get", &alice).await;
        assert_eq!(audit.status, StatusCode::OK, "{backend}: {}", audit.body);
        let entries = audit.body["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{backend}: {entries:?}");
        assert_eq!(entries[0]["agent_id"], tenants.acme_sales.as_str(), "{backend}");
        assert_eq!(entries[0]["decision"], "denied", "{backend}");
        assert_eq!(entries[1]["decision"], "allowed", "{backend}");
        assert_eq!(entries[1]["actor_user_id"], tenants.juan.as_str(), "{backend}");
    }
}

#[tokio::test]
async fn admin_grant_and_revoke() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let grant_path = format!("/v1/workspaces/acme/agents/sales/grants/{}", tenants.juan);

        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::NOT_FOUND, "{backend}");
        assert_eq!(app.call(Method::PUT, &grant_path, Some(&alice), None).await.status, StatusCode::NO_CONTENT, "{backend}");
        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::OK, "{backend}: the grant takes effect");

        let grants = app.get(&format!("/v1/workspaces/acme/grants?user_id={}", tenants.juan), &alice).await;
        assert_eq!(grants.body["grants"].as_array().unwrap().len(), 2, "{backend}");

        assert_eq!(app.call(Method::DELETE, &grant_path, Some(&alice), None).await.status, StatusCode::NO_CONTENT, "{backend}");
        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::NOT_FOUND, "{backend}: the revoke takes effect");
        assert_eq!(app.call(Method::DELETE, &grant_path, Some(&alice), None).await.status, StatusCode::NOT_FOUND, "{backend}");

        let as_member = app.call(Method::PUT, &grant_path, Some(&juan), None).await;
        assert_eq!(as_member.status, StatusCode::FORBIDDEN, "{backend}: members cannot grant");
        app.state.flush().await;
        let audit = app.get("/v1/workspaces/acme/audit?action=grant.delete", &alice).await;
        assert_eq!(audit.body["entries"].as_array().unwrap().len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn admin_members_and_roles() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;

        let added = app
            .call(Method::POST, "/v1/workspaces/acme/members", Some(&alice), Some(json!({"email": "new@acme.test", "name": "New", "role": "member", "password": "new password 1"})))
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{backend}: {}", added.body);
        assert!(!app.login("new@acme.test", "new password 1").await.is_empty(), "{backend}");

        let invalid = app.call(Method::POST, "/v1/workspaces/acme/members", Some(&alice), Some(json!({"email": "x", "role": "king", "password": "short"}))).await;
        assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert_eq!(invalid.body["error"]["details"]["fields"].as_array().unwrap().len(), 3, "{backend}: {}", invalid.body);

        // Promoting Juan to admin lets him use Sales without a grant; demoting takes it back.
        let member_path = format!("/v1/workspaces/acme/members/{}", tenants.juan);
        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::NOT_FOUND, "{backend}");
        let promoted = app.call(Method::PATCH, &member_path, Some(&alice), Some(json!({"role": "admin"}))).await;
        assert_eq!(promoted.status, StatusCode::OK, "{backend}: {}", promoted.body);
        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::OK, "{backend}");
        app.call(Method::PATCH, &member_path, Some(&alice), Some(json!({"role": "member"}))).await;
        assert_eq!(app.get("/v1/agents/sales", &juan).await.status, StatusCode::NOT_FOUND, "{backend}");

        let last_owner = app.call(Method::DELETE, &format!("/v1/workspaces/acme/members/{}", tenants.alice), Some(&alice), None).await;
        assert_eq!(last_owner.status, StatusCode::CONFLICT, "{backend}");

        assert_eq!(app.call(Method::DELETE, &member_path, Some(&alice), None).await.status, StatusCode::NO_CONTENT, "{backend}");
        assert_eq!(app.get("/v1/agents/hr", &juan).await.status, StatusCode::NOT_FOUND, "{backend}: removed member loses access");
        let members = app.get("/v1/workspaces/acme/members", &alice).await;
        assert_eq!(members.body["members"].as_array().unwrap().len(), 2, "{backend}");
    }
}

#[tokio::test]
async fn admin_agent_lifecycle() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let people = std::fs::read_to_string(fixtures().join("houston-agents/people/houston.json")).unwrap();
        let definition: serde_json::Value = serde_json::from_str(&people).unwrap();

        let body = json!({"slug": "people", "definition": definition, "instructions": "Help.", "settings": {"provider": "offline", "model": "echo", "idle_timeout_secs": 60}});
        let created = app.call(Method::POST, "/v1/workspaces/acme/agents", Some(&alice), Some(body.clone())).await;
        assert_eq!(created.status, StatusCode::CREATED, "{backend}: {}", created.body);
        assert_eq!(created.body["settings"]["idle_timeout_secs"], 60, "{backend}");
        assert_eq!(created.body["settings"]["keep_warm"], false, "{backend}");
        let duplicate = app.call(Method::POST, "/v1/workspaces/acme/agents", Some(&alice), Some(body)).await;
        assert_eq!(duplicate.status, StatusCode::CONFLICT, "{backend}");

        let invalid = json!({"slug": "Bad Slug", "definition": {"name": ""}, "settings": {"provider": "acme-ai", "idle_timeout_secs": 1, "allowed_hosts": ["ok.example", "bad host"]}});
        let rejected = app.call(Method::POST, "/v1/workspaces/acme/agents", Some(&alice), Some(invalid)).await;
        assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        let fields: Vec<&str> = rejected.body["error"]["details"]["fields"].as_array().unwrap().iter().map(|field| field["field"].as_str().unwrap()).collect();
        for expected in ["slug", "settings.provider", "settings.idle_timeout_secs", "settings.allowed_hosts[1]"] {
            assert!(fields.contains(&expected), "{backend}: {expected} missing from {fields:?}");
        }
        assert!(fields.iter().any(|field| field.starts_with("definition")), "{backend}: {fields:?}");

        let patched = app.call(Method::PATCH, "/v1/workspaces/acme/agents/people", Some(&alice), Some(json!({"name": "People Ops", "settings": {"keep_warm": true, "allowed_hosts": ["slack.com"]}}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{backend}: {}", patched.body);
        assert_eq!(patched.body["name"], "People Ops", "{backend}");
        assert_eq!(patched.body["settings"]["keep_warm"], true, "{backend}");
        assert_eq!(patched.body["settings"]["model"], "echo", "{backend}: unchanged fields stay");

        let listed = app.get("/v1/workspaces/acme/agents", &alice).await;
        assert_eq!(listed.body["agents"].as_array().unwrap().len(), 3, "{backend}");
        assert_eq!(app.call(Method::DELETE, "/v1/workspaces/acme/agents/people", Some(&alice), None).await.status, StatusCode::NO_CONTENT, "{backend}");
        assert_eq!(app.get("/v1/agents/people", &alice).await.status, StatusCode::NOT_FOUND, "{backend}");
    }
}

#[tokio::test]
async fn invitation_accept_signs_in() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let invited = app.call(Method::POST, "/v1/workspaces/acme/invitations", Some(&alice), Some(json!({"email": "Invitee@Acme.test", "role": "member"}))).await;
        assert_eq!(invited.status, StatusCode::CREATED, "{backend}: {}", invited.body);
        let token = invited.body["token"].as_str().unwrap().to_owned();

        let body = json!({"token": token, "name": "Invitee", "password": "invitee password"});
        let accepted = app.call(Method::POST, "/v1/invitations/accept", None, Some(body.clone())).await;
        assert_eq!(accepted.status, StatusCode::OK, "{backend}: {}", accepted.body);
        let access = accepted.body["access_token"].as_str().unwrap();
        let me = app.get("/v1/me", access).await;
        assert_eq!(me.body["workspaces"][0]["slug"], "acme", "{backend}");
        let again = app.call(Method::POST, "/v1/invitations/accept", None, Some(body)).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{backend}");
    }
}

#[tokio::test]
async fn usage_recorded_through_outbox() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let usage = houston_control_plane::UsageRecord { messages: 1, input_tokens: 100, output_tokens: 40, wake_ups: 1, runtime_seconds: 3 };
        for _ in 0..3 {
            app.state.record_usage(&tenants.acme, &tenants.acme_hr, &tenants.juan, usage.clone());
        }
        app.state.flush().await;

        let by_agent = app.get("/v1/workspaces/acme/usage?group_by=agent", &alice).await;
        assert_eq!(by_agent.status, StatusCode::OK, "{backend}: {}", by_agent.body);
        assert_eq!(by_agent.body["rows"][0]["key"], tenants.acme_hr.as_str(), "{backend}");
        assert_eq!(by_agent.body["rows"][0]["input_tokens"], 300, "{backend}");
        let bad = app.get("/v1/workspaces/acme/usage?group_by=week&from=yesterday", &alice).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert_eq!(bad.body["error"]["details"]["fields"].as_array().unwrap().len(), 2, "{backend}");
    }
}

#[tokio::test]
async fn openapi_lists_routes() {
    for app in apps(IdentityConfig::default()).await {
        let answer = app.call(Method::GET, "/v1/openapi.json", None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        let paths = answer.body["paths"].as_object().unwrap();
        for path in ["/v1/auth/config", "/v1/login", "/v1/me", "/v1/agents/{agent}", "/v1/workspaces/{workspace}/agents/{agent}/grants/{user_id}",
            "/v1/agents/{agent}/connections",
            "/v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}",
        ] {
            assert!(paths.contains_key(path), "{}: {path} missing", app.backend);
        }
    }
}

#[tokio::test]
async fn agent_tool_policy_set_and_cleared() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let path = "/v1/workspaces/acme/agents/hr";
        let policy = json!({"allow": ["SLACK_*", "docs__search"], "deny": ["*_DELETE_*"], "require_approval": ["SLACK_SEND_MESSAGE"]});

        let unset = app.get("/v1/workspaces/acme/agents", &alice).await;
        assert_eq!(unset.body["agents"][0]["settings"]["tools"], Value::Null, "{backend}: no policy by default");

        let patched = app.call(Method::PATCH, path, Some(&alice), Some(json!({"settings": {"tools": policy}}))).await;
        assert_eq!(patched.status, StatusCode::OK, "{backend}: {}", patched.body);
        assert_eq!(patched.body["settings"]["tools"], policy, "{backend}");
        let stored = app.state.store.get_agent(&tenants.acme_hr).await.unwrap().unwrap();
        let stored_policy = stored.settings.tools.expect("the policy was not stored");
        assert_eq!(stored_policy.require_approval, ["SLACK_SEND_MESSAGE"], "{backend}");

        let other_change = app.call(Method::PATCH, path, Some(&alice), Some(json!({"settings": {"keep_warm": true}}))).await;
        assert_eq!(other_change.body["settings"]["tools"], policy, "{backend}: an absent tools field keeps the policy");

        let cleared = app.call(Method::PATCH, path, Some(&alice), Some(json!({"settings": {"tools": null}}))).await;
        assert_eq!(cleared.status, StatusCode::OK, "{backend}: {}", cleared.body);
        assert_eq!(cleared.body["settings"]["tools"], Value::Null, "{backend}");
    }
}

#[tokio::test]
async fn agent_tool_policy_invalid_fields() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        seed_tenants(&app).await;
        let alice = app.login("alice@acme.test", PASSWORD).await;
        let too_many: Vec<String> = (0..101).map(|number| format!("TOOL_{number}")).collect();
        let body = json!({"settings": {"tools": {"allow": too_many, "deny": ["SLACK_*", "rm -rf"], "require_approval": [""]}}});
        let rejected = app.call(Method::PATCH, "/v1/workspaces/acme/agents/hr", Some(&alice), Some(body)).await;
        assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: {}", rejected.body);
        let fields: Vec<&str> = rejected.body["error"]["details"]["fields"].as_array().unwrap().iter().map(|field| field["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["settings.tools.allow", "settings.tools.deny[1]", "settings.tools.require_approval[0]"], "{backend}");

        let unchanged = app.get("/v1/workspaces/acme/agents", &alice).await;
        let hr = unchanged.body["agents"].as_array().unwrap().iter().find(|agent| agent["slug"] == "hr").unwrap().clone();
        assert_eq!(hr["settings"]["tools"], Value::Null, "{backend}: a rejected patch changes nothing");
    }
}

#[tokio::test]
async fn auth_config_without_oidc() {
    for app in apps(IdentityConfig::default()).await {
        let answer = app.call(Method::GET, "/v1/auth/config", None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}: {}", app.backend, answer.body);
        assert_eq!(answer.body, json!({"password_login": true, "oidc": null}), "{}", app.backend);
    }
}

#[tokio::test]
async fn auth_config_offers_oidc_sign_in() {
    let oidc = OidcSignInConfig {
        display_name: "Acme SSO".to_owned(),
        issuer: "https://sso.acme.test".to_owned(),
        client_id: "houston-web".to_owned(),
        authorization_endpoint: "https://sso.acme.test/authorize".to_owned(),
        token_endpoint: "https://sso.acme.test/token".to_owned(),
        scopes: vec!["openid".to_owned(), "email".to_owned()],
    };
    let identity = IdentityConfig { builtin: None, oidc: Some(oidc), ..IdentityConfig::default() };
    for app in apps(identity).await {
        let answer = app.call(Method::GET, "/v1/auth/config", None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}: {}", app.backend, answer.body);
        let expected = json!({
            "password_login": false,
            "oidc": {
                "display_name": "Acme SSO",
                "issuer": "https://sso.acme.test",
                "client_id": "houston-web",
                "authorization_endpoint": "https://sso.acme.test/authorize",
                "token_endpoint": "https://sso.acme.test/token",
                "scopes": ["openid", "email"],
            },
        });
        assert_eq!(answer.body, expected, "{}", app.backend);
    }
}

#[tokio::test]
async fn jwks_serves_public_keys() {
    for app in apps(IdentityConfig::default()).await {
        let answer = app.call(Method::GET, "/.well-known/jwks.json", None, None).await;
        let key = &answer.body["keys"][0];
        assert_eq!(key["kty"], "EC", "{}", app.backend);
        assert_eq!(key["crv"], "P-256", "{}", app.backend);
        assert!(key.get("d").is_none(), "{}: the private part must never be served", app.backend);
    }
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}
