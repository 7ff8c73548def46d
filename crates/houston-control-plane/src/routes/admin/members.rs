//! Members and invitations of a workspace.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use houston_cache::PermissionScope;
use houston_store::{Invitation, Member, NewUser, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{admin_context, audit_change, parse_role, parse_user_id};
use crate::auth::{AuthenticatedUser, password};
use crate::error::{ApiError, FieldErrors};
use crate::routes::identity::{TokenResponse, builtin, hash_token, issue_tokens, random_token};
use crate::routes::{ErrorResponse, JsonBody};
use crate::state::AppState;

/// How long an invitation can be accepted.
const INVITATION_TTL: time::Duration = time::Duration::days(7);
/// Shortest password accepted for a new user.
const MIN_PASSWORD_LEN: usize = 8;

/// A member of a workspace.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: Option<String>,
    pub name: String,
    pub role: String,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        Self { user_id: member.user_id.to_string(), email: member.email, name: member.name, role: member.role.as_str().to_owned() }
    }
}

/// Response body of `GET /v1/workspaces/{workspace}/members`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// Body of `POST /v1/workspaces/{workspace}/members`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMemberRequest {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    /// Sets the password of a user created by this request.
    pub password: Option<String>,
}

/// Body of `PATCH /v1/workspaces/{workspace}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMemberRequest {
    pub role: Option<String>,
}

/// Body of `POST /v1/workspaces/{workspace}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInvitationRequest {
    pub email: Option<String>,
    pub role: Option<String>,
}

/// Response body of `POST /v1/workspaces/{workspace}/invitations`; the token is shown only here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
}

/// Body of `POST /v1/invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptInvitationRequest {
    pub token: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
}

fn check_email(fields: &mut FieldErrors, value: Option<&str>) -> String {
    let email = value.unwrap_or_default().trim().to_lowercase();
    let valid = email.len() <= 254 && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if email.is_empty() {
        fields.add("email", "is missing");
    } else if !valid {
        fields.add("email", "is not an email address");
    }
    email
}

fn check_password(fields: &mut FieldErrors, value: Option<&str>, required: bool) {
    match value {
        None if required => fields.add("password", "is missing"),
        Some(password) if password.chars().count() < MIN_PASSWORD_LEN => fields.add("password", format!("must have at least {MIN_PASSWORD_LEN} characters")),
        _ => {}
    }
}

/// Only an owner may make or unmake an owner.
fn check_owner_change(caller_role: Role, old: Option<Role>, new: Option<Role>) -> Result<(), ApiError> {
    let touches_owner = old == Some(Role::Owner) || new == Some(Role::Owner);
    if touches_owner && caller_role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner may add, change or remove an owner"));
    }
    Ok(())
}

/// Lists the members of the workspace.
#[utoipa::path(get, path = "/v1/workspaces/{workspace}/members", params(("workspace" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = MemberList), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn list_members(State(state): State<AppState>, caller: AuthenticatedUser, Path(workspace): Path<String>) -> Result<Json<MemberList>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let members = state.store.list_members(&context.workspace.id).await?;
    Ok(Json(MemberList { members: members.into_iter().map(MemberView::from).collect() }))
}

/// Adds an existing user by email, or creates the user, with a role.
#[utoipa::path(post, path = "/v1/workspaces/{workspace}/members", params(("workspace" = String, Path)), request_body = AddMemberRequest,
    security(("bearer" = [])),
    responses((status = 201, body = MemberView), (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    JsonBody(body): JsonBody<AddMemberRequest>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let email = check_email(&mut fields, body.email.as_deref());
    let role = parse_role(&mut fields, "role", body.role.as_deref());
    check_password(&mut fields, body.password.as_deref(), false);
    fields.finish()?;
    let role = role.unwrap_or(Role::Member);

    let user = match state.store.get_user_by_email(&email).await? {
        Some(user) => user,
        None => {
            let password_hash = match body.password {
                Some(password) => Some(password::hash_password(password).await.map_err(|error| ApiError::Internal(error.into()))?),
                None => None,
            };
            let name = body.name.unwrap_or_else(|| email.clone());
            state.store.create_user(NewUser { email: Some(email.clone()), name, password_hash, ..NewUser::default() }).await?
        }
    };
    let old = state.store.get_membership(&context.workspace.id, &user.id).await?;
    check_owner_change(context.role, old, Some(role))?;
    state.store.set_membership(&context.workspace.id, &user.id, role).await?;
    state.invalidate(PermissionScope::user(context.workspace.id.clone(), user.id.clone())).await;
    state.lookups.forget_user(&user.id);
    audit_change(&state, &caller, &context.workspace.id, "member.add", None, Some(user.id.to_string()), serde_json::json!({ "role": role }));
    let member = MemberView { user_id: user.id.to_string(), email: user.email, name: user.name, role: role.as_str().to_owned() };
    Ok((StatusCode::CREATED, Json(member)))
}

/// Changes a member's role.
#[utoipa::path(patch, path = "/v1/workspaces/{workspace}/members/{user_id}", params(("workspace" = String, Path), ("user_id" = String, Path)),
    request_body = UpdateMemberRequest, security(("bearer" = [])),
    responses((status = 200, body = MemberView), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn update_member(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, user_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateMemberRequest>,
) -> Result<Json<MemberView>, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let user_id = parse_user_id(&user_id)?;
    let mut fields = FieldErrors::default();
    let role = parse_role(&mut fields, "role", body.role.as_deref());
    fields.finish()?;
    let role = role.unwrap_or(Role::Member);

    let old = state.store.get_membership(&context.workspace.id, &user_id).await?.ok_or(ApiError::NotFound("member"))?;
    check_owner_change(context.role, Some(old), Some(role))?;
    ensure_owner_remains(&state, &context.workspace.id, &user_id, old, Some(role)).await?;
    state.store.set_membership(&context.workspace.id, &user_id, role).await?;
    state.invalidate(PermissionScope::user(context.workspace.id.clone(), user_id.clone())).await;
    state.lookups.forget_user(&user_id);
    audit_change(&state, &caller, &context.workspace.id, "member.role", None, Some(user_id.to_string()), serde_json::json!({ "from": old, "to": role }));
    let members = state.store.list_members(&context.workspace.id).await?;
    let member = members.into_iter().find(|member| member.user_id == user_id).ok_or(ApiError::NotFound("member"))?;
    Ok(Json(MemberView::from(member)))
}

/// Removes a member and the member's grants in the workspace.
#[utoipa::path(delete, path = "/v1/workspaces/{workspace}/members/{user_id}", params(("workspace" = String, Path), ("user_id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path((workspace, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let user_id = parse_user_id(&user_id)?;
    let old = state.store.get_membership(&context.workspace.id, &user_id).await?.ok_or(ApiError::NotFound("member"))?;
    check_owner_change(context.role, Some(old), None)?;
    ensure_owner_remains(&state, &context.workspace.id, &user_id, old, None).await?;
    state.store.remove_membership(&context.workspace.id, &user_id).await?;
    state.invalidate(PermissionScope::user(context.workspace.id.clone(), user_id.clone())).await;
    state.lookups.forget_user(&user_id);
    audit_change(&state, &caller, &context.workspace.id, "member.remove", None, Some(user_id.to_string()), serde_json::Value::Null);
    Ok(StatusCode::NO_CONTENT)
}

/// Rejects a change that would leave the workspace without an owner.
async fn ensure_owner_remains(
    state: &crate::state::ControlPlane,
    workspace: &houston_protocol::WorkspaceId,
    user: &houston_protocol::UserId,
    old: Role,
    new: Option<Role>,
) -> Result<(), ApiError> {
    if old != Role::Owner || new == Some(Role::Owner) {
        return Ok(());
    }
    let members = state.store.list_members(workspace).await?;
    let other_owners = members.iter().filter(|member| member.role == Role::Owner && member.user_id != *user).count();
    if other_owners == 0 {
        return Err(ApiError::Conflict("the workspace must keep at least one owner".to_owned()));
    }
    Ok(())
}

/// Invites an email address; the response carries the token to send to the invitee.
#[utoipa::path(post, path = "/v1/workspaces/{workspace}/invitations", params(("workspace" = String, Path)), request_body = CreateInvitationRequest,
    security(("bearer" = [])), responses((status = 201, body = InvitationView), (status = 403, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn create_invitation(
    State(state): State<AppState>,
    caller: AuthenticatedUser,
    Path(workspace): Path<String>,
    JsonBody(body): JsonBody<CreateInvitationRequest>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let context = admin_context(&state, &caller, &workspace).await?;
    let mut fields = FieldErrors::default();
    let email = check_email(&mut fields, body.email.as_deref());
    let role = parse_role(&mut fields, "role", body.role.as_deref());
    fields.finish()?;
    let role = role.unwrap_or(Role::Member);
    check_owner_change(context.role, None, Some(role))?;

    let token = random_token();
    let invitation = Invitation {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: context.workspace.id.clone(),
        email: email.clone(),
        role,
        token_hash: hash_token(&token),
        created_by: Some(caller.user_id.clone()),
        expires_at: OffsetDateTime::now_utc() + INVITATION_TTL,
    };
    let view = InvitationView { id: invitation.id.clone(), email, role: role.as_str().to_owned(), token, expires_at: invitation.expires_at };
    state.store.create_invitation(invitation).await?;
    audit_change(&state, &caller, &context.workspace.id, "invitation.create", None, Some(view.email.clone()), serde_json::json!({ "role": role }));
    Ok((StatusCode::CREATED, Json(view)))
}

/// Accepts an invitation: creates the user (or checks an existing user's password), adds the
/// membership and signs in.
#[utoipa::path(post, path = "/v1/invitations/accept", request_body = AcceptInvitationRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 422, body = ErrorResponse)))]
pub async fn accept_invitation(State(state): State<AppState>, JsonBody(body): JsonBody<AcceptInvitationRequest>) -> Result<Json<TokenResponse>, ApiError> {
    let mut fields = FieldErrors::default();
    let token = body.token.unwrap_or_default();
    if token.is_empty() {
        fields.add("token", "is missing");
    }
    let name = body.name.unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        fields.add("name", "is missing");
    }
    check_password(&mut fields, body.password.as_deref(), true);
    fields.finish()?;
    let password = body.password.unwrap_or_default();
    let issuer = builtin(&state)?;

    // NOTE: the invitation is used up before an existing user's password is checked, so a
    // wrong password there costs the invitee a new invitation.
    let invitation = state.store.accept_invitation(&hash_token(&token), OffsetDateTime::now_utc()).await?.ok_or(ApiError::InvalidInvitation)?;
    let user = match state.store.get_user_by_email(&invitation.email).await? {
        Some(user) => {
            if !password::verify_password(password, user.password_hash.clone()).await {
                return Err(ApiError::InvalidCredentials);
            }
            user
        }
        None => {
            let password_hash = password::hash_password(password).await.map_err(|error| ApiError::Internal(error.into()))?;
            let new_user = NewUser { email: Some(invitation.email.clone()), name, password_hash: Some(password_hash), ..NewUser::default() };
            state.store.create_user(new_user).await?
        }
    };
    state.store.set_membership(&invitation.workspace_id, &user.id, invitation.role).await?;
    state.invalidate(PermissionScope::user(invitation.workspace_id.clone(), user.id.clone())).await;
    state.lookups.forget_user(&user.id);
    Ok(Json(issue_tokens(&state, issuer, &user, None).await?))
}
