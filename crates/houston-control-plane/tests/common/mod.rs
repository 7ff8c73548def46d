//! Test harness: a control plane per store backend (Postgres and SQLite), seeded tenants,
//! in-process requests and token minting.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use houston_cache::client_ip::TrustedProxies;
use houston_cache::{CacheConfig, Caches};
use houston_control_plane::config::LimitsConfig;
use houston_control_plane::{AppState, ControlPlane, ControlPlaneOptions, IdentityConfig, router, seed};
use houston_protocol::{AgentId, UserId, WorkspaceId};
use houston_store::testing::{TestStore, all_stores};
use houston_store::{AgentSettings, Role};
use serde_json::Value;
use tower::ServiceExt;

/// One control plane on one store.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub backend: &'static str,
    pub store: TestStore,
}

/// Builds a control plane on `store` with in-process caches.
pub async fn app_on(store: TestStore, identity: IdentityConfig, caches: Caches) -> TestApp {
    let options = ControlPlaneOptions {
        store: store.store.clone(),
        caches,
        identity,
        limits: LimitsConfig::default(),
        trusted_proxies: TrustedProxies::parse::<&str>(&[]).unwrap(),
        outbox_dir: None,
    };
    let state = ControlPlane::new(options).await.expect("starting the control plane failed");
    TestApp { router: router(state.clone()), state, backend: store.backend, store }
}

/// Returns one control plane per backend: Postgres (mandatory with `CI=true`) and SQLite.
pub async fn apps(identity: IdentityConfig) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for store in all_stores(5).await {
        apps.push(app_on(store, identity.clone(), in_process_caches()).await);
    }
    apps
}

pub fn in_process_caches() -> Caches {
    Caches::in_process(CacheConfig::default()).unwrap()
}

/// A response: status and JSON body (`Value::Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl TestApp {
    /// Sends one request through the router in process.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())).unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 10 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())) };
        Answer { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Signs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let answer = self.call(Method::POST, "/v1/login", None, Some(serde_json::json!({"email": email, "password": password}))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}: login of {email} failed: {}", self.backend, answer.body);
        answer.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// The password every seeded user has.
pub const PASSWORD: &str = "correct horse battery";

/// Two tenants. Acme: owner Alice, member Juan (granted `hr`, not `sales`). Globex: owner
/// Gina, member Bob (granted Globex's own `hr`).
pub struct Tenants {
    pub acme: WorkspaceId,
    pub globex: WorkspaceId,
    pub alice: UserId,
    pub juan: UserId,
    pub gina: UserId,
    pub bob: UserId,
    pub acme_hr: AgentId,
    pub acme_sales: AgentId,
    pub globex_hr: AgentId,
}

pub fn definition(id: &str, name: &str) -> String {
    serde_json::json!({"id": id, "name": name, "description": format!("{name} agent"), "icon": "star", "category": "test"}).to_string()
}

pub async fn seed_tenants(app: &TestApp) -> Tenants {
    let store = app.state.store.as_ref();
    let acme = seed::create_workspace(store, "acme", "Acme").await.unwrap();
    let globex = seed::create_workspace(store, "globex", "Globex").await.unwrap();
    let alice = seed::create_user_with_password(store, "alice@acme.test", "Alice", PASSWORD).await.unwrap();
    let juan = seed::create_user_with_password(store, "juan@acme.test", "Juan", PASSWORD).await.unwrap();
    let gina = seed::create_user_with_password(store, "gina@globex.test", "Gina", PASSWORD).await.unwrap();
    let bob = seed::create_user_with_password(store, "bob@globex.test", "Bob", PASSWORD).await.unwrap();
    seed::add_member(store, &acme.id, &alice.id, Role::Owner).await.unwrap();
    seed::add_member(store, &acme.id, &juan.id, Role::Member).await.unwrap();
    seed::add_member(store, &globex.id, &gina.id, Role::Owner).await.unwrap();
    seed::add_member(store, &globex.id, &bob.id, Role::Member).await.unwrap();
    let settings = AgentSettings::default;
    let acme_hr = seed::create_agent(store, &acme.id, "hr", &definition("people", "HR"), "Be kind.", settings()).await.unwrap();
    let acme_sales = seed::create_agent(store, &acme.id, "sales", &definition("sales", "Sales"), "", settings()).await.unwrap();
    let globex_hr = seed::create_agent(store, &globex.id, "hr", &definition("people", "Globex HR"), "", settings()).await.unwrap();
    seed::grant(store, &acme.id, &acme_hr.id, &juan.id).await.unwrap();
    seed::grant(store, &globex.id, &globex_hr.id, &bob.id).await.unwrap();
    Tenants {
        acme: acme.id,
        globex: globex.id,
        alice: alice.id,
        juan: juan.id,
        gina: gina.id,
        bob: bob.id,
        acme_hr: acme_hr.id,
        acme_sales: acme_sales.id,
        globex_hr: globex_hr.id,
    }
}

/// Keeps the type of `Arc<ControlPlane>` handy for tests that only need the state.
pub type State = Arc<ControlPlane>;
