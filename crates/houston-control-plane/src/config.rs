//! The typed configuration of `houston serve`: a TOML file overlaid with `HOUSTON_…`
//! environment variables.
//!
//! Reading never stops at the first problem: every invalid or unknown key is collected and
//! reported at once in [`ConfigError`], so an operator fixes a file in one pass. Nested keys
//! map to environment variables with `__` between levels, for example `identity.audience` is
//! `HOUSTON_IDENTITY__AUDIENCE`. Variables whose first level is not a key of this config (such
//! as `HOUSTON_HOME`) belong to other commands and are ignored.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use toml::{Table, Value};

mod runtime;

pub use runtime::RuntimeConfig;

use crate::auth::IdentityConfig;
use crate::auth::config::{BuiltinIssuerConfig, DEFAULT_OIDC_SCOPES, ExternalIssuerConfig, OidcSignInConfig, TokenAlgorithm};

/// Top-level keys; an environment variable is applied only when its first level is one.
const TOP_LEVEL_KEYS: &[&str] =
    &["listen", "database_url", "database_max_connections", "redis_url", "trusted_proxies", "outbox_dir", "identity", "limits", "runtime"];

/// Every problem found in a configuration, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Request limits, per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Failed logins per email address.
    pub login_per_email_per_minute: u32,
    /// Failed logins per client address.
    pub login_per_ip_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { login_per_email_per_minute: 10, login_per_ip_per_minute: 60 }
    }
}

/// The configuration of `houston serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// `postgres://…` (or `sqlite:PATH` for a single replica). Secret: may carry a password.
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// `redis://…`; without it the caches and rate limits are in process (one replica only).
    pub redis_url: Option<SecretString>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Folder of the audit and usage spool files; `None` keeps those queues in memory only.
    pub outbox_dir: Option<std::path::PathBuf>,
    pub identity: IdentityConfig,
    pub limits: LimitsConfig,
    /// Agent runtimes for the chat routes.
    pub runtime: RuntimeConfig,
}

impl ServeConfig {
    /// Reads the optional TOML file at `path`, then applies the environment.
    ///
    /// # Errors
    /// [`ConfigError`] listing every unreadable, invalid or unknown key.
    pub fn load(path: Option<&std::path::Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| ConfigError { problems: vec![format!("{}: cannot be read: {error}", path.display())] })?;
                text.parse::<Table>()
                    .map_err(|error| ConfigError { problems: vec![format!("{}: invalid TOML: {error}", path.display())] })?
            }
            None => Table::new(),
        };
        apply_env(&mut table, env);
        Self::from_table(table)
    }

    /// Builds the configuration from a parsed table.
    ///
    /// # Errors
    /// [`ConfigError`] listing every invalid or unknown key.
    pub fn from_table(mut table: Table) -> Result<Self, ConfigError> {
        let mut reader = Reader::default();
        let listen = reader.parse(&mut table, "", "listen").unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080)));
        let database_url = reader.string(&mut table, "", "database_url");
        if database_url.is_none() {
            reader.problem("database_url", "is missing: set it in the file or in HOUSTON_DATABASE_URL");
        }
        let database_max_connections = reader.parse(&mut table, "", "database_max_connections").unwrap_or(10);
        let redis_url = reader.string(&mut table, "", "redis_url").map(SecretString::from);
        let trusted_proxies = reader.string_list(&mut table, "", "trusted_proxies").unwrap_or_default();
        if let Err(error) = houston_cache::client_ip::TrustedProxies::parse(&trusted_proxies) {
            reader.problem("trusted_proxies", &error.to_string());
        }
        let outbox_dir = reader.string(&mut table, "", "outbox_dir").map(std::path::PathBuf::from);
        let identity = read_identity(&mut reader, &mut table);
        let limits = read_limits(&mut reader, &mut table);
        let runtime = runtime::read_runtime(&mut reader, &mut table);
        reader.unknown_keys(table, "");
        reader.finish()?;
        Ok(Self {
            listen,
            database_url: SecretString::from(database_url.unwrap_or_default()),
            database_max_connections,
            redis_url,
            trusted_proxies,
            outbox_dir,
            identity,
            limits,
            runtime,
        })
    }

    /// Returns the effective configuration with secrets replaced, for the start-up log.
    #[must_use]
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.listen.to_string(),
            "database_url": redact_url(self.database_url.expose_secret()),
            "database_max_connections": self.database_max_connections,
            "redis_url": self.redis_url.as_ref().map(|url| redact_url(url.expose_secret())),
            "trusted_proxies": self.trusted_proxies,
            "outbox_dir": self.outbox_dir.as_ref().map(|dir| dir.display().to_string()),
            "identity": self.identity.redacted(),
            "limits": {
                "login_per_email_per_minute": self.limits.login_per_email_per_minute,
                "login_per_ip_per_minute": self.limits.login_per_ip_per_minute,
            },
            "runtime": self.runtime.summary(),
        })
    }
}

fn read_identity(reader: &mut Reader, table: &mut Table) -> IdentityConfig {
    let mut identity = IdentityConfig::default();
    let Some(mut section) = reader.table(table, "", "identity") else {
        return identity;
    };
    let prefix = "identity.";
    if let Some(audience) = reader.string(&mut section, prefix, "audience") {
        identity.audience = audience;
    }
    if let Some(leeway) = reader.duration(&mut section, prefix, "leeway") {
        identity.leeway = leeway;
    }
    let builtin_enabled = reader.parse::<bool>(&mut section, prefix, "builtin_issuer").unwrap_or(true);
    let mut builtin = BuiltinIssuerConfig::default();
    if let Some(issuer) = reader.string(&mut section, prefix, "issuer") {
        builtin.issuer = issuer;
    }
    if let Some(ttl) = reader.duration(&mut section, prefix, "access_token_ttl") {
        builtin.access_token_ttl = ttl;
    }
    if let Some(ttl) = reader.duration(&mut section, prefix, "refresh_token_ttl") {
        builtin.refresh_token_ttl = ttl;
    }
    identity.builtin = builtin_enabled.then_some(builtin);
    if let Some(external) = section.remove("external") {
        identity.external = read_external_issuers(reader, external);
    }
    if let Some(mut oidc) = reader.table(&mut section, prefix, "oidc") {
        identity.oidc = read_oidc_sign_in(reader, &mut oidc, &identity.external);
        reader.unknown_keys(oidc, "identity.oidc.");
    }
    reader.unknown_keys(section, prefix);
    identity
}

/// Reads `[identity.oidc]`, the browser sign-in with one of the external issuers.
fn read_oidc_sign_in(reader: &mut Reader, table: &mut Table, external: &[ExternalIssuerConfig]) -> Option<OidcSignInConfig> {
    let prefix = "identity.oidc.";
    let problems_before = reader.problems.len();
    let mut required = |reader: &mut Reader, key: &str| {
        let value = reader.string(table, prefix, key);
        if value.is_none() {
            reader.problem(&format!("{prefix}{key}"), "is missing");
        }
        value.unwrap_or_default()
    };
    let display_name = required(reader, "display_name");
    let issuer = required(reader, "issuer");
    let client_id = required(reader, "client_id");
    let authorization_endpoint = required(reader, "authorization_endpoint");
    let token_endpoint = required(reader, "token_endpoint");
    let scopes = reader
        .string_list(table, prefix, "scopes")
        .unwrap_or_else(|| DEFAULT_OIDC_SCOPES.iter().map(|scope| (*scope).to_owned()).collect());
    if reader.problems.len() > problems_before {
        return None;
    }
    let config = OidcSignInConfig { display_name, issuer, client_id, authorization_endpoint, token_endpoint, scopes };
    let accepted: Vec<&str> = external.iter().map(|issuer| issuer.issuer.as_str()).collect();
    let problems = config.problems(&accepted);
    for (field, reason) in &problems {
        reader.problem(&format!("{prefix}{field}"), reason);
    }
    problems.is_empty().then_some(config)
}

fn read_external_issuers(reader: &mut Reader, value: Value) -> Vec<ExternalIssuerConfig> {
    let Value::Array(entries) = value else {
        reader.problem("identity.external", "must be an array of tables ([[identity.external]])");
        return Vec::new();
    };
    let mut issuers = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let prefix = format!("identity.external[{index}].");
        let Value::Table(mut table) = entry else {
            reader.problem(&prefix, "must be a table");
            continue;
        };
        let issuer = reader.string(&mut table, &prefix, "issuer");
        let audience = reader.string(&mut table, &prefix, "audience");
        let algorithms = reader.string_list(&mut table, &prefix, "algorithms").unwrap_or_else(|| vec!["ES256".to_owned()]);
        let jwks_url = reader.string(&mut table, &prefix, "jwks_url");
        let hs256_secret = reader.string(&mut table, &prefix, "hs256_secret").map(SecretString::from);
        let cooldown = reader.duration(&mut table, &prefix, "jwks_refetch_cooldown");
        let max_age = reader.duration(&mut table, &prefix, "jwks_max_age");
        reader.unknown_keys(table, &prefix);

        let mut parsed_algorithms = Vec::new();
        for name in &algorithms {
            match TokenAlgorithm::parse(name) {
                Some(algorithm) => parsed_algorithms.push(algorithm),
                None => reader.problem(&format!("{prefix}algorithms"), &format!("{name:?} is not one of ES256, EdDSA, RS256, HS256")),
            }
        }
        let Some(issuer) = issuer else {
            reader.problem(&format!("{prefix}issuer"), "is missing");
            continue;
        };
        let mut config = ExternalIssuerConfig::new(issuer, parsed_algorithms);
        config.audience = audience;
        config.jwks_url = jwks_url;
        config.hs256_secret = hs256_secret;
        if let Some(cooldown) = cooldown {
            config.jwks_refetch_cooldown = cooldown;
        }
        if let Some(max_age) = max_age {
            config.jwks_max_age = max_age;
        }
        if let Err(reason) = config.validate() {
            reader.problem(&prefix[..prefix.len() - 1], &reason);
        }
        issuers.push(config);
    }
    issuers
}

fn read_limits(reader: &mut Reader, table: &mut Table) -> LimitsConfig {
    let mut limits = LimitsConfig::default();
    let Some(mut section) = reader.table(table, "", "limits") else {
        return limits;
    };
    if let Some(value) = reader.parse(&mut section, "limits.", "login_per_email_per_minute") {
        limits.login_per_email_per_minute = value;
    }
    if let Some(value) = reader.parse(&mut section, "limits.", "login_per_ip_per_minute") {
        limits.login_per_ip_per_minute = value;
    }
    reader.unknown_keys(section, "limits.");
    limits
}

/// Copies `HOUSTON_A__B=value` into `table` as `a.b = "value"`.
fn apply_env(table: &mut Table, env: impl IntoIterator<Item = (String, String)>) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("HOUSTON_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
            continue;
        }
        let mut current = &mut *table;
        for segment in &path[..path.len() - 1] {
            let entry = current.entry(segment.clone()).or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            let Value::Table(next) = entry else { unreachable!("replaced by a table above") };
            current = next;
        }
        current.insert(path[path.len() - 1].clone(), Value::String(value));
    }
}

/// Hides the password of a URL (`postgres://user:secret@host` becomes
/// `postgres://user:[redacted]@host`).
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

/// Reads typed values out of tables, collecting every problem.
#[derive(Default)]
struct Reader {
    problems: Vec<String>,
}

impl Reader {
    fn problem(&mut self, key: &str, reason: &str) {
        self.problems.push(format!("{key}: {reason}"));
    }

    fn string(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<String> {
        match table.remove(key)? {
            Value::String(value) => Some(value),
            other => {
                self.problem(&format!("{prefix}{key}"), &format!("must be a string, got {}", other.type_str()));
                None
            }
        }
    }

    /// Reads a scalar from a TOML value of the right type or from a string (the form every
    /// environment variable has).
    fn parse<T: std::str::FromStr>(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        let text = match table.remove(key)? {
            Value::String(value) => value,
            Value::Integer(value) => value.to_string(),
            Value::Boolean(value) => value.to_string(),
            other => {
                self.problem(&format!("{prefix}{key}"), &format!("has the wrong type {}", other.type_str()));
                return None;
            }
        };
        match text.trim().parse() {
            Ok(value) => Some(value),
            Err(error) => {
                self.problem(&format!("{prefix}{key}"), &format!("invalid value {text:?}: {error}"));
                None
            }
        }
    }

    fn duration(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<Duration> {
        let text = match table.remove(key)? {
            Value::String(value) => value,
            Value::Integer(value) => format!("{value}s"),
            other => {
                self.problem(&format!("{prefix}{key}"), &format!("must be a duration such as \"30s\", got {}", other.type_str()));
                return None;
            }
        };
        match parse_duration(&text) {
            Some(duration) => Some(duration),
            None => {
                self.problem(&format!("{prefix}{key}"), &format!("invalid duration {text:?}: use a number with ms, s, m, h or d"));
                None
            }
        }
    }

    /// Reads a list from a TOML array of strings or from a comma-separated string.
    fn string_list(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<Vec<String>> {
        match table.remove(key)? {
            Value::String(value) => Some(value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()),
            Value::Array(items) => {
                let mut list = Vec::new();
                for item in items {
                    match item {
                        Value::String(value) => list.push(value),
                        other => self.problem(&format!("{prefix}{key}"), &format!("items must be strings, got {}", other.type_str())),
                    }
                }
                Some(list)
            }
            other => {
                self.problem(&format!("{prefix}{key}"), &format!("must be a list of strings, got {}", other.type_str()));
                None
            }
        }
    }

    fn table(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<Table> {
        match table.remove(key)? {
            Value::Table(section) => Some(section),
            other => {
                self.problem(&format!("{prefix}{key}"), &format!("must be a table, got {}", other.type_str()));
                None
            }
        }
    }

    fn unknown_keys(&mut self, table: Table, prefix: &str) {
        for key in table.keys() {
            self.problem(&format!("{prefix}{key}"), "unknown key");
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }
}

/// Parses `250ms`, `30s`, `15m`, `2h` or `30d`.
#[must_use]
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|character: char| !character.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => return Some(Duration::from_millis(number)),
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<ServeConfig, ConfigError> {
        let mut table: Table = text.parse().unwrap();
        apply_env(&mut table, env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        ServeConfig::from_table(table)
    }

    #[test]
    fn minimal_config_uses_defaults() {
        let config = load("database_url = \"postgres://u:pw@db/houston\"", &[]).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.identity.leeway, Duration::from_secs(30));
        assert!(config.identity.builtin.is_some());
    }

    #[test]
    fn runtime_section_read_from_file_and_env() {
        let text = "database_url = \"postgres://db/houston\"\n[runtime]\nbackend = \"process\"\nidle_timeout = \"30s\"\n";
        let env = [("HOUSTON_RUNTIME__HOME", "/srv/houston"), ("HOUSTON_RUNTIME__MODEL", "claude-test")];
        let config = load(text, &env).unwrap();
        assert_eq!(config.runtime.backend, houston_runtime::BackendKind::Process);
        assert_eq!(config.runtime.home, std::path::PathBuf::from("/srv/houston"));
        assert_eq!(config.runtime.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.runtime.model.as_deref(), Some("claude-test"));
        assert_eq!(config.runtime.chat_per_user_per_minute, 60);
    }

    #[test]
    fn runtime_defaults_to_namespace() {
        let config = load("database_url = \"postgres://db/houston\"", &[]).unwrap();
        assert_eq!(config.runtime.backend, houston_runtime::BackendKind::Namespace);
        assert_eq!(config.runtime.idle_timeout, None);
    }

    #[test]
    fn runtime_backends_missing_from_build_rejected() {
        for backend in ["kubernetes", "gvisor", "microvm"] {
            let text = format!("database_url = \"postgres://db/houston\"\n[runtime]\nbackend = \"{backend}\"\n");
            let error = load(&text, &[]).unwrap_err();
            let expected = format!("runtime.backend: the {backend} runtime backend is not available in this build");
            assert!(error.to_string().contains(&expected), "{error}");
        }
    }

    #[test]
    fn runtime_bad_keys_reported() {
        let text = r#"
            database_url = "postgres://db/houston"
            [runtime]
            backend = "docker"
            idle_timeout = "0s"
            anthropic_api_key = "sk-ant-secret"
            anthropic_base_url = "api.anthropic.com"
            colour = "blue"
        "#;
        let error = load(text, &[]).unwrap_err().to_string();
        for expected in [
            "runtime.backend: invalid value \"docker\"",
            "runtime.idle_timeout: must be at least 1s",
            "runtime.anthropic_api_key: keys are not read from the configuration: set ANTHROPIC_API_KEY",
            "runtime.anthropic_base_url: invalid URL",
            "runtime.colour: unknown key",
        ] {
            assert!(error.contains(expected), "{expected:?} missing from:\n{error}");
        }
        assert!(!error.contains("sk-ant-secret"), "the key leaked into the error:\n{error}");
    }

    #[test]
    fn every_bad_key_reported_at_once() {
        let text = r#"
            listen = "not an address"
            database_max_connections = "many"
            colour = "blue"
            [identity]
            leeway = "soon"
            audiense = "typo"
            [[identity.external]]
            issuer = "https://issuer.example"
            algorithms = ["ES256", "none"]
        "#;
        let error = load(text, &[]).unwrap_err();
        let joined = error.problems.join("\n");
        for expected in [
            "listen: invalid value",
            "database_url: is missing",
            "database_max_connections: invalid value",
            "colour: unknown key",
            "identity.leeway: invalid duration",
            "identity.audiense: unknown key",
            "identity.external[0].algorithms: \"none\" is not one of",
            "identity.external[0]: needs jwks_url",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
        }
        assert_eq!(error.problems.len(), 8, "{joined}");
    }

    #[test]
    fn environment_overrides_file() {
        let env = [
            ("HOUSTON_DATABASE_URL", "postgres://db/x"),
            ("HOUSTON_IDENTITY__LEEWAY", "5s"),
            ("HOUSTON_HOME", "/ignored"),
            ("HOUSTON_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ];
        let config = load("database_url = \"postgres://file/x\"", &env).unwrap();
        assert_eq!(config.database_url.expose_secret(), "postgres://db/x");
        assert_eq!(config.identity.leeway, Duration::from_secs(5));
        assert_eq!(config.trusted_proxies, ["10.0.0.0/8", "127.0.0.1"]);
    }

    #[test]
    fn unknown_environment_key_rejected() {
        let error = load("database_url = \"postgres://db/x\"", &[("HOUSTON_IDENTITY__AUDIENSE", "x")]).unwrap_err();
        assert_eq!(error.problems, ["identity.audiense: unknown key"]);
    }

    #[test]
    fn hs256_needs_secret() {
        let text = r#"
            database_url = "postgres://db/x"
            [[identity.external]]
            issuer = "https://a.example"
            algorithms = ["HS256"]
        "#;
        let error = load(text, &[]).unwrap_err();
        assert!(error.problems[0].contains("HS256 needs hs256_secret"), "{:?}", error.problems);
    }

    #[test]
    fn redacted_config_hides_secrets() {
        let text = r#"
            database_url = "postgres://houston:db-password@db/x"
            redis_url = "redis://:redis-password@cache:6379"
            [[identity.external]]
            issuer = "https://a.example"
            algorithms = ["HS256"]
            hs256_secret = "shared-secret-value"
        "#;
        let config = load(text, &[]).unwrap();
        let shown = config.redacted().to_string();
        for secret in ["db-password", "redis-password", "shared-secret-value"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("postgres://houston:[redacted]@db/x"), "{shown}");
    }

    const OIDC_ISSUER: &str = r#"
            database_url = "postgres://db/x"
            [[identity.external]]
            issuer = "https://sso.acme.test"
            jwks_url = "https://sso.acme.test/jwks"
        "#;

    #[test]
    fn oidc_sign_in_read_with_default_scopes() {
        let text = format!(
            r#"{OIDC_ISSUER}
            [identity.oidc]
            display_name = "Acme SSO"
            issuer = "https://sso.acme.test"
            client_id = "houston-web"
            authorization_endpoint = "https://sso.acme.test/authorize"
            token_endpoint = "http://127.0.0.1:9000/token"
        "#
        );
        let config = load(&text, &[]).unwrap();
        let oidc = config.identity.oidc.expect("identity.oidc was not read");
        assert_eq!(oidc.display_name, "Acme SSO");
        assert_eq!(oidc.client_id, "houston-web");
        assert_eq!(oidc.token_endpoint, "http://127.0.0.1:9000/token");
        assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
    }

    #[test]
    fn oidc_sign_in_problems_listed() {
        let text = format!(
            r#"{OIDC_ISSUER}
            [identity.oidc]
            display_name = " "
            issuer = "https://other.test"
            client_id = "houston-web"
            authorization_endpoint = "http://sso.acme.test/authorize"
            token_endpoint = "not a url"
            scopes = ["email"]
            colour = "blue"
        "#
        );
        let error = load(&text, &[]).unwrap_err();
        let joined = error.problems.join("\n");
        for expected in [
            "identity.oidc.display_name: is empty",
            "identity.oidc.issuer: \"https://other.test\" is not the issuer of any [[identity.external]]",
            "identity.oidc.authorization_endpoint: \"http://sso.acme.test/authorize\" must be an https:// URL",
            "identity.oidc.token_endpoint: invalid URL",
            "identity.oidc.scopes: must include \"openid\"",
            "identity.oidc.colour: unknown key",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
        }
        assert_eq!(error.problems.len(), 6, "{joined}");
    }

    #[test]
    fn oidc_sign_in_missing_keys_named() {
        let text = format!("{OIDC_ISSUER}\n[identity.oidc]\nissuer = \"https://sso.acme.test\"\n");
        let error = load(&text, &[]).unwrap_err();
        assert_eq!(
            error.problems,
            [
                "identity.oidc.display_name: is missing",
                "identity.oidc.client_id: is missing",
                "identity.oidc.authorization_endpoint: is missing",
                "identity.oidc.token_endpoint: is missing",
            ]
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
