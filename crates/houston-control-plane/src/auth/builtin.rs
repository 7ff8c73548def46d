//! The built-in issuer: ES256 access tokens signed with keys kept in the store, so that every
//! replica signs and verifies with the same keys and a new key reaches all of them without a
//! restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use houston_store::{SigningKeyRecord, Store, StoreError};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use time::OffsetDateTime;
use tokio::sync::{Mutex, RwLock};

use super::config::BuiltinIssuerConfig;
use super::error::TokenError;
use super::Claims;

/// Failure to load or create the built-in issuer's keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading or storing signing keys failed")]
    Store(#[from] StoreError),
    #[error("signing key {kid} is invalid: {reason}")]
    Invalid { kid: String, reason: String },
    #[error("generating a signing key failed: {0}")]
    Generate(String),
}

struct KeyRing {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    public: JwkSet,
}

/// Issues and verifies the built-in issuer's access tokens.
pub struct BuiltinIssuer {
    pub(crate) config: BuiltinIssuerConfig,
    audience: String,
    store: Arc<dyn Store>,
    ring: RwLock<KeyRing>,
    last_reload: Mutex<Instant>,
}

impl BuiltinIssuer {
    /// Loads the signing keys from the store, creating the first one when there is none.
    ///
    /// # Errors
    /// [`KeyError`] when the store fails or a stored key cannot be read.
    pub async fn load(config: BuiltinIssuerConfig, audience: String, store: Arc<dyn Store>) -> Result<Self, KeyError> {
        if store.list_signing_keys().await?.is_empty() {
            store.insert_signing_key(&generate_key()?).await?;
        }
        let ring = load_ring(store.as_ref()).await?;
        Ok(Self { config, audience, store, ring: RwLock::new(ring), last_reload: Mutex::new(Instant::now()) })
    }

    /// Creates a new signing key and signs with it from now on; tokens signed with older
    /// keys stay valid until they expire. Other replicas pick the key up on its first token.
    ///
    /// # Errors
    /// [`KeyError`] when the key cannot be created or stored.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let key = generate_key()?;
        self.store.insert_signing_key(&key).await?;
        *self.ring.write().await = load_ring(self.store.as_ref()).await?;
        Ok(key.kid)
    }

    /// Returns the `iss` of the tokens it issues.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Signs an access token for `subject`, returning it and its lifetime in seconds.
    ///
    /// # Errors
    /// A message when signing fails (only with a corrupt key).
    pub async fn issue(&self, subject: &str, email: Option<&str>, name: &str) -> Result<(String, u64), String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = self.config.access_token_ttl.as_secs();
        let claims = Claims {
            iss: self.config.issuer.clone(),
            sub: subject.to_owned(),
            aud: serde_json::Value::String(self.audience.clone()),
            exp: now + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            nbf: Some(now),
            iat: Some(now),
            email: email.map(str::to_owned),
            name: Some(name.to_owned()),
        };
        let ring = self.ring.read().await;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(ring.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &ring.signing).map_err(|error| error.to_string())?;
        Ok((token, ttl))
    }

    /// Returns the public keys, as served at `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> JwkSet {
        self.ring.read().await.public.clone()
    }

    /// Returns the verification key for `kid`, reloading the keys from the store (at most
    /// once per cooldown) when it is unknown, so a key rotated on another replica is found.
    ///
    /// # Errors
    /// [`TokenError::KeyUnknown`] when no stored key has that `kid`.
    pub async fn decoding_key(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let kid = kid.ok_or(TokenError::KeyUnknown)?;
        if let Some(key) = self.ring.read().await.verifying.get(kid) {
            return Ok(key.clone());
        }
        let mut last_reload = self.last_reload.lock().await;
        if let Some(key) = self.ring.read().await.verifying.get(kid) {
            return Ok(key.clone());
        }
        if last_reload.elapsed() >= self.config.key_reload_cooldown {
            *last_reload = Instant::now();
            match load_ring(self.store.as_ref()).await {
                Ok(ring) => *self.ring.write().await = ring,
                Err(error) => tracing::warn!(%error, "reloading the built-in issuer's signing keys failed"),
            }
        }
        drop(last_reload);
        self.ring.read().await.verifying.get(kid).cloned().ok_or(TokenError::KeyUnknown)
    }

    /// Sets the reload cooldown, for tests of rotation.
    pub fn set_key_reload_cooldown(&mut self, cooldown: Duration) {
        self.config.key_reload_cooldown = cooldown;
    }
}

fn generate_key() -> Result<SigningKeyRecord, KeyError> {
    let secret = p256::SecretKey::try_generate().map_err(|error| KeyError::Generate(error.to_string()))?;
    let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|error| KeyError::Generate(error.to_string()))?;
    Ok(SigningKeyRecord {
        kid: uuid::Uuid::now_v7().simple().to_string(),
        algorithm: "ES256".to_owned(),
        private_key_pem: pem.to_string(),
        created_at: OffsetDateTime::now_utc(),
    })
}

/// Reads every stored key; the newest signs, all of them verify.
async fn load_ring(store: &dyn Store) -> Result<KeyRing, KeyError> {
    let records = store.list_signing_keys().await?;
    let mut verifying = HashMap::new();
    let mut public = Vec::new();
    let mut signing = None;
    for record in records {
        let invalid = |reason: String| KeyError::Invalid { kid: record.kid.clone(), reason };
        let encoding = EncodingKey::from_ec_pem(record.private_key_pem.as_bytes()).map_err(|error| invalid(error.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|error| invalid(error.to_string()))?;
        jwk.common.key_id = Some(record.kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|error| invalid(error.to_string()))?;
        verifying.insert(record.kid.clone(), decoding);
        public.push(jwk);
        // Records come newest first.
        if signing.is_none() {
            signing = Some((record.kid.clone(), encoding));
        }
    }
    let (signing_kid, signing) = signing.ok_or_else(|| KeyError::Generate("no signing key is stored".to_owned()))?;
    Ok(KeyRing { signing_kid, signing, verifying, public: JwkSet { keys: public } })
}
