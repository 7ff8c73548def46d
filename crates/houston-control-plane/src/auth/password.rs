//! Password hashing with argon2id, run on the blocking pool because one hash takes tens of
//! milliseconds of CPU.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A hash of a random password, verified when the email is unknown so that a login for an
/// unknown email takes as long as one with a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("dummy password for timing").unwrap_or_default());

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Hashes a password with argon2id and a random salt, returning the PHC string.
///
/// # Errors
/// A message when hashing fails (it does not with the default parameters).
pub async fn hash_password(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password).map_err(|error| error.to_string()))
        .await
        .map_err(|error| error.to_string())?
}

/// Checks `password` against `stored` (an argon2 PHC string), or against a dummy hash when
/// there is no stored hash, so both paths cost the same time.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    let result = tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash_text = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(hash) = PasswordHash::new(&hash_text) else {
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &hash).is_ok() && known
    })
    .await;
    result.unwrap_or(false)
}
