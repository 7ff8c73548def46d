//! Grants: which members may use which agents.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use houston_cache::PermissionScope;
use houston_protocol::{AgentId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agents::workspace_agent;
use super::{admin_context, audit_change, parse_user_id};
use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, FieldErrors};
use crate::routes::ErrorResponse;
use crate::state::AppState;

/// Query of `GET /v1/workspaces/{workspace}/grants`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GrantsQuery {
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
}

/// One grant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub user_id: String,
    pub agent_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: time::OffsetDateTime,
}

/// Response body of `GET /v1/workspaces/{workspace}/grants`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
}

/// Lists grants, optionally of one agent or one user.
#[utoipa::path(get, path = "/v1/workspaces/{workspace}/grants", params(("workspace" = String, Path), GrantsQuery), security(("bearer" = [])),
    responses((status = 200, body = GrantList), (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn list_grants(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    Query(query): Query<GrantsQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let agent = query.agent_id.as_deref().and_then(|value| AgentId::parse(value).map_err(|error| fields.add("agent_id", error.to_string())).ok());
    let user = query.user_id.as_deref().and_then(|value| UserId::parse(value).map_err(|error| fields.add("user_id", error.to_string())).ok());
    fields.finish()?;
    let grants = state.store.list_grants(&context.workspace.id, agent.as_ref(), user.as_ref()).await?;
    let grants = grants
        .into_iter()
        .map(|grant| GrantView { user_id: grant.user_id.to_string(), agent_id: grant.agent_id.to_string(), created_at: grant.created_at })
        .collect();
    Ok(Json(GrantList { grants }))
}

/// Lets a member use an agent.
#[utoipa::path(put, path = "/v1/workspaces/{workspace}/agents/{agent}/grants/{user_id}",
    params(("workspace" = String, Path), ("agent" = String, Path), ("user_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorResponse)))]
pub async fn put_grant(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, agent, user_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let agent = workspace_agent(&state, &context.workspace.id, &agent).await?;
    let user_id = parse_user_id(&user_id)?;
    if state.store.get_membership(&context.workspace.id, &user_id).await?.is_none() {
        return Err(ApiError::NotFound("member"));
    }
    state.store.put_grant(&context.workspace.id, &agent.id, &user_id).await?;
    state.invalidate(PermissionScope::grant(context.workspace.id.clone(), user_id.clone(), agent.id.clone())).await;
    audit_change(&state, &caller, &context.workspace.id, "grant.create", Some(&agent.id), Some(user_id.to_string()), serde_json::Value::Null);
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a grant; it takes effect on every replica at once.
#[utoipa::path(delete, path = "/v1/workspaces/{workspace}/agents/{agent}/grants/{user_id}",
    params(("workspace" = String, Path), ("agent" = String, Path), ("user_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorResponse)))]
pub async fn delete_grant(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, agent, user_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let agent = workspace_agent(&state, &context.workspace.id, &agent).await?;
    let user_id = parse_user_id(&user_id)?;
    let existed = state.store.delete_grant(&agent.id, &user_id).await?;
    // Invalidate even when no row existed, because a replica may still cache an old decision.
    state.invalidate(PermissionScope::grant(context.workspace.id.clone(), user_id.clone(), agent.id.clone())).await;
    if !existed {
        return Err(ApiError::NotFound("grant"));
    }
    audit_change(&state, &caller, &context.workspace.id, "grant.delete", Some(&agent.id), Some(user_id.to_string()), serde_json::Value::Null);
    Ok(StatusCode::NO_CONTENT)
}
