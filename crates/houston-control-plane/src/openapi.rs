//! The OpenAPI document at `/v1/openapi.json`, generated from the route annotations.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::connections;
use crate::routes::{admin, agents, identity};

/// The control plane's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Houston Cloud control plane", description = "Identity, agents, tool connections and approvals, and administration."),
    paths(
        identity::auth_config, identity::login, identity::refresh, identity::logout, identity::jwks, identity::me, identity::workspaces,
        agents::list_agents, agents::get_agent,
        admin::list_members, admin::add_member, admin::update_member, admin::remove_member,
        admin::create_invitation, admin::accept_invitation,
        admin::list_workspace_agents, admin::create_agent, admin::update_agent, admin::delete_agent,
        admin::list_grants, admin::put_grant, admin::delete_grant, admin::list_audit, admin::usage,
        connections::list_connections, connections::decide_approval,
    ),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Serves the document.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
