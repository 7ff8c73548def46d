//! Engine listen addresses: `unix:PATH` or `tcp:HOST:PORT`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// An engine's listen address, in the notation used by `houston engine --listen` and by its
/// readiness line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EngineEndpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// Parse error of an endpoint string, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {value:?}: {reason}")]
pub struct EndpointError {
    pub value: String,
    pub reason: &'static str,
}

impl FromStr for EngineEndpoint {
    type Err = EndpointError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let error = |reason| EndpointError { value: value.to_owned(), reason };
        if let Some(path) = value.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(error("the unix socket path is empty"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(address) = value.strip_prefix("tcp:") {
            let Some((host, port)) = address.rsplit_once(':') else {
                return Err(error("expected tcp:HOST:PORT"));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(error("expected tcp:HOST:PORT with a port from 0 to 65535"));
            }
            return Ok(Self::Tcp(address.to_owned()));
        }
        Err(error("expected unix:PATH or tcp:HOST:PORT"))
    }
}

impl fmt::Display for EngineEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(address) => write!(f, "tcp:{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            "unix:/run/a.sock".parse::<EngineEndpoint>().unwrap(),
            EngineEndpoint::Unix("/run/a.sock".into())
        );
        let tcp: EngineEndpoint = "tcp:127.0.0.1:0".parse().unwrap();
        assert_eq!(tcp.to_string(), "tcp:127.0.0.1:0");
    }

    #[test]
    fn rejects_unknown_scheme() {
        assert!("http://x".parse::<EngineEndpoint>().is_err());
        assert!("tcp:nohost".parse::<EngineEndpoint>().is_err());
        assert!("unix:".parse::<EngineEndpoint>().is_err());
    }
}
