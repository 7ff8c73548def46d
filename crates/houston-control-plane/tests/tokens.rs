//! Token verification: algorithm confusion, required claims, time claims and leeway, key
//! rotation, JWKS fetch limits, and HS256 beside ES256. External keys come from a JWKS server
//! on 127.0.0.1 that each test starts.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{app_on, in_process_caches};
use houston_control_plane::IdentityConfig;
use houston_control_plane::auth::config::{ExternalIssuerConfig, TokenAlgorithm};
use houston_store::testing::sqlite_store;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test/auth/v1";
const AUDIENCE: &str = "authenticated";
const SHARED_SECRET: &str = "a shared secret of at least 32 bytes!";

/// An ES256 key pair with its kid.
struct EcKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    public_pem: String,
}

fn ec_key(kid: &str) -> EcKey {
    let secret = p256::SecretKey::generate();
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    let public_pem = secret.public_key().to_public_key_pem(LineEnding::LF).unwrap();
    EcKey { kid: kid.to_owned(), encoding, jwk, public_pem }
}

/// A JWKS server whose key set can be replaced and which counts its fetches.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(keys: Vec<Jwk>) -> JwksServer {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let app = {
        let keys = keys.clone();
        let fetches = fetches.clone();
        axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let keys = keys.clone();
                let fetches = fetches.clone();
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(JwkSet { keys: keys.lock().unwrap().clone() })
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer { url, keys, fetches }
}

fn identity(jwks_url: &str, algorithms: Vec<TokenAlgorithm>, cooldown: Duration) -> IdentityConfig {
    let mut external = ExternalIssuerConfig::new(ISSUER, algorithms);
    external.audience = Some(AUDIENCE.to_owned());
    external.jwks_url = Some(jwks_url.to_owned());
    external.hs256_secret = Some(SHARED_SECRET.to_owned().into());
    external.jwks_refetch_cooldown = cooldown;
    IdentityConfig { leeway: Duration::from_secs(30), external: vec![external], ..IdentityConfig::default() }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "user-123", "aud": AUDIENCE, "exp": now() + 600, "iat": now(), "email": "ext@issuer.test"})
}

fn es256(key: &EcKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// Builds a token with any header, signed with HS256 over `secret` (or unsigned).
fn raw_token(header: &Value, claims: &Value, secret: Option<&[u8]>) -> String {
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = secret.map(|secret| hmac_sha256(secret, signing_input.as_bytes())).unwrap_or_default();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x36).collect();
    let outer_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&inner_key).chain_update(message).finalize();
    Sha256::new().chain_update(&outer_key).chain_update(inner).finalize().to_vec()
}

struct Fixture {
    app: common::TestApp,
    key: EcKey,
    server: JwksServer,
}

async fn fixture(algorithms: Vec<TokenAlgorithm>, cooldown: Duration) -> Fixture {
    let key = ec_key("key-1");
    let server = jwks_server(vec![key.jwk.clone()]).await;
    let store = sqlite_store(5).await.unwrap();
    let app = app_on(store, identity(&server.url, algorithms, cooldown), in_process_caches()).await;
    Fixture { app, key, server }
}

/// Calls `/v1/me` and returns the status and the failed check, if any.
async fn check(app: &common::TestApp, token: &str) -> (StatusCode, String) {
    let answer = app.get("/v1/me", token).await;
    let failed = answer.body["error"]["details"]["check"].as_str().unwrap_or_default().to_owned();
    (answer.status, failed)
}

#[tokio::test]
async fn valid_es256_token_accepted() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let answer = fixture.app.get("/v1/me", &es256(&fixture.key, &claims())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["user"]["name"], "ext@issuer.test");
    let again = fixture.app.get("/v1/me", &es256(&fixture.key, &claims())).await;
    assert_eq!(again.body["user"]["id"], answer.body["user"]["id"], "matched by iss and sub");
}

#[tokio::test]
async fn alg_none_rejected_in_any_casing() {
    let fixture = fixture(vec![TokenAlgorithm::Es256, TokenAlgorithm::Hs256], Duration::from_secs(30)).await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims(), None);
        assert_eq!(check(&fixture.app, &token).await, (StatusCode::UNAUTHORIZED, "alg".to_owned()), "alg {alg}");
    }
}

#[tokio::test]
async fn public_key_as_hs256_secret_rejected() {
    // The issuer publishes ES256 keys only, so HS256 is not allowed for it at all.
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let rsa_like_pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n";
    for secret in [fixture.key.public_pem.as_bytes(), rsa_like_pem.as_bytes(), serde_json::to_string(&fixture.key.jwk).unwrap().as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(fixture.key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret).unwrap()).unwrap();
        assert_eq!(check(&fixture.app, &token).await, (StatusCode::UNAUTHORIZED, "alg".to_owned()));
    }

    // Where HS256 is allowed, only the configured secret verifies.
    let with_hs = fixture_with_both().await;
    let token = hs256(with_hs.key.public_pem.as_bytes(), &claims());
    assert_eq!(check(&with_hs.app, &token).await, (StatusCode::UNAUTHORIZED, "signature".to_owned()));
}

async fn fixture_with_both() -> Fixture {
    fixture(vec![TokenAlgorithm::Es256, TokenAlgorithm::Hs256], Duration::from_secs(30)).await
}

#[tokio::test]
async fn missing_claims_rejected() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    for claim in ["aud", "exp"] {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(claim);
        let answer = check(&fixture.app, &es256(&fixture.key, &claims)).await;
        assert_eq!(answer, (StatusCode::UNAUTHORIZED, claim.to_owned()), "missing {claim}");
    }
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(check(&fixture.app, &es256(&fixture.key, &claims)).await, (StatusCode::UNAUTHORIZED, "iss".to_owned()));
}

#[tokio::test]
async fn wrong_audience_and_issuer_rejected() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("another-app");
    assert_eq!(check(&fixture.app, &es256(&fixture.key, &wrong_aud)).await, (StatusCode::UNAUTHORIZED, "aud".to_owned()));
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.test");
    assert_eq!(check(&fixture.app, &es256(&fixture.key, &wrong_iss)).await, (StatusCode::UNAUTHORIZED, "iss".to_owned()));
}

#[tokio::test]
async fn time_claims_and_leeway() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let cases = [
        ("expired long ago", json!({"exp": now() - 3600}), Some("exp")),
        ("expired inside leeway", json!({"exp": now() - 10}), None),
        ("expired beyond leeway", json!({"exp": now() - 60}), Some("exp")),
        ("nbf in the future", json!({"nbf": now() + 3600}), Some("nbf")),
        ("nbf inside leeway", json!({"nbf": now() + 10}), None),
        ("nbf beyond leeway", json!({"nbf": now() + 60}), Some("nbf")),
        ("iat inside leeway", json!({"iat": now() + 10}), None),
        ("iat beyond leeway", json!({"iat": now() + 60}), Some("iat")),
    ];
    for (name, overrides, failed) in cases {
        let mut claims = claims();
        for (key, value) in overrides.as_object().unwrap() {
            claims[key] = value.clone();
        }
        let (status, check_name) = check(&fixture.app, &es256(&fixture.key, &claims)).await;
        match failed {
            Some(expected) => assert_eq!((status, check_name.as_str()), (StatusCode::UNAUTHORIZED, expected), "{name}"),
            None => assert_eq!(status, StatusCode::OK, "{name}: {check_name}"),
        }
    }
}

#[tokio::test]
async fn tampered_signature_rejected() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let token = es256(&fixture.key, &claims());
    let (head, _) = token.rsplit_once('.').unwrap();
    let mut forged_claims = claims();
    forged_claims["sub"] = json!("someone-else");
    let forged_payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(head.contains('.'));
    assert_eq!(check(&fixture.app, &forged).await, (StatusCode::UNAUTHORIZED, "signature".to_owned()));
    assert_eq!(check(&fixture.app, "not-a-jwt").await, (StatusCode::UNAUTHORIZED, "format".to_owned()));
    let missing = fixture.app.call(axum::http::Method::GET, "/v1/me", None, None).await;
    assert_eq!(missing.body["error"]["code"], "token_missing");
}

#[tokio::test]
async fn rotated_key_accepted_without_restart() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_millis(100)).await;
    assert_eq!(check(&fixture.app, &es256(&fixture.key, &claims())).await.0, StatusCode::OK);

    let rotated = ec_key("key-2");
    *fixture.server.keys.lock().unwrap() = vec![fixture.key.jwk.clone(), rotated.jwk.clone()];
    tokio::time::sleep(Duration::from_millis(150)).await;
    let answer = check(&fixture.app, &es256(&rotated, &claims())).await;
    assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
    assert_eq!(check(&fixture.app, &es256(&fixture.key, &claims())).await.0, StatusCode::OK, "the old key still verifies");
}

#[tokio::test]
async fn random_kids_cause_few_fetches() {
    let fixture = fixture(vec![TokenAlgorithm::Es256], Duration::from_secs(30)).await;
    let unknown = ec_key("placeholder");
    let mut handles = Vec::new();
    let app = Arc::new(fixture.app);
    for index in 0..1000 {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(format!("random-{index}-{}", uuid::Uuid::new_v4()));
        let token = jsonwebtoken::encode(&header, &claims(), &unknown.encoding).unwrap();
        let app = app.clone();
        handles.push(tokio::spawn(async move { check(&app, &token).await }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap(), (StatusCode::UNAUTHORIZED, "kid".to_owned()));
    }
    let fetches = fixture.server.fetches.load(Ordering::SeqCst);
    println!("1000 unknown kids caused {fetches} JWKS fetches");
    assert!(fetches <= 2, "{fetches} fetches");
}

#[tokio::test]
async fn hs256_and_es256_side_by_side() {
    let fixture = fixture_with_both().await;
    let es = check(&fixture.app, &es256(&fixture.key, &claims())).await;
    let hs = check(&fixture.app, &hs256(SHARED_SECRET.as_bytes(), &claims())).await;
    assert_eq!(es.0, StatusCode::OK, "{es:?}");
    assert_eq!(hs.0, StatusCode::OK, "{hs:?}");
    let me_es = fixture.app.get("/v1/me", &es256(&fixture.key, &claims())).await;
    let me_hs = fixture.app.get("/v1/me", &hs256(SHARED_SECRET.as_bytes(), &claims())).await;
    assert_eq!(me_es.body["user"]["id"], me_hs.body["user"]["id"], "same iss and sub, same user");
}

#[tokio::test]
async fn builtin_rotation_reaches_other_replica() {
    let store = sqlite_store(5).await.unwrap();
    let first = app_on(store, IdentityConfig::default(), in_process_caches()).await;
    let mut no_cooldown = IdentityConfig::default();
    no_cooldown.builtin.as_mut().unwrap().key_reload_cooldown = Duration::ZERO;
    let second = app_on(first.store.share(), no_cooldown, in_process_caches()).await;
    common::seed_tenants(&first).await;

    let before = first.login("juan@acme.test", common::PASSWORD).await;
    assert_eq!(check(&second, &before).await.0, StatusCode::OK);
    let new_kid = first.state.builtin.as_ref().unwrap().rotate().await.unwrap();
    let after = first.login("juan@acme.test", common::PASSWORD).await;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(after.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], new_kid.as_str(), "the newest key signs");
    assert_eq!(check(&second, &after).await.0, StatusCode::OK, "the other replica loads the new key without a restart");
    assert_eq!(check(&second, &before).await.0, StatusCode::OK, "tokens of the old key stay valid");
}

#[tokio::test]
async fn raw_hs256_helper_matches_library() {
    let claims = claims();
    let library = hs256(SHARED_SECRET.as_bytes(), &claims);
    let header = json!({"typ": "JWT", "alg": "HS256"});
    let manual = raw_token(&header, &claims, Some(SHARED_SECRET.as_bytes()));
    let fixture = fixture_with_both().await;
    assert_eq!(check(&fixture.app, &manual).await.0, StatusCode::OK, "the hand-made HMAC must verify");
    assert!(!library.is_empty());
}
