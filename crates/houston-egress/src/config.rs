//! Operator configuration: the trusted upstreams with their credentials, and the egress log.

use std::path::PathBuf;
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::target::Origin;

/// Default Anthropic API base URL.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Default OpenAI API base URL.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com";
/// Default Composio API base URL.
pub const COMPOSIO_DEFAULT_BASE_URL: &str = "https://backend.composio.dev";
/// Default time allowed for opening a TCP connection to an upstream.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default maximum of simultaneous connections (open tunnels included) of one agent.
pub const DEFAULT_MAX_CONNECTIONS_PER_AGENT: usize = 256;

/// Invalid egress configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid egress configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The header that carries an upstream's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHeader {
    /// `x-api-key: <key>`, as Anthropic and Composio expect.
    XApiKey,
    /// `Authorization: Bearer <key>`, as OpenAI-compatible servers expect.
    Bearer,
}

impl CredentialHeader {
    /// Returns the header name and its value, marked sensitive so hyper never logs it.
    pub(crate) fn header(self, credential: &SecretString) -> Option<(HeaderName, HeaderValue)> {
        let (name, text) = match self {
            Self::XApiKey => (
                HeaderName::from_static("x-api-key"),
                credential.expose_secret().to_owned(),
            ),
            Self::Bearer => (
                AUTHORIZATION,
                format!("Bearer {}", credential.expose_secret()),
            ),
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }
}

/// An operator-configured upstream that receives a credential on the way out.
///
/// Only the exact origin (scheme, host and port) of `base_url` is trusted; its path is
/// ignored. A trusted upstream skips the address check, so it may live on loopback or a
/// private network, which is normal for a self-hosted model server or a test stand-in.
#[derive(Debug, Clone)]
pub struct TrustedUpstream {
    /// A short name for logs, for example `anthropic`.
    pub name: String,
    /// The origin requests must match exactly.
    pub origin: Origin,
    /// The credential added to every request to this origin.
    pub credential: SecretString,
    /// The header the credential is sent in.
    pub credential_header: CredentialHeader,
}

impl TrustedUpstream {
    /// Creates a trusted upstream from its base URL.
    ///
    /// # Errors
    /// Returns [`ConfigError`] when `base_url` is not an absolute http or https URL, carries
    /// user information or a query, or when the credential is empty or not a valid header
    /// value.
    pub fn new(
        name: &str,
        base_url: &str,
        credential_header: CredentialHeader,
        credential: SecretString,
    ) -> Result<Self, ConfigError> {
        let invalid =
            |reason: String| ConfigError::Invalid(vec![format!("upstream {name}: {reason}")]);
        let uri: hyper::Uri = base_url
            .parse()
            .map_err(|error| invalid(format!("base URL {base_url:?} is invalid: {error}")))?;
        if uri.query().is_some() {
            return Err(invalid(format!(
                "base URL {base_url:?} must not have a query"
            )));
        }
        let origin = Origin::from_uri(&uri).map_err(|error| invalid(error.to_string()))?;
        if credential.expose_secret().trim().is_empty() {
            return Err(invalid("the credential is empty".to_owned()));
        }
        if credential_header.header(&credential).is_none() {
            return Err(invalid(
                "the credential contains bytes not allowed in a header".to_owned(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            origin,
            credential,
            credential_header,
        })
    }

    /// Creates the Anthropic Messages API upstream (`x-api-key`).
    ///
    /// # Errors
    /// See [`TrustedUpstream::new`].
    pub fn anthropic(base_url: &str, api_key: SecretString) -> Result<Self, ConfigError> {
        Self::new("anthropic", base_url, CredentialHeader::XApiKey, api_key)
    }

    /// Creates an OpenAI-compatible upstream (`Authorization: Bearer`).
    ///
    /// # Errors
    /// See [`TrustedUpstream::new`].
    pub fn openai(base_url: &str, api_key: SecretString) -> Result<Self, ConfigError> {
        Self::new("openai", base_url, CredentialHeader::Bearer, api_key)
    }

    /// Creates the Composio tool broker upstream (`x-api-key`).
    ///
    /// # Errors
    /// See [`TrustedUpstream::new`].
    pub fn composio(base_url: &str, api_key: SecretString) -> Result<Self, ConfigError> {
        Self::new("composio", base_url, CredentialHeader::XApiKey, api_key)
    }
}

/// Everything the egress proxy needs from the operator.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Upstreams that receive a credential; no two share an origin.
    pub upstreams: Vec<TrustedUpstream>,
    /// JSONL file the egress log is appended to.
    pub log_path: PathBuf,
    /// Time allowed for opening a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Maximum simultaneous connections of one agent; an open tunnel keeps the place of the
    /// connection that opened it. Connections beyond it are closed on accept.
    pub max_connections_per_agent: usize,
}

impl EgressConfig {
    /// Creates a configuration with the default connect timeout.
    ///
    /// # Errors
    /// Returns [`ConfigError`] when two upstreams share an origin.
    pub fn new(upstreams: Vec<TrustedUpstream>, log_path: PathBuf) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        for (index, upstream) in upstreams.iter().enumerate() {
            if let Some(earlier) = upstreams[..index]
                .iter()
                .find(|u| u.origin == upstream.origin)
            {
                errors.push(format!(
                    "upstreams {} and {} have the same origin {}",
                    earlier.name, upstream.name, upstream.origin
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(Self {
            upstreams,
            log_path,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_connections_per_agent: DEFAULT_MAX_CONNECTIONS_PER_AGENT,
        })
    }

    /// Reads the trusted upstreams from environment variables: `ANTHROPIC_API_KEY` with
    /// `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY` with `OPENAI_BASE_URL`, and `COMPOSIO_API_KEY`
    /// with `COMPOSIO_BASE_URL`. An upstream is configured only when its key is set; a
    /// missing base URL means the provider's public one. `HOUSTON_EGRESS_LOG` overrides
    /// `default_log_path`.
    ///
    /// # Errors
    /// Returns [`ConfigError`] listing every invalid variable at once.
    pub fn from_env(default_log_path: PathBuf) -> Result<Self, ConfigError> {
        Self::from_lookup(default_log_path, |name| std::env::var(name).ok())
    }

    /// Like [`EgressConfig::from_env`], with variables looked up through `lookup`.
    ///
    /// # Errors
    /// Returns [`ConfigError`] listing every invalid variable at once.
    pub fn from_lookup(
        default_log_path: PathBuf,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        type Constructor = fn(&str, SecretString) -> Result<TrustedUpstream, ConfigError>;
        let providers: [(&str, &str, &str, Constructor); 3] = [
            (
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                ANTHROPIC_DEFAULT_BASE_URL,
                TrustedUpstream::anthropic,
            ),
            (
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                OPENAI_DEFAULT_BASE_URL,
                TrustedUpstream::openai,
            ),
            (
                "COMPOSIO_API_KEY",
                "COMPOSIO_BASE_URL",
                COMPOSIO_DEFAULT_BASE_URL,
                TrustedUpstream::composio,
            ),
        ];
        let mut upstreams = Vec::new();
        let mut errors = Vec::new();
        for (key_var, url_var, default_url, constructor) in providers {
            let Some(key) = lookup(key_var).filter(|key| !key.is_empty()) else {
                continue;
            };
            let base_url = lookup(url_var).unwrap_or_else(|| default_url.to_owned());
            match constructor(&base_url, SecretString::from(key)) {
                Ok(upstream) => upstreams.push(upstream),
                Err(ConfigError::Invalid(reasons)) => {
                    errors.extend(reasons.into_iter().map(|r| format!("{url_var}: {r}")));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        let log_path = lookup("HOUSTON_EGRESS_LOG").map_or(default_log_path, PathBuf::from);
        Self::new(upstreams, log_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_from(vars: &[(&str, &str)]) -> Result<EgressConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EgressConfig::from_lookup(PathBuf::from("egress.jsonl"), |name| {
            vars.get(name).cloned()
        })
    }

    #[test]
    fn from_env_uses_default_base_urls() {
        let config = config_from(&[("ANTHROPIC_API_KEY", "sk-ant-test")]).expect("valid");
        assert_eq!(config.upstreams.len(), 1);
        assert_eq!(
            config.upstreams[0].origin.to_string(),
            "https://api.anthropic.com:443"
        );
        assert_eq!(
            config.upstreams[0].credential_header,
            CredentialHeader::XApiKey
        );
    }

    #[test]
    fn from_env_reads_every_provider() {
        let config = config_from(&[
            ("ANTHROPIC_API_KEY", "a"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:4010"),
            ("OPENAI_API_KEY", "o"),
            ("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1"),
            ("COMPOSIO_API_KEY", "c"),
            ("HOUSTON_EGRESS_LOG", "/var/log/egress.jsonl"),
        ])
        .expect("valid");
        let origins: Vec<String> = config
            .upstreams
            .iter()
            .map(|u| u.origin.to_string())
            .collect();
        assert_eq!(
            origins,
            [
                "http://127.0.0.1:4010",
                "http://10.0.0.5:8000",
                "https://backend.composio.dev:443"
            ]
        );
        assert_eq!(
            config.upstreams[1].credential_header,
            CredentialHeader::Bearer
        );
        assert_eq!(config.log_path, PathBuf::from("/var/log/egress.jsonl"));
    }

    #[test]
    fn from_env_lists_every_invalid_url() {
        let Err(ConfigError::Invalid(errors)) = config_from(&[
            ("ANTHROPIC_API_KEY", "a"),
            ("ANTHROPIC_BASE_URL", "ftp://x"),
            ("OPENAI_API_KEY", "o"),
            ("OPENAI_BASE_URL", "http://h/?token=1"),
        ]) else {
            panic!("invalid URLs must be rejected");
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("ANTHROPIC_BASE_URL"), "{errors:?}");
        assert!(errors[1].starts_with("OPENAI_BASE_URL"), "{errors:?}");
    }

    #[test]
    fn new_rejects_duplicate_origins() {
        let key = || SecretString::from("k");
        let first = TrustedUpstream::anthropic("http://127.0.0.1:1", key()).expect("valid");
        let second = TrustedUpstream::composio("http://127.0.0.1:1/api", key()).expect("valid");
        assert!(EgressConfig::new(vec![first, second], PathBuf::from("x")).is_err());
    }

    #[test]
    fn credential_header_is_sensitive() {
        let (name, value) = CredentialHeader::Bearer
            .header(&SecretString::from("sk"))
            .expect("valid header");
        assert_eq!(name, AUTHORIZATION);
        assert!(value.is_sensitive());
        assert_eq!(value, "Bearer sk");
    }
}
