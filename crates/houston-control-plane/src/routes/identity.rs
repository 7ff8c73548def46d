//! Sign-in with the built-in issuer, token refresh and logout, the public keys, and the
//! caller's own identity and workspaces.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use houston_cache::{Quota, RateDecision, RateLimitKey, Subject};
use houston_store::{NewRefreshToken, RefreshOutcome, User};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{ClientIp, ErrorResponse, JsonBody};
use crate::auth::builtin::BuiltinIssuer;
use crate::auth::{AuthenticatedUser, TokenError, password};
use crate::error::{ApiError, FieldErrors};
use crate::state::{AppState, ControlPlane};

/// Body of `POST /v1/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Response body of a login, a refresh and an accepted invitation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Body of `POST /v1/token/refresh` and `POST /v1/logout`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

/// A workspace of the caller, with the caller's role.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub name: String,
}

/// Response body of `GET /v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    pub workspaces: Vec<WorkspaceView>,
}

/// Response body of `GET /v1/workspaces`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

/// Response body of `GET /v1/auth/config`: the sign-in methods this server offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthConfigResponse {
    /// Whether `POST /v1/login` accepts email and password (the built-in issuer is enabled).
    pub password_login: bool,
    /// Browser sign-in with an external OpenID Connect issuer; `null` when none is configured.
    pub oidc: Option<OidcSignInView>,
}

/// An external issuer the web app signs in with (authorization code flow with PKCE).
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcSignInView {
    pub display_name: String,
    /// The issuer's `iss`; its tokens are accepted as bearer tokens.
    pub issuer: String,
    pub client_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub scopes: Vec<String>,
}

/// Returns the sign-in methods this server offers. Needs no token.
#[utoipa::path(get, path = "/v1/auth/config", responses((status = 200, body = AuthConfigResponse)))]
pub async fn auth_config(State(state): State<AppState>) -> Json<AuthConfigResponse> {
    let oidc = state.oidc_sign_in.as_ref().map(|oidc| OidcSignInView {
        display_name: oidc.display_name.clone(),
        issuer: oidc.issuer.clone(),
        client_id: oidc.client_id.clone(),
        authorization_endpoint: oidc.authorization_endpoint.clone(),
        token_endpoint: oidc.token_endpoint.clone(),
        scopes: oidc.scopes.clone(),
    });
    Json(AuthConfigResponse { password_login: state.builtin.is_some(), oidc })
}

pub(crate) fn builtin(state: &ControlPlane) -> Result<&Arc<BuiltinIssuer>, ApiError> {
    state.builtin.as_ref().ok_or(ApiError::NotFound("built-in issuer"))
}

/// Signs in with email and password. A wrong email and a wrong password answer the same.
#[utoipa::path(post, path = "/v1/login", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub async fn login(State(state): State<AppState>, ClientIp(ip): ClientIp, JsonBody(body): JsonBody<LoginRequest>) -> Result<Json<TokenResponse>, ApiError> {
    let mut fields = FieldErrors::default();
    let email = body.email.unwrap_or_default().trim().to_lowercase();
    let password = body.password.unwrap_or_default();
    if email.is_empty() {
        fields.add("email", "is missing");
    }
    if password.is_empty() {
        fields.add("password", "is missing");
    }
    fields.finish()?;
    let issuer = builtin(&state)?;

    check_login_failures(&state, &email, ip).await?;
    let user = state.store.get_user_by_email(&email).await?;
    let stored_hash = user.as_ref().and_then(|user| user.password_hash.clone());
    let valid = password::verify_password(password, stored_hash).await;
    let Some(user) = user.filter(|_| valid) else {
        tracing::info!(client.ip = %ip, "rejected a login with invalid credentials");
        count_login_failure(&state, &email, ip).await?;
        return Err(ApiError::InvalidCredentials);
    };
    Ok(Json(issue_tokens(&state, issuer, &user, None).await?))
}

/// Rate-limit keys of failed logins, per email and per client address, with their quotas.
fn login_failure_limits(state: &ControlPlane, email: &str, ip: std::net::IpAddr) -> Result<[(RateLimitKey, Quota); 2], ApiError> {
    let quota = |per_minute: u32| Quota::per_minute(per_minute.max(1)).map_err(ApiError::internal);
    Ok([
        (RateLimitKey::new("login", Subject::Login(email.to_owned())), quota(state.limits.login_per_email_per_minute)?),
        (RateLimitKey::new("login", Subject::ClientIp(ip)), quota(state.limits.login_per_ip_per_minute)?),
    ])
}

/// Rejects the attempt with 429 when the email or the client address has used up its failed
/// logins. The attempt itself is not counted, because only failures count: successful logins
/// never use up the limit.
async fn check_login_failures(state: &ControlPlane, email: &str, ip: std::net::IpAddr) -> Result<(), ApiError> {
    for (key, quota) in login_failure_limits(state, email, ip)? {
        if let RateDecision::Limited { retry_after } = state.caches.rate_limiter.check(&key, probe_quota(quota)?).await {
            tracing::info!(client.ip = %ip, "rate-limited login attempts after repeated failures");
            return Err(ApiError::RateLimited { retry_after });
        }
    }
    Ok(())
}

/// Counts one failed login against both limits.
async fn count_login_failure(state: &ControlPlane, email: &str, ip: std::net::IpAddr) -> Result<(), ApiError> {
    for (key, quota) in login_failure_limits(state, email, ip)? {
        // A limited decision here means a concurrent attempt used the last failure; the next
        // attempt is rejected by `check_login_failures`, and this one still gets 401.
        state.caches.rate_limiter.check(&key, quota).await;
    }
    Ok(())
}

/// Returns a quota that decides like `quota` but uses up only 1 µs per allowed check.
///
/// The rate limiter has no read-only check, so a check with this quota replaces one.
/// GCRA allows a request while the key's theoretical arrival time runs at most
/// `period - period / limit` ahead of now (the burst tolerance). This quota has the same
/// tolerance and an emission interval of 1 µs, so it is limited exactly when one more failure
/// would be, with the same Retry-After, and each allowed check moves the key by 1 µs only.
fn probe_quota(quota: Quota) -> Result<Quota, ApiError> {
    // Microseconds, as the limiter computes them, so the tolerances match to the microsecond.
    let period_us = u64::try_from(quota.period().as_micros()).map_err(ApiError::internal)?;
    let tolerance_us = period_us - period_us / u64::from(quota.limit());
    let probe_period_us = tolerance_us + 1;
    let limit = u32::try_from(probe_period_us).map_err(ApiError::internal)?;
    Quota::new(limit, std::time::Duration::from_micros(probe_period_us)).map_err(ApiError::internal)
}

/// Signs an access token and stores a new refresh token (in `family` when rotating).
pub(crate) async fn issue_tokens(state: &ControlPlane, issuer: &BuiltinIssuer, user: &User, family: Option<String>) -> Result<TokenResponse, ApiError> {
    let (access_token, expires_in) =
        issuer.issue(user.id.as_str(), user.email.as_deref(), &user.name).await.map_err(|error| ApiError::Internal(error.into()))?;
    let refresh_token = random_token();
    let ttl = time::Duration::try_from(issuer.config.refresh_token_ttl).unwrap_or(time::Duration::days(30));
    state
        .store
        .insert_refresh_token(NewRefreshToken {
            token_hash: hash_token(&refresh_token),
            family_id: family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            user_id: user.id.clone(),
            expires_at: OffsetDateTime::now_utc() + ttl,
        })
        .await?;
    Ok(TokenResponse { access_token, token_type: "Bearer".to_owned(), expires_in, refresh_token })
}

/// Returns 32 random bytes, base64url-encoded: a refresh or invitation token.
pub(crate) fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the SHA-256 of a token, the only form in which the store keeps it.
pub(crate) fn hash_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn required_refresh_token(body: RefreshRequest) -> Result<String, ApiError> {
    let mut fields = FieldErrors::default();
    let token = body.refresh_token.unwrap_or_default();
    if token.is_empty() {
        fields.add("refresh_token", "is missing");
    }
    fields.finish()?;
    Ok(token)
}

/// Exchanges a refresh token for new tokens; the presented one stops working. Presenting a
/// used token again revokes every token of its login.
#[utoipa::path(post, path = "/v1/token/refresh", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub async fn refresh(State(state): State<AppState>, JsonBody(body): JsonBody<RefreshRequest>) -> Result<Json<TokenResponse>, ApiError> {
    let token = required_refresh_token(body)?;
    let issuer = builtin(&state)?;
    match state.store.use_refresh_token(&hash_token(&token), OffsetDateTime::now_utc()).await? {
        RefreshOutcome::Rotated { user_id, family_id } => {
            let user = state.store.get_user(&user_id).await?.ok_or(ApiError::InvalidRefreshToken)?;
            Ok(Json(issue_tokens(&state, issuer, &user, Some(family_id)).await?))
        }
        RefreshOutcome::Reused { family_id } => {
            tracing::warn!(refresh.family = %family_id, "a used refresh token was presented again; revoked its family");
            Err(ApiError::InvalidRefreshToken)
        }
        RefreshOutcome::Invalid => Err(ApiError::InvalidRefreshToken),
    }
}

/// Revokes the refresh token and every token rotated from the same login.
#[utoipa::path(post, path = "/v1/logout", request_body = RefreshRequest,
    responses((status = 204), (status = 422, body = ErrorResponse)))]
pub async fn logout(State(state): State<AppState>, JsonBody(body): JsonBody<RefreshRequest>) -> Result<StatusCode, ApiError> {
    let token = required_refresh_token(body)?;
    state.store.revoke_refresh_token(&hash_token(&token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Returns the built-in issuer's public keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "a JWK set")))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<jsonwebtoken::jwk::JwkSet>, ApiError> {
    Ok(Json(builtin(&state)?.jwks().await))
}

/// The caller and the caller's workspaces.
#[utoipa::path(get, path = "/v1/me", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorResponse)))]
pub async fn me(State(state): State<AppState>, caller: AuthenticatedUser) -> Result<Json<MeResponse>, ApiError> {
    let user = state.store.get_user(&caller.user_id).await?.ok_or(ApiError::Unauthenticated(TokenError::SubjectInvalid))?;
    let workspaces = workspace_views(&state, &caller).await?;
    Ok(Json(MeResponse { user: UserView { id: user.id.to_string(), email: user.email, name: user.name }, workspaces }))
}

/// The caller's workspaces with the caller's role in each.
#[utoipa::path(get, path = "/v1/workspaces", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceList), (status = 401, body = ErrorResponse)))]
pub async fn workspaces(State(state): State<AppState>, caller: AuthenticatedUser) -> Result<Json<WorkspaceList>, ApiError> {
    Ok(Json(WorkspaceList { workspaces: workspace_views(&state, &caller).await? }))
}

async fn workspace_views(state: &ControlPlane, caller: &AuthenticatedUser) -> Result<Vec<WorkspaceView>, ApiError> {
    let memberships = state.store.list_user_workspaces(&caller.user_id).await?;
    Ok(memberships
        .into_iter()
        .map(|membership| WorkspaceView {
            id: membership.workspace.id.to_string(),
            slug: membership.workspace.slug,
            name: membership.workspace.name,
            role: membership.role.as_str().to_owned(),
        })
        .collect())
}
