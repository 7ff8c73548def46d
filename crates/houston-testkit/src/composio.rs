//! A local stand-in for the Composio v3 REST endpoints Houston uses.
//!
//! Endpoints, with the shapes of Composio's v3 API reference:
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /api/v3/tools?toolkit_slug=a,b&limit=&cursor=` | `{"items": [tool], "next_cursor"}` |
//! | `POST /api/v3/tools/execute/{tool_slug}` | `{"data", "error", "successful", "log_id"}`; 404 for an unknown slug; 400 code 1803 "No connected account found" without an `ACTIVE` account |
//! | `GET /api/v3/connected_accounts?user_ids=&toolkit_slugs=&statuses=` | `{"items": [account], "next_cursor"}` |
//! | `GET /api/v3/auth_configs?toolkit_slug=` | `{"items": [{"id", "status", "toolkit": {"slug"}}]}` |
//! | `POST /api/v3/connected_accounts/link` | `201 {"link_token", "redirect_url", "expires_at", "connected_account_id"}`, and an `INITIATED` account |
//!
//! Every request must carry the configured key in `x-api-key`; others get 401 and are
//! counted. Tests script tool behaviour with [`ComposioStandIn::script`] and finish a connect
//! flow with [`ComposioStandIn::complete_link`] or by opening the link's `redirect_url`
//! (`GET /link/{token}`, which needs no key), as a browser would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A tool the stand-in offers.
#[derive(Debug, Clone)]
pub struct StandInTool {
    /// The tool slug, such as `SLACK_SEND_MESSAGE`.
    pub slug: String,
    /// The toolkit slug, such as `slack`.
    pub toolkit: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_parameters: Value,
}

impl StandInTool {
    /// Creates a tool whose schema is an object of string `properties`.
    #[must_use]
    pub fn new(slug: &str, toolkit: &str, properties: &[&str]) -> Self {
        let properties: serde_json::Map<String, Value> =
            properties.iter().map(|name| ((*name).to_owned(), json!({"type": "string"}))).collect();
        Self {
            slug: slug.to_owned(),
            toolkit: toolkit.to_owned(),
            description: format!("{slug} (stand-in)"),
            input_parameters: json!({"type": "object", "properties": properties}),
        }
    }
}

/// The response of an executed tool.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `successful: true` with this `data`.
    Succeed(Value),
    /// `successful: false` with this `error` text, as Composio reports a failed action.
    Fail(String),
    /// Waits, then succeeds with this `data`.
    Delay(Duration, Value),
}

/// One execution the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub tool: String,
    pub user_id: String,
    /// The account the stand-in used, for checking that each user acts with their own.
    pub connected_account_id: String,
    pub arguments: Value,
}

/// One link request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    pub user_id: String,
    pub auth_config_id: String,
    pub connected_account_id: String,
    pub link_token: String,
}

#[derive(Debug, Clone)]
struct Account {
    id: String,
    user_id: String,
    toolkit: String,
    auth_config_id: String,
    status: String,
}

#[derive(Default)]
struct StandInState {
    api_key: String,
    tools: Vec<StandInTool>,
    behaviours: HashMap<String, Behaviour>,
    auth_configs: HashMap<String, String>,
    accounts: Vec<Account>,
    executions: Vec<Execution>,
    links: Vec<LinkRequest>,
    rejected_requests: usize,
    next_id: u64,
    base_url: String,
}

impl StandInState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:06}", self.next_id)
    }
}

type Shared = Arc<Mutex<StandInState>>;

/// The running stand-in; it stops when dropped.
pub struct ComposioStandIn {
    base_url: String,
    state: Shared,
    server: JoinHandle<()>,
}

impl Drop for ComposioStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ComposioStandIn {
    /// Starts the stand-in on a free loopback port; requests must present `api_key`.
    ///
    /// # Errors
    /// Returns the I/O error of binding the port.
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state: Shared = Arc::new(Mutex::new(StandInState {
            api_key: api_key.to_owned(),
            base_url: base_url.clone(),
            ..StandInState::default()
        }));
        let app = Router::new()
            .route("/api/v3/tools", get(list_tools))
            .route("/api/v3/tools/execute/{slug}", post(execute))
            .route("/api/v3/connected_accounts", get(list_accounts))
            .route("/api/v3/connected_accounts/link", post(create_link))
            .route("/api/v3/auth_configs", get(list_auth_configs))
            .route("/link/{token}", get(link_page))
            .layer(middleware::from_fn_with_state(state.clone(), require_key))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base_url, state, server })
    }

    /// Returns `http://127.0.0.1:PORT`, the value for the Composio base URL setting.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn with_state<T>(&self, change: impl FnOnce(&mut StandInState) -> T) -> T {
        change(&mut self.state.lock().expect("stand-in state lock poisoned"))
    }

    /// Offers `tool`, and an auth config for its toolkit if there is none yet.
    pub fn add_tool(&self, tool: StandInTool) {
        self.with_state(|state| {
            if !state.auth_configs.contains_key(&tool.toolkit) {
                let id = state.next_id("ac");
                state.auth_configs.insert(tool.toolkit.clone(), id);
            }
            state.tools.push(tool);
        });
    }

    /// Stops offering the tool `slug`, as when Composio renames a tool.
    pub fn remove_tool(&self, slug: &str) {
        self.with_state(|state| state.tools.retain(|tool| tool.slug != slug));
    }

    /// Sets the response of the tool `slug`. The default is `Succeed({"ok": true})`.
    pub fn script(&self, slug: &str, behaviour: Behaviour) {
        self.with_state(|state| state.behaviours.insert(slug.to_owned(), behaviour));
    }

    /// Adds a connected account with `status` (`ACTIVE`, `EXPIRED`, …) and returns its id.
    pub fn add_account(&self, user_id: &str, toolkit: &str, status: &str) -> String {
        self.with_state(|state| {
            let id = state.next_id("ca");
            let auth_config_id = state.auth_configs.get(toolkit).cloned().unwrap_or_default();
            let account = Account {
                id: id.clone(),
                user_id: user_id.to_owned(),
                toolkit: toolkit.to_owned(),
                auth_config_id,
                status: status.to_owned(),
            };
            state.accounts.push(account);
            id
        })
    }

    /// Finishes the connect flow of the newest `INITIATED` account of `user_id` for `toolkit`,
    /// as a user completing OAuth would. Returns false when there is none.
    pub fn complete_link(&self, user_id: &str, toolkit: &str) -> bool {
        self.with_state(|state| {
            let pending = state
                .accounts
                .iter_mut()
                .rev()
                .find(|account| account.user_id == user_id && account.toolkit == toolkit && account.status == "INITIATED");
            match pending {
                Some(account) => {
                    account.status = "ACTIVE".into();
                    true
                }
                None => false,
            }
        })
    }

    /// Returns the executions received so far.
    #[must_use]
    pub fn executions(&self) -> Vec<Execution> {
        self.with_state(|state| state.executions.clone())
    }

    /// Returns the link requests received so far.
    #[must_use]
    pub fn links(&self) -> Vec<LinkRequest> {
        self.with_state(|state| state.links.clone())
    }

    /// Returns the number of requests rejected for a missing or wrong `x-api-key`.
    #[must_use]
    pub fn rejected_requests(&self) -> usize {
        self.with_state(|state| state.rejected_requests)
    }
}

fn composio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"error": {"message": message, "code": code, "status": status.as_u16(), "request_id": "standin", "suggested_fix": ""}});
    (status, Json(body)).into_response()
}

async fn require_key(State(state): State<Shared>, request: Request, next: Next) -> Response {
    // The connect page is opened by the user's browser, which has no API key.
    if request.uri().path().starts_with("/link/") {
        return next.run(request).await;
    }
    let presented = request.headers().get("x-api-key").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let accepted = {
        let mut state = state.lock().expect("stand-in state lock poisoned");
        let accepted = !state.api_key.is_empty() && presented == state.api_key;
        if !accepted {
            state.rejected_requests += 1;
        }
        accepted
    };
    if !accepted {
        return composio_error(StatusCode::UNAUTHORIZED, 1001, "Invalid API key");
    }
    next.run(request).await
}

fn csv(query: &HashMap<String, String>, key: &str) -> Vec<String> {
    query.get(key).map(|value| value.split(',').filter(|part| !part.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

async fn list_tools(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let toolkits = csv(&query, "toolkit_slug");
    let limit: usize = query.get("limit").and_then(|value| value.parse().ok()).unwrap_or(20).clamp(1, 1000);
    let offset: usize = query.get("cursor").and_then(|value| value.parse().ok()).unwrap_or(0);
    let state = state.lock().expect("stand-in state lock poisoned");
    let matching: Vec<&StandInTool> =
        state.tools.iter().filter(|tool| toolkits.is_empty() || toolkits.contains(&tool.toolkit)).collect();
    let items: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|tool| {
            json!({
                "slug": tool.slug,
                "name": tool.slug.to_lowercase().replace('_', " "),
                "description": tool.description,
                "input_parameters": tool.input_parameters,
                "toolkit": {"slug": tool.toolkit, "name": tool.toolkit},
                "version": "20261201_00",
            })
        })
        .collect();
    let next = offset + items.len();
    let next_cursor = (next < matching.len()).then(|| next.to_string());
    Json(json!({"items": items, "next_cursor": next_cursor, "total_items": matching.len()})).into_response()
}

async fn execute(State(state): State<Shared>, Path(slug): Path<String>, Json(body): Json<Value>) -> Response {
    let user_id = body["user_id"].as_str().unwrap_or_default().to_owned();
    let behaviour = {
        let mut state = state.lock().expect("stand-in state lock poisoned");
        let Some(tool) = state.tools.iter().find(|tool| tool.slug == slug).cloned() else {
            return composio_error(StatusCode::NOT_FOUND, 1100, &format!("Tool {slug} not found"));
        };
        let account = state
            .accounts
            .iter()
            .find(|account| account.user_id == user_id && account.toolkit == tool.toolkit && account.status == "ACTIVE")
            .cloned();
        let Some(account) = account else {
            return composio_error(StatusCode::BAD_REQUEST, 1803, "No connected account found");
        };
        state.executions.push(Execution {
            tool: slug.clone(),
            user_id: user_id.clone(),
            connected_account_id: account.id,
            arguments: body["arguments"].clone(),
        });
        state.behaviours.get(&slug).cloned().unwrap_or(Behaviour::Succeed(json!({"ok": true})))
    };
    let log_id = format!("log_{slug}");
    match behaviour {
        Behaviour::Succeed(data) => Json(json!({"data": data, "error": null, "successful": true, "log_id": log_id})).into_response(),
        Behaviour::Fail(error) => Json(json!({"data": {}, "error": error, "successful": false, "log_id": log_id})).into_response(),
        Behaviour::Delay(delay, data) => {
            tokio::time::sleep(delay).await;
            Json(json!({"data": data, "error": null, "successful": true, "log_id": log_id})).into_response()
        }
    }
}

fn account_json(account: &Account) -> Value {
    json!({
        "id": account.id,
        "user_id": account.user_id,
        "status": account.status,
        "toolkit": {"slug": account.toolkit},
        "auth_config": {"id": account.auth_config_id},
        "created_at": "2026-12-04T00:00:00Z",
        "updated_at": "2026-12-04T00:00:00Z",
    })
}

async fn list_accounts(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let users = csv(&query, "user_ids");
    let toolkits = csv(&query, "toolkit_slugs");
    let statuses = csv(&query, "statuses");
    let state = state.lock().expect("stand-in state lock poisoned");
    let items: Vec<Value> = state
        .accounts
        .iter()
        .filter(|account| users.is_empty() || users.contains(&account.user_id))
        .filter(|account| toolkits.is_empty() || toolkits.contains(&account.toolkit))
        .filter(|account| statuses.is_empty() || statuses.contains(&account.status))
        .map(account_json)
        .collect();
    Json(json!({"items": items, "next_cursor": null, "total_items": items.len()})).into_response()
}

async fn list_auth_configs(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let toolkits = csv(&query, "toolkit_slug");
    let state = state.lock().expect("stand-in state lock poisoned");
    let items: Vec<Value> = state
        .auth_configs
        .iter()
        .filter(|(toolkit, _)| toolkits.is_empty() || toolkits.contains(toolkit))
        .map(|(toolkit, id)| json!({"id": id, "status": "ENABLED", "toolkit": {"slug": toolkit}}))
        .collect();
    Json(json!({"items": items, "next_cursor": null})).into_response()
}

async fn create_link(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let (Some(auth_config_id), Some(user_id)) = (body["auth_config_id"].as_str(), body["user_id"].as_str()) else {
        return composio_error(StatusCode::BAD_REQUEST, 600, "auth_config_id and user_id are required");
    };
    let mut state = state.lock().expect("stand-in state lock poisoned");
    let Some(toolkit) = state.auth_configs.iter().find(|(_, id)| id.as_str() == auth_config_id).map(|(toolkit, _)| toolkit.clone())
    else {
        return composio_error(StatusCode::NOT_FOUND, 1300, &format!("Auth config {auth_config_id} not found"));
    };
    let account_id = state.next_id("ca");
    let token = state.next_id("lt");
    state.accounts.push(Account {
        id: account_id.clone(),
        user_id: user_id.to_owned(),
        toolkit,
        auth_config_id: auth_config_id.to_owned(),
        status: "INITIATED".into(),
    });
    state.links.push(LinkRequest {
        user_id: user_id.to_owned(),
        auth_config_id: auth_config_id.to_owned(),
        connected_account_id: account_id.clone(),
        link_token: token.clone(),
    });
    let body = json!({
        "link_token": token,
        "redirect_url": format!("{}/link/{token}", state.base_url),
        "expires_at": "2026-12-04T23:59:59Z",
        "connected_account_id": account_id,
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Serves the connect page, and finishes the connection as a user completing OAuth would.
async fn link_page(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    let mut state = state.lock().expect("stand-in state lock poisoned");
    let Some(account_id) = state.links.iter().find(|link| link.link_token == token).map(|link| link.connected_account_id.clone())
    else {
        return (StatusCode::NOT_FOUND, "unknown connect link").into_response();
    };
    if let Some(account) = state.accounts.iter_mut().find(|account| account.id == account_id) {
        account.status = "ACTIVE".into();
    }
    (StatusCode::OK, axum::response::Html("<h1>Connected</h1><p>You can close this tab.</p>")).into_response()
}
