//! Settings of token issuing and verification.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::SecretString;

/// A signature algorithm an issuer may use. `none` has no variant, so it can never be
/// configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenAlgorithm {
    Es256,
    EdDsa,
    Rs256,
    Hs256,
}

impl TokenAlgorithm {
    /// Parses the JOSE name (`ES256`, `EdDSA`, `RS256`, `HS256`), matched exactly.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            "RS256" => Some(Self::Rs256),
            "HS256" => Some(Self::Hs256),
            _ => None,
        }
    }

    /// Returns the JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Hs256 => "HS256",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Rs256 => Algorithm::RS256,
            Self::Hs256 => Algorithm::HS256,
        }
    }
}

/// The built-in issuer: passwords stored here, tokens signed with ES256 keys kept in the
/// store so every replica signs and verifies with the same keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinIssuerConfig {
    /// The `iss` of the tokens it issues.
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Minimum time between two reloads of the signing keys on an unknown `kid`.
    pub key_reload_cooldown: Duration,
}

impl Default for BuiltinIssuerConfig {
    fn default() -> Self {
        Self {
            issuer: "houston".to_owned(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            key_reload_cooldown: Duration::from_secs(10),
        }
    }
}

/// An external issuer (Supabase, any OIDC provider) whose tokens are accepted.
#[derive(Debug, Clone)]
pub struct ExternalIssuerConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry; the identity-wide audience when `None`.
    pub audience: Option<String>,
    /// The only algorithms accepted from this issuer, whatever a token's header claims.
    pub algorithms: Vec<TokenAlgorithm>,
    /// URL of its public keys (JWKS), needed for every algorithm except HS256.
    pub jwks_url: Option<String>,
    /// The shared secret of HS256 tokens; HS256 is rejected without it.
    pub hs256_secret: Option<SecretString>,
    /// Minimum time between two fetches triggered by an unknown `kid`.
    pub jwks_refetch_cooldown: Duration,
    /// Age after which the key set is fetched again on the next token.
    pub jwks_max_age: Duration,
}

impl ExternalIssuerConfig {
    /// Creates an issuer with default cache timings (30 s cooldown, 10 min maximum age).
    #[must_use]
    pub fn new(issuer: impl Into<String>, algorithms: Vec<TokenAlgorithm>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: None,
            algorithms,
            jwks_url: None,
            hs256_secret: None,
            jwks_refetch_cooldown: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(600),
        }
    }

    /// Checks that every algorithm has its key source.
    ///
    /// # Errors
    /// A sentence naming the missing setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.algorithms.is_empty() {
            return Err("algorithms must name at least one algorithm".to_owned());
        }
        if self.algorithms.contains(&TokenAlgorithm::Hs256) && self.hs256_secret.is_none() {
            return Err("HS256 needs hs256_secret for this issuer".to_owned());
        }
        let needs_jwks = self.algorithms.iter().any(|algorithm| *algorithm != TokenAlgorithm::Hs256);
        if needs_jwks && self.jwks_url.is_none() {
            return Err("needs jwks_url for its asymmetric algorithms".to_owned());
        }
        Ok(())
    }
}

/// Browser sign-in with one external OpenID Connect issuer (authorization code flow with
/// PKCE, run by the web app), offered at `GET /v1/auth/config`. Every value is public: the
/// web app is a public client and holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSignInConfig {
    /// Name on the sign-in button, for example `Acme SSO`.
    pub display_name: String,
    /// The issuer's `iss`, which must also be an accepted external issuer.
    pub issuer: String,
    /// The web app's client id at the issuer.
    pub client_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// Scopes requested; always includes `openid`.
    pub scopes: Vec<String>,
}

/// Scopes requested when the configuration names none.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];

impl OidcSignInConfig {
    /// Checks every field and returns one problem per invalid field, as `(field, reason)`.
    /// `accepted_issuers` are the `iss` values of the configured external issuers.
    #[must_use]
    pub fn problems(&self, accepted_issuers: &[&str]) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for (field, value) in [("display_name", &self.display_name), ("client_id", &self.client_id)] {
            if value.trim().is_empty() {
                problems.push((field, "is empty".to_owned()));
            }
        }
        if !accepted_issuers.contains(&self.issuer.as_str()) {
            problems.push(("issuer", format!("{:?} is not the issuer of any [[identity.external]] table, so its tokens would be rejected", self.issuer)));
        }
        for (field, url) in [("authorization_endpoint", &self.authorization_endpoint), ("token_endpoint", &self.token_endpoint)] {
            if let Err(reason) = check_endpoint(url) {
                problems.push((field, reason));
            }
        }
        if !self.scopes.iter().any(|scope| scope == "openid") {
            problems.push(("scopes", "must include \"openid\"".to_owned()));
        }
        if let Some(scope) = self.scopes.iter().find(|scope| scope.is_empty() || scope.contains(char::is_whitespace)) {
            problems.push(("scopes", format!("{scope:?} is not a scope: scopes are single non-empty words")));
        }
        problems
    }
}

/// Accepts `https://` URLs, and `http://` only on a loopback host (a local test issuer).
fn check_endpoint(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| format!("invalid URL {url:?}: {error}"))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{url:?} must be an https:// URL (http:// only on a loopback host)")),
    }
}

/// Settings of authentication.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The `aud` every token must carry (unless its issuer sets another).
    pub audience: String,
    /// Clock skew allowed on every time claim (`exp`, `nbf`, `iat`).
    pub leeway: Duration,
    /// The built-in issuer; `None` disables passwords and `POST /v1/login`.
    pub builtin: Option<BuiltinIssuerConfig>,
    pub external: Vec<ExternalIssuerConfig>,
    /// Browser sign-in with one of the external issuers; `None` offers passwords only.
    pub oidc: Option<OidcSignInConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            audience: "houston".to_owned(),
            leeway: Duration::from_secs(30),
            builtin: Some(BuiltinIssuerConfig::default()),
            external: Vec::new(),
            oidc: None,
        }
    }
}

impl IdentityConfig {
    /// Returns the settings without secrets, for the start-up log.
    #[must_use]
    pub fn redacted(&self) -> serde_json::Value {
        let external: Vec<serde_json::Value> = self
            .external
            .iter()
            .map(|issuer| {
                serde_json::json!({
                    "issuer": issuer.issuer,
                    "audience": issuer.audience,
                    "algorithms": issuer.algorithms.iter().map(|algorithm| algorithm.name()).collect::<Vec<_>>(),
                    "jwks_url": issuer.jwks_url,
                    "hs256_secret": issuer.hs256_secret.as_ref().map(|_| "[redacted]"),
                    "jwks_refetch_cooldown_ms": issuer.jwks_refetch_cooldown.as_millis(),
                    "jwks_max_age_ms": issuer.jwks_max_age.as_millis(),
                })
            })
            .collect();
        serde_json::json!({
            "audience": self.audience,
            "leeway_ms": self.leeway.as_millis(),
            "builtin": self.builtin.as_ref().map(|builtin| serde_json::json!({
                "issuer": builtin.issuer,
                "access_token_ttl_secs": builtin.access_token_ttl.as_secs(),
                "refresh_token_ttl_secs": builtin.refresh_token_ttl.as_secs(),
            })),
            "external": external,
            "oidc": self.oidc.as_ref().map(|oidc| serde_json::json!({
                "display_name": oidc.display_name,
                "issuer": oidc.issuer,
                "client_id": oidc.client_id,
                "authorization_endpoint": oidc.authorization_endpoint,
                "token_endpoint": oidc.token_endpoint,
                "scopes": oidc.scopes,
            })),
        })
    }
}
