//! `GET /v1/agents` and `GET /v1/agents/{agent}`: the agents the caller may use.

use axum::Json;
use axum::extract::{Path, Query, State};
use houston_protocol::WorkspaceId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AgentView, ErrorResponse};
use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// Query of `GET /v1/agents`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListAgentsQuery {
    /// Only agents of this workspace.
    pub workspace_id: Option<String>,
}

/// Response body of `GET /v1/agents`.
#[derive(Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// Lists the agents the caller may use.
#[utoipa::path(get, path = "/v1/agents", params(ListAgentsQuery), security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn list_agents(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Query(query): Query<ListAgentsQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let mut fields = FieldErrors::default();
    let workspace = match query.workspace_id.as_deref().map(WorkspaceId::parse) {
        Some(Ok(id)) => Some(id),
        Some(Err(error)) => {
            fields.add("workspace_id", error.to_string());
            None
        }
        None => None,
    };
    fields.finish()?;
    let agents = state.store.list_usable_agents(&caller.user_id, workspace.as_ref()).await?;
    Ok(Json(AgentList { agents: agents.iter().map(AgentView::from).collect() }))
}

/// Returns one agent the caller may use; an agent without a grant gets the same 404 as an unknown one.
#[utoipa::path(get, path = "/v1/agents/{agent}", params(("agent" = String, Path, description = "agent id or slug")),
    security(("bearer" = [])),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn get_agent(State(state): State<AppState>, caller: AuthenticatedUser, Path(agent): Path<String>) -> Result<Json<AgentView>, ApiError> {
    let agent = state.authorize_agent(&caller, &agent, "agent.get").await?;
    Ok(Json(AgentView::from(agent.as_ref())))
}
