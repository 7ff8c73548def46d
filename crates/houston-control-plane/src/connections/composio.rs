//! The control plane's read of Composio connected accounts.
//!
//! The control plane runs outside any sandbox and keeps the operator's Composio key itself
//! (`COMPOSIO_API_KEY`), unlike the engine, whose key the egress proxy adds.

use std::collections::HashMap;
use std::time::Duration;

use houston_protocol::ConnectionState;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Composio's public API, used when `COMPOSIO_BASE_URL` is unset.
pub const DEFAULT_BASE_URL: &str = "https://backend.composio.dev";

fn read_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Returns the Composio base URL when Composio is configured (`COMPOSIO_API_KEY` is set):
/// `COMPOSIO_BASE_URL`, or Composio's public API. The egress proxy applies the same rule,
/// so the URL given to engines is the one it adds the key for.
#[must_use]
pub fn base_url_from_env() -> Option<String> {
    read_env("COMPOSIO_API_KEY")?;
    Some(read_env("COMPOSIO_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()))
}

/// Lists a user's connected accounts at Composio.
#[derive(Clone)]
pub struct ComposioAccounts {
    base_url: String,
    api_key: SecretString,
    http: reqwest::Client,
}

impl std::fmt::Debug for ComposioAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposioAccounts").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl ComposioAccounts {
    /// Creates the client for Composio at `base_url` (without `/api/v3`).
    ///
    /// # Errors
    /// Returns a message when `base_url` is not an http:// or https:// URL.
    pub fn new(base_url: &str, api_key: SecretString) -> Result<Self, String> {
        if !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            return Err(format!("the Composio base URL {base_url:?} is not an http:// or https:// URL"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|error| format!("failed to build the Composio HTTP client: {error}"))?;
        Ok(Self { base_url: base_url.trim_end_matches('/').to_owned(), api_key, http })
    }

    /// Builds the client from `COMPOSIO_API_KEY` and [`base_url_from_env`]; `None` without
    /// a key, which turns connection reporting off.
    ///
    /// # Errors
    /// Returns a message when the base URL is invalid.
    pub fn from_env() -> Result<Option<Self>, String> {
        let (Some(base_url), Some(key)) = (base_url_from_env(), read_env("COMPOSIO_API_KEY")) else {
            return Ok(None);
        };
        Self::new(&base_url, SecretString::from(key)).map(Some)
    }

    /// Returns the best connection state per toolkit of `composio_user` (active over pending
    /// over expired). Toolkits without an account are left out.
    ///
    /// # Errors
    /// Returns a message when Composio cannot be reached or responds with an error status.
    pub async fn states(&self, composio_user: &str, toolkits: &[String]) -> Result<HashMap<String, ConnectionState>, String> {
        let url = format!("{}/api/v3/connected_accounts", self.base_url);
        let response = self
            .http
            .get(&url)
            .header("x-api-key", self.api_key.expose_secret())
            .query(&[("user_ids", composio_user), ("toolkit_slugs", &toolkits.join(",")), ("limit", "100")])
            .send()
            .await
            .map_err(|error| format!("failed to reach Composio: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("Composio answered HTTP {} to the account listing", status.as_u16()));
        }
        let body: Value = response.json().await.map_err(|error| format!("invalid account listing from Composio: {error}"))?;
        let mut states: HashMap<String, ConnectionState> = HashMap::new();
        for account in body["items"].as_array().into_iter().flatten() {
            let Some(toolkit) = account["toolkit"]["slug"].as_str() else { continue };
            let state = ConnectionState::from_composio_status(account["status"].as_str().unwrap_or_default());
            let best = states.entry(toolkit.to_lowercase()).or_insert(state);
            if state.rank() > best.rank() {
                *best = state;
            }
        }
        Ok(states)
    }
}
