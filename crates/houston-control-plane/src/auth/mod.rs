//! Authentication: the built-in issuer, external issuers, token verification and the
//! [`AuthenticatedUser`] extractor.
//!
//! Verification trusts nothing in a token before its signature is checked except to pick
//! the issuer: the issuer's configured algorithms decide which `alg` is acceptable (never the
//! header alone), `exp`, `iss` and `aud` are required, and one leeway applies to `exp`, `nbf`
//! and `iat`.

pub mod builtin;
pub mod config;
mod error;
pub mod jwks;
pub mod password;
mod verify;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use houston_protocol::UserId;
use serde::{Deserialize, Serialize};

pub use config::IdentityConfig;
pub use error::TokenError;
pub use verify::Verifier;

use crate::error::ApiError;
use crate::state::ControlPlane;

/// The claims Houston reads from an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// A string or an array of strings, as JWT allows. Defaults here only so that the
    /// verifier, not the parser, reports a missing claim.
    #[serde(default)]
    pub aud: serde_json::Value,
    #[serde(default)]
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The caller of a request, after the token was verified and mapped to a user.
///
/// The user id comes from the verified token (the built-in issuer's `sub`) or from the store
/// (an external issuer's `iss` and `sub`), never from a client header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: UserId,
    pub claims: Arc<Claims>,
}

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    S: Send + Sync,
    Arc<ControlPlane>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let control_plane = Arc::<ControlPlane>::from_ref(state);
        let token = bearer_token(parts).ok_or(TokenError::Missing)?;
        match control_plane.authenticate(token).await {
            Ok(user) => Ok(user),
            Err(error) => {
                tracing::debug!(check = %error.check(), "rejected a bearer token");
                Err(error.into())
            }
        }
    }
}

/// Returns the token of an `Authorization: Bearer …` header.
#[must_use]
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}
