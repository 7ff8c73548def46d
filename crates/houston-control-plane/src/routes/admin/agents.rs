//! Agents of a workspace: list with settings, create, update, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use houston_cache::{PermissionScope, RouteKey};
use houston_protocol::{AgentDefinition, AgentId, WorkspaceId};
use houston_store::{Agent, AgentSettings, AgentUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tool_policy::{ToolPolicyView, absent_null_or_value, validate_tool_policy};
use super::{admin_context, audit_change};
use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, FieldErrors};
use crate::routes::{ErrorResponse, JsonBody};
use crate::state::{AppState, ControlPlane};

/// Providers an agent may use.
const PROVIDERS: &[&str] = &["anthropic", "openai", "offline"];
/// Bounds of `idle_timeout_secs`: long enough for a reply, short enough to release compute.
const IDLE_TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 10..=86_400;

/// An agent with everything an admin may see and change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminAgentView {
    pub id: String,
    pub slug: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub icon: Option<String>,
    pub category: Option<String>,
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub instructions: String,
    pub settings: SettingsView,
}

/// Settings of an agent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    pub provider: String,
    pub model: String,
    pub idle_timeout_secs: i64,
    pub keep_warm: bool,
    pub allowed_hosts: Vec<String>,
    /// The tool policy an admin set; `null` leaves it to the agent's own config file.
    pub tools: Option<ToolPolicyView>,
}

impl From<&Agent> for AdminAgentView {
    fn from(agent: &Agent) -> Self {
        let settings = &agent.settings;
        Self {
            id: agent.id.to_string(),
            slug: agent.slug.clone(),
            workspace_id: agent.workspace_id.to_string(),
            name: agent.name.clone(),
            description: agent.description.clone(),
            icon: agent.icon.clone(),
            category: agent.category.clone(),
            definition: agent.definition.clone(),
            instructions: agent.instructions.clone(),
            settings: SettingsView {
                provider: settings.provider.clone(),
                model: settings.model.clone(),
                idle_timeout_secs: settings.idle_timeout_secs,
                keep_warm: settings.keep_warm,
                allowed_hosts: settings.allowed_hosts.clone(),
                tools: settings.tools.as_ref().map(ToolPolicyView::from),
            },
        }
    }
}

/// Response body of `GET /v1/workspaces/{workspace}/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAgentList {
    pub agents: Vec<AdminAgentView>,
}

/// Settings in a request; every field is optional and missing ones keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SettingsPatch {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub idle_timeout_secs: Option<i64>,
    pub keep_warm: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
    /// Replaces the tool policy; `null` removes it.
    #[serde(default, deserialize_with = "absent_null_or_value")]
    #[schema(value_type = Option<ToolPolicyView>)]
    pub tools: Option<Option<ToolPolicyView>>,
}

/// Body of `POST /v1/workspaces/{workspace}/agents`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAgentRequest {
    pub slug: Option<String>,
    /// The Houston definition (`houston.json`).
    #[schema(value_type = Object)]
    pub definition: Option<serde_json::Value>,
    /// The persona and instructions (`CLAUDE.md`).
    pub instructions: Option<String>,
    pub settings: Option<SettingsPatch>,
}

/// Body of `PATCH /v1/workspaces/{workspace}/agents/{agent}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateAgentRequest {
    pub name: Option<String>,
    pub settings: Option<SettingsPatch>,
}

/// Applies `patch` to `base`, recording every invalid field under `settings.`.
fn apply_settings(fields: &mut FieldErrors, base: AgentSettings, patch: SettingsPatch) -> AgentSettings {
    let mut settings = base;
    if let Some(provider) = patch.provider {
        if !PROVIDERS.contains(&provider.as_str()) {
            fields.add("settings.provider", format!("{provider:?} is not one of {}", PROVIDERS.join(", ")));
        }
        settings.provider = provider;
    }
    if let Some(model) = patch.model {
        if model.trim().is_empty() || model.len() > 200 {
            fields.add("settings.model", "must be 1 to 200 characters");
        }
        settings.model = model;
    }
    if let Some(timeout) = patch.idle_timeout_secs {
        if !IDLE_TIMEOUT_RANGE.contains(&timeout) {
            fields.add("settings.idle_timeout_secs", format!("must be from {} to {}", IDLE_TIMEOUT_RANGE.start(), IDLE_TIMEOUT_RANGE.end()));
        }
        settings.idle_timeout_secs = timeout;
    }
    if let Some(keep_warm) = patch.keep_warm {
        settings.keep_warm = keep_warm;
    }
    if let Some(hosts) = patch.allowed_hosts {
        for (index, host) in hosts.iter().enumerate() {
            if !is_hostname(host) {
                fields.add(format!("settings.allowed_hosts[{index}]"), format!("{host:?} is not a hostname"));
            }
        }
        settings.allowed_hosts = hosts.into_iter().map(|host| host.to_ascii_lowercase()).collect();
    }
    if let Some(tools) = patch.tools {
        settings.tools = tools.map(|policy| validate_tool_policy(fields, policy));
    }
    settings
}

/// Accepts DNS names such as `api.slack.com` (and `*.example.com` wildcards).
fn is_hostname(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

fn check_slug(fields: &mut FieldErrors, slug: Option<&str>) -> String {
    let slug = slug.unwrap_or_default().to_owned();
    if slug.is_empty() {
        fields.add("slug", "is missing");
    } else if AgentId::parse(slug.as_str()).is_err() || slug.bytes().any(|byte| byte.is_ascii_uppercase()) || slug.len() > 40 {
        fields.add("slug", "must be 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or digit");
    }
    slug
}

/// Finds an agent of the workspace by id or slug.
pub(crate) async fn workspace_agent(state: &ControlPlane, workspace: &WorkspaceId, reference: &str) -> Result<Agent, ApiError> {
    let Ok(id) = AgentId::parse(reference) else {
        return Err(ApiError::AgentNotFound);
    };
    if let Some(agent) = state.store.get_agent(&id).await?.filter(|agent| agent.workspace_id == *workspace) {
        return Ok(agent);
    }
    state.store.get_agent_by_slug(workspace, reference).await?.ok_or(ApiError::AgentNotFound)
}

/// Lists every agent of the workspace with its settings.
#[utoipa::path(get, path = "/v1/workspaces/{workspace}/agents", params(("workspace" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AdminAgentList), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn list_workspace_agents(State(state): State<AppState>, caller: AuthenticatedUser, Path(workspace): Path<String>) -> Result<Json<AdminAgentList>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let agents = state.store.list_agents(&context.workspace.id).await?;
    Ok(Json(AdminAgentList { agents: agents.iter().map(AdminAgentView::from).collect() }))
}

/// Creates an agent from a Houston definition.
#[utoipa::path(post, path = "/v1/workspaces/{workspace}/agents", params(("workspace" = String, Path)), request_body = CreateAgentRequest,
    security(("bearer" = [])),
    responses((status = 201, body = AdminAgentView), (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn create_agent(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    JsonBody(body): JsonBody<CreateAgentRequest>,
) -> Result<(StatusCode, Json<AdminAgentView>), ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let slug = check_slug(&mut fields, body.slug.as_deref());
    let definition = match body.definition {
        None => {
            fields.add("definition", "is missing");
            None
        }
        Some(value) => match AgentDefinition::parse(&value.to_string()) {
            Ok(definition) => Some(definition),
            Err(error) => {
                fields.add(format!("definition.{}", error.field), error.reason);
                None
            }
        },
    };
    let settings = apply_settings(&mut fields, AgentSettings::default(), body.settings.unwrap_or_default());
    fields.finish()?;
    let Some(definition) = definition else {
        return Err(ApiError::InvalidBody("definition is missing".to_owned()));
    };

    let new_agent = crate::seed::new_agent(&context.workspace.id, &slug, &definition, body.instructions.as_deref().unwrap_or_default(), settings);
    let agent = state.store.create_agent(new_agent).await.map_err(|error| match error {
        houston_store::StoreError::Conflict(_) => ApiError::Conflict(format!("the workspace already has an agent with slug {slug:?}")),
        other => other.into(),
    })?;
    audit_change(&state, &caller, &context.workspace.id, "agent.create", Some(&agent.id), Some(agent.slug.clone()), serde_json::Value::Null);
    Ok((StatusCode::CREATED, Json(AdminAgentView::from(&agent))))
}

/// Renames an agent or changes its settings.
#[utoipa::path(patch, path = "/v1/workspaces/{workspace}/agents/{agent}", params(("workspace" = String, Path), ("agent" = String, Path)),
    request_body = UpdateAgentRequest, security(("bearer" = [])),
    responses((status = 200, body = AdminAgentView), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn update_agent(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, agent)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateAgentRequest>,
) -> Result<Json<AdminAgentView>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let current = workspace_agent(&state, &context.workspace.id, &agent).await?;
    let mut fields = FieldErrors::default();
    if let Some(name) = &body.name
        && (name.trim().is_empty() || name.len() > 200)
    {
        fields.add("name", "must be 1 to 200 characters");
    }
    let settings = body.settings.map(|patch| apply_settings(&mut fields, current.settings.clone(), patch));
    fields.finish()?;

    let updated = state.store.update_agent(&current.id, AgentUpdate { name: body.name, settings }).await?.ok_or(ApiError::AgentNotFound)?;
    state.lookups.forget_agent(&updated);
    audit_change(&state, &caller, &context.workspace.id, "agent.update", Some(&updated.id), Some(updated.slug.clone()), serde_json::Value::Null);
    Ok(Json(AdminAgentView::from(&updated)))
}

/// Deletes an agent with its grants and session records.
#[utoipa::path(delete, path = "/v1/workspaces/{workspace}/agents/{agent}", params(("workspace" = String, Path), ("agent" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorResponse)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, agent)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let agent = workspace_agent(&state, &context.workspace.id, &agent).await?;
    state.store.delete_agent(&agent.id).await?;
    state.invalidate(PermissionScope::agent(context.workspace.id.clone(), agent.id.clone())).await;
    state.caches.routes.invalidate(&RouteKey::new(context.workspace.id.clone(), agent.id.clone())).await;
    state.lookups.forget_agent(&agent);
    audit_change(&state, &caller, &context.workspace.id, "agent.delete", Some(&agent.id), Some(agent.slug.clone()), serde_json::Value::Null);
    Ok(StatusCode::NO_CONTENT)
}
