//! Outbound connections to hosts an agent reaches on its own: resolve once, check every
//! address, connect only to an address that passed the check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use houston_protocol::AgentId;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::address::forbidden_range;
use crate::rejection::Rejection;
use crate::resolver::Resolver;
use crate::target::host_ip;

/// Resolves `host` and checks every address, so a name with one safe and one private
/// address is refused as a whole.
pub(crate) struct AddressCheck {
    pub resolver: Arc<dyn Resolver>,
    pub timeout: Duration,
    /// Lets 127.0.0.0/8 and `::1` pass, for tests only (the `test-util` feature).
    pub allow_loopback: bool,
}

impl AddressCheck {
    /// Returns the socket addresses of `host:port` that an agent may connect to.
    ///
    /// # Errors
    /// Returns [`Rejection::ForbiddenAddress`] when any address is in a special range, and
    /// a resolution failure when the name has no address.
    pub async fn checked_addresses(
        &self,
        host: &str,
        port: u16,
        agent: &AgentId,
    ) -> Result<Vec<SocketAddr>, Rejection> {
        let addresses = match host_ip(host) {
            Some(ip) => vec![ip],
            None => self.resolve(host).await?,
        };
        for &ip in &addresses {
            if let Some(range) = self.forbidden(ip) {
                return Err(Rejection::ForbiddenAddress {
                    host: host.to_owned(),
                    ip,
                    range,
                    agent: agent.clone(),
                });
            }
        }
        Ok(addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Rejection> {
        let failed = |source| Rejection::ResolveFailed {
            host: host.to_owned(),
            source,
        };
        let resolved = tokio::time::timeout(self.timeout, self.resolver.resolve(host))
            .await
            .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
            .map_err(failed)?;
        if resolved.is_empty() {
            return Err(failed(std::io::ErrorKind::NotFound.into()));
        }
        Ok(resolved)
    }

    fn forbidden(&self, ip: IpAddr) -> Option<&'static str> {
        let test_loopback = match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if self.allow_loopback && test_loopback {
            return None;
        }
        forbidden_range(ip)
    }
}

/// Opens a TCP connection to the first of `addresses` that accepts, counting every attempt.
///
/// # Errors
/// Returns the last connection error, or a timeout when the last attempt timed out.
pub(crate) async fn connect_checked(
    host: &str,
    addresses: &[SocketAddr],
    timeout: Duration,
    attempts: &AtomicU64,
) -> Result<TcpStream, Rejection> {
    let mut last = Rejection::ConnectTimedOut {
        host: host.to_owned(),
    };
    for address in addresses {
        attempts.fetch_add(1, Ordering::Relaxed);
        // A safety net for test builds: even if a bug let an address past the check, tests
        // must never send a packet off the machine.
        #[cfg(feature = "test-util")]
        if !address.ip().is_loopback() {
            let source = std::io::Error::other("test builds connect only to loopback addresses");
            last = Rejection::ConnectFailed {
                host: host.to_owned(),
                source,
            };
            continue;
        }
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Disabling Nagle keeps small SSE frames from waiting for an ACK.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(source)) => {
                last = Rejection::ConnectFailed {
                    host: host.to_owned(),
                    source,
                }
            }
            Err(_) => {
                last = Rejection::ConnectTimedOut {
                    host: host.to_owned(),
                }
            }
        }
    }
    Err(last)
}

/// Builds the TLS client configuration: Mozilla's root certificates (webpki-roots) plus
/// `extra_roots`, and the aws-lc-rs provider.
///
/// # Errors
/// Returns the rustls error when an extra root is invalid or the provider supports no safe
/// protocol version.
pub(crate) fn tls_client_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Starts TLS on `stream`, verifying the certificate against `host`.
///
/// # Errors
/// Returns [`Rejection::ConnectFailed`] when the handshake or the verification fails.
pub(crate) async fn tls_connect(
    connector: &TlsConnector,
    host: &str,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>, Rejection> {
    let failed = |source| Rejection::ConnectFailed {
        host: host.to_owned(),
        source,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|error| failed(std::io::Error::new(std::io::ErrorKind::InvalidInput, error)))?;
    connector.connect(name, stream).await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::StaticResolver;

    fn check(allow_loopback: bool) -> AddressCheck {
        let resolver = StaticResolver::new()
            .with("public.test", ["93.184.215.14".parse().expect("valid ip")])
            .with(
                "mixed.test",
                [
                    "93.184.215.14".parse().expect("valid ip"),
                    "10.1.2.3".parse().expect("valid ip"),
                ],
            )
            .with("loopback.test", ["127.0.0.1".parse().expect("valid ip")])
            .with("empty.test", []);
        AddressCheck {
            resolver: Arc::new(resolver),
            timeout: Duration::from_secs(1),
            allow_loopback,
        }
    }

    fn agent() -> AgentId {
        AgentId::parse("hr").expect("valid id")
    }

    #[tokio::test]
    async fn public_name_passes_with_port() {
        let addresses = check(false)
            .checked_addresses("public.test", 443, &agent())
            .await
            .expect("allowed");
        assert_eq!(
            addresses,
            ["93.184.215.14:443".parse::<SocketAddr>().expect("valid")]
        );
    }

    #[tokio::test]
    async fn one_private_address_rejects_name() {
        let result = check(false)
            .checked_addresses("mixed.test", 80, &agent())
            .await;
        let Err(Rejection::ForbiddenAddress { ip, range, .. }) = result else {
            panic!("mixed.test must be rejected, got {result:?}");
        };
        assert_eq!(ip.to_string(), "10.1.2.3");
        assert_eq!(range, "private (10.0.0.0/8)");
    }

    #[tokio::test]
    async fn loopback_override_is_explicit() {
        assert!(
            check(false)
                .checked_addresses("loopback.test", 80, &agent())
                .await
                .is_err()
        );
        assert!(
            check(true)
                .checked_addresses("loopback.test", 80, &agent())
                .await
                .is_ok()
        );
        let mapped = check(true)
            .checked_addresses("::ffff:127.0.0.1", 80, &agent())
            .await;
        assert!(
            matches!(mapped, Err(Rejection::ForbiddenAddress { .. })),
            "{mapped:?}"
        );
    }

    #[tokio::test]
    async fn unresolvable_names_fail() {
        for host in ["empty.test", "unknown.test"] {
            let result = check(false).checked_addresses(host, 80, &agent()).await;
            assert!(
                matches!(result, Err(Rejection::ResolveFailed { .. })),
                "{host}: {result:?}"
            );
        }
    }
}
