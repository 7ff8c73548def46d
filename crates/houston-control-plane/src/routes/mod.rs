//! The control plane's own HTTP routes; the module tree mirrors the URL tree.

pub mod admin;
pub mod agents;
pub mod identity;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use houston_store::Agent;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::ControlPlane;

pub use crate::extract::JsonBody;

/// The client's address: the TCP peer, or the `X-Forwarded-For` hop that the configured
/// trusted proxies vouch for.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<ControlPlane>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ControlPlane>) -> Result<Self, Self::Rejection> {
        // Requests handed to the router in-process have no peer; they count as one client.
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
        Ok(Self(state.trusted_proxies.client_ip(peer, forwarded)))
    }
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetailSchema,
}

/// `code`, `message` and optional `details` of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetailSchema {
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Option<serde_json::Value>,
}

/// An agent as a user sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub slug: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub icon: Option<String>,
    pub category: Option<String>,
}

impl From<&Agent> for AgentView {
    fn from(agent: &Agent) -> Self {
        Self {
            id: agent.id.to_string(),
            slug: agent.slug.clone(),
            workspace_id: agent.workspace_id.to_string(),
            name: agent.name.clone(),
            description: agent.description.clone(),
            icon: agent.icon.clone(),
            category: agent.category.clone(),
        }
    }
}
