//! Request targets: scheme, normalized host and port, parsed from a proxy request's URI.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hyper::Uri;

/// Maximum length of a DNS name, in bytes (RFC 1035).
const MAX_HOST_LEN: usize = 253;
/// Maximum length of one DNS label, in bytes (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// An invalid host or request target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request URI must be in absolute form (scheme://host/path), got {0:?}")]
    NotAbsolute(String),
    #[error("unsupported scheme {0:?}: only http and https are proxied, use CONNECT otherwise")]
    UnsupportedScheme(String),
    #[error("the URI must not contain user information (user:password@)")]
    UserInfo,
    #[error("CONNECT needs a host:port target, got {0:?}")]
    BadConnectTarget(String),
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost { host: String, reason: &'static str },
}

/// The two schemes the proxy forwards as HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// Returns the scheme's default port.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Returns the scheme as written in a URI.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Scheme, host and port: what identifies a trusted upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    /// Normalized host (see [`normalize_host`]).
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses the origin of an absolute `http` or `https` URI.
    ///
    /// # Errors
    /// Returns [`TargetError`] when the URI is not absolute, has another scheme, carries user
    /// information or has an invalid host.
    pub fn from_uri(uri: &Uri) -> Result<Self, TargetError> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(TargetError::NotAbsolute(uri.to_string()));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(TargetError::UnsupportedScheme(other.to_owned())),
        };
        if authority.as_str().contains('@') {
            return Err(TargetError::UserInfo);
        }
        let host = normalize_host(authority.host())?;
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        Ok(Self { scheme, host, port })
    }

    /// Returns the host as written in a URI authority: IPv6 literals get brackets.
    #[must_use]
    pub fn uri_host(&self) -> String {
        uri_host(&self.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            self.scheme.as_str(),
            self.uri_host(),
            self.port
        )
    }
}

/// Parses the `host:port` target of a CONNECT request.
///
/// # Errors
/// Returns [`TargetError`] when the port is missing or the host is invalid.
pub fn parse_connect_target(uri: &Uri) -> Result<(String, u16), TargetError> {
    let bad = || TargetError::BadConnectTarget(uri.to_string());
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') {
        return Err(TargetError::UserInfo);
    }
    let port = authority.port_u16().ok_or_else(bad)?;
    Ok((normalize_host(authority.host())?, port))
}

/// Normalizes a host so that one host has one spelling: IP literals in canonical form without
/// brackets, names in lowercase without a trailing dot.
///
/// # Errors
/// Returns [`TargetError::InvalidHost`] for an empty host, a bad IPv6 literal, or a name with
/// characters or lengths that DNS does not allow.
pub fn normalize_host(raw: &str) -> Result<String, TargetError> {
    let invalid = |reason| TargetError::InvalidHost {
        host: raw.to_owned(),
        reason,
    };
    if let Some(inner) = raw
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| invalid("not a valid IPv6 literal"))?;
        return Ok(ip.to_string());
    }
    if let Ok(ip) = raw.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    if let Ok(ip) = raw.parse::<Ipv6Addr>() {
        return Ok(ip.to_string());
    }
    let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(invalid("longer than 253 bytes"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(invalid(
                "each dot-separated label must be 1 to 63 bytes long",
            ));
        }
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if !label.bytes().all(valid) {
            return Err(invalid(
                "may contain only letters, digits, '-', '_' and '.'",
            ));
        }
    }
    Ok(name)
}

/// Returns the IP address a normalized host spells, if it is an IP literal.
#[must_use]
pub fn host_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

/// Returns a normalized host as written in a URI authority: IPv6 literals get brackets.
#[must_use]
pub fn uri_host(host: &str) -> String {
    match host_ip(host) {
        Some(IpAddr::V6(_)) => format!("[{host}]"),
        _ => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Result<Origin, TargetError> {
        Origin::from_uri(&text.parse::<Uri>().expect("test URI parses"))
    }

    #[test]
    fn origin_applies_default_ports() {
        let https = origin("https://API.Anthropic.com./v1/messages?x=1").expect("valid");
        assert_eq!(https.host, "api.anthropic.com");
        assert_eq!(https.port, 443);
        assert_eq!(origin("http://example.com/").expect("valid").port, 80);
    }

    #[test]
    fn origin_normalizes_ip_literals() {
        let mapped = origin("http://[::FFFF:127.0.0.1]:4010/").expect("valid");
        assert_eq!(mapped.host, "::ffff:127.0.0.1");
        assert_eq!(mapped.to_string(), "http://[::ffff:127.0.0.1]:4010");
    }

    #[test]
    fn origin_rejects_bad_uris() {
        assert!(matches!(
            origin("/v1/messages"),
            Err(TargetError::NotAbsolute(_))
        ));
        assert!(matches!(
            origin("ftp://example.com/"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert_eq!(
            origin("http://user:pw@example.com/"),
            Err(TargetError::UserInfo)
        );
    }

    #[test]
    fn connect_target_needs_port() {
        let uri: Uri = "example.com:443".parse().expect("parses");
        assert_eq!(
            parse_connect_target(&uri),
            Ok(("example.com".to_owned(), 443))
        );
        let uri: Uri = "example.com".parse().expect("parses");
        assert!(parse_connect_target(&uri).is_err());
    }

    proptest::proptest! {
        #[test]
        fn normalize_host_is_idempotent(raw in "\\PC{0,40}") {
            if let Ok(host) = normalize_host(&raw) {
                proptest::prop_assert_eq!(normalize_host(&host), Ok(host.clone()));
                proptest::prop_assert!(!host.contains(['/', '@', ' ', '[', '%']));
            }
        }
    }

    #[test]
    fn normalize_host_rejects_bad_names() {
        for bad in [
            "",
            ".",
            "a..b",
            "exa mple.com",
            "a/b",
            "[not-ip]",
            &"a".repeat(64),
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?} must be rejected");
        }
    }
}
