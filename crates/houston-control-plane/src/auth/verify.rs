//! Verification of access tokens from every configured issuer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use houston_protocol::UserId;
use houston_store::Store;
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::builtin::BuiltinIssuer;
use super::config::{ExternalIssuerConfig, IdentityConfig, TokenAlgorithm};
use super::jwks::JwksCache;
use super::{AuthenticatedUser, Claims, TokenError};

/// Verified tokens kept in memory; past this count the cache is emptied, which costs one
/// signature check per live token.
const TOKEN_CACHE_CAPACITY: usize = 50_000;

enum KeySource {
    Builtin(Arc<BuiltinIssuer>),
    External { jwks: Option<Box<JwksCache>>, hs256: Option<DecodingKey> },
}

struct Issuer {
    audience: String,
    algorithms: Vec<TokenAlgorithm>,
    keys: KeySource,
}

#[derive(Deserialize)]
struct UnverifiedHeader {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct UnverifiedIssuer {
    iss: Option<serde_json::Value>,
}

/// Verifies tokens of the built-in and the external issuers and maps them to users.
pub struct Verifier {
    issuers: HashMap<String, Issuer>,
    leeway_secs: u64,
    store: Arc<dyn Store>,
    /// SHA-256 of a verified token to its user, so a repeated token skips the signature check.
    verified: Mutex<HashMap<[u8; 32], AuthenticatedUser>>,
    /// External (issuer, subject) to user id; the mapping never changes once created.
    external_users: Mutex<HashMap<(String, String), UserId>>,
}

impl Verifier {
    /// Builds the verifier for the configured issuers.
    #[must_use]
    pub fn new(config: &IdentityConfig, builtin: Option<Arc<BuiltinIssuer>>, store: Arc<dyn Store>, client: &reqwest::Client) -> Self {
        let mut issuers = HashMap::new();
        if let Some(builtin) = builtin {
            let issuer = Issuer { audience: config.audience.clone(), algorithms: vec![TokenAlgorithm::Es256], keys: KeySource::Builtin(builtin.clone()) };
            issuers.insert(builtin.issuer().to_owned(), issuer);
        }
        for external in &config.external {
            issuers.insert(external.issuer.clone(), external_issuer(external, &config.audience, client));
        }
        Self {
            issuers,
            leeway_secs: config.leeway.as_secs(),
            store,
            verified: Mutex::new(HashMap::new()),
            external_users: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the JWKS cache of an external issuer, for tests and metrics.
    #[must_use]
    pub fn jwks_cache(&self, issuer: &str) -> Option<&JwksCache> {
        match &self.issuers.get(issuer)?.keys {
            KeySource::External { jwks, .. } => jwks.as_deref(),
            KeySource::Builtin(_) => None,
        }
    }

    /// Verifies `token` and returns its user.
    ///
    /// # Errors
    /// [`TokenError`] naming the failed check.
    pub async fn authenticate(&self, token: &str) -> Result<AuthenticatedUser, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(user) = self.cached(&digest) {
            return Ok(user);
        }
        let (claims, is_builtin) = self.verify(token).await?;
        let user_id = if is_builtin {
            UserId::parse(claims.sub.as_str()).map_err(|_| TokenError::SubjectInvalid)?
        } else {
            self.external_user(&claims).await?
        };
        let user = AuthenticatedUser { user_id, claims: Arc::new(claims) };
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= TOKEN_CACHE_CAPACITY {
            verified.clear();
        }
        verified.insert(digest, user.clone());
        Ok(user)
    }

    /// Returns a cached user whose token has not expired (leeway included).
    fn cached(&self, digest: &[u8; 32]) -> Option<AuthenticatedUser> {
        let verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let user = verified.get(digest)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(0);
        (user.claims.exp + leeway > now).then(|| user.clone())
    }

    /// Checks the token's signature and claims; returns the claims and whether the built-in
    /// issuer signed it.
    async fn verify(&self, token: &str) -> Result<(Claims, bool), TokenError> {
        let (header, iss) = peek(token)?;
        let alg = header.alg.ok_or(TokenError::AlgorithmRejected)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgorithmRejected);
        }
        let issuer = self.issuers.get(&iss).ok_or(TokenError::IssuerInvalid)?;
        let algorithm = TokenAlgorithm::parse(&alg).filter(|algorithm| issuer.algorithms.contains(algorithm)).ok_or(TokenError::AlgorithmRejected)?;
        let key = match (&issuer.keys, algorithm) {
            (KeySource::Builtin(builtin), _) => builtin.decoding_key(header.kid.as_deref()).await?,
            (KeySource::External { hs256: Some(secret), .. }, TokenAlgorithm::Hs256) => secret.clone(),
            (KeySource::External { hs256: None, .. }, TokenAlgorithm::Hs256) => return Err(TokenError::AlgorithmRejected),
            (KeySource::External { jwks: Some(jwks), .. }, _) => jwks.key(header.kid.as_deref(), algorithm).await?,
            (KeySource::External { jwks: None, .. }, _) => return Err(TokenError::AlgorithmRejected),
        };

        let mut validation = Validation::new(algorithm.jwt());
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[iss.as_str()]);
        validation.set_audience(&[issuer.audience.as_str()]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|error| TokenError::from_jwt(&error))?;
        let claims = data.claims;

        let now = OffsetDateTime::now_utc().unix_timestamp();
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(0);
        if claims.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok((claims, matches!(issuer.keys, KeySource::Builtin(_))))
    }

    /// Maps an external (iss, sub) to its user, creating the user on first sight.
    async fn external_user(&self, claims: &Claims) -> Result<UserId, TokenError> {
        let key = (claims.iss.clone(), claims.sub.clone());
        if let Some(user) = self.external_users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(user.clone());
        }
        let name = claims.name.clone().or_else(|| claims.email.clone()).unwrap_or_else(|| claims.sub.clone());
        let user = self.store.upsert_external_user(&claims.iss, &claims.sub, claims.email.as_deref(), &name).await.map_err(|error| {
            tracing::warn!(%error, issuer = %claims.iss, "storing an external user failed");
            TokenError::KeysUnavailable
        })?;
        self.external_users.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, user.id.clone());
        Ok(user.id)
    }
}

fn external_issuer(config: &ExternalIssuerConfig, default_audience: &str, client: &reqwest::Client) -> Issuer {
    let jwks = config
        .jwks_url
        .as_ref()
        .map(|url| Box::new(JwksCache::new(url.clone(), client.clone(), config.jwks_refetch_cooldown, config.jwks_max_age)));
    let hs256 = config.hs256_secret.as_ref().and_then(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes()).ok());
    Issuer {
        audience: config.audience.clone().unwrap_or_else(|| default_audience.to_owned()),
        algorithms: config.algorithms.clone(),
        keys: KeySource::External { jwks, hs256 },
    }
}

/// Reads the header and the `iss` claim without verifying anything, only to pick the issuer
/// and its keys.
fn peek(token: &str) -> Result<(UnverifiedHeader, String), TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: UnverifiedHeader = decode_segment(header)?;
    let payload: UnverifiedIssuer = decode_segment(payload)?;
    match payload.iss {
        Some(serde_json::Value::String(iss)) => Ok((header, iss)),
        Some(_) => Err(TokenError::IssuerInvalid),
        None => Err(TokenError::ClaimMissing("iss".to_owned())),
    }
}

fn decode_segment<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}
