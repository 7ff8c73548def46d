//! Client address behind trusted reverse proxies.
//!
//! `X-Forwarded-For` is written by the client as much as by proxies: each proxy appends the
//! address it received the request from, so only the entries appended by proxies we trust are
//! facts. [`TrustedProxies::client_ip`] therefore starts at the TCP peer and walks the header
//! from right to left while the current hop is a configured proxy. The first address that
//! is not a trusted proxy is the client. Everything to its left is whatever the client sent
//! and is ignored.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// Error for a trusted proxy entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted proxy {value:?}: expected an IP address or a CIDR such as 10.0.0.0/8")]
pub struct TrustedProxyError {
    pub value: String,
}

/// The configured list of reverse proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`).
    ///
    /// # Errors
    /// Returns the first entry that is neither.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, TrustedProxyError> {
        let networks = entries
            .iter()
            .map(|entry| parse_network(entry.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Returns whether `address` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// Returns the client address of a request that came from `peer` with the given
    /// `X-Forwarded-For` header values (in the order received; a request may carry several).
    ///
    /// With no trusted proxies configured, or a peer that is not one, this is the peer. An
    /// entry that is not an address (or `address:port`) ends the walk, and the last trusted
    /// hop is returned, because nothing to its left can be believed.
    #[must_use]
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }

        let values: Vec<&str> = forwarded_for.into_iter().collect();
        let entries = values.iter().rev().flat_map(|value| value.rsplit(','));
        for entry in entries {
            let Some(hop) = parse_hop(entry.trim()) else {
                return client;
            };
            client = hop;
            if !self.contains(hop) {
                return hop;
            }
        }
        client
    }
}

fn parse_network(entry: &str) -> Result<IpNet, TrustedProxyError> {
    let error = || TrustedProxyError {
        value: entry.to_owned(),
    };
    if entry.contains('/') {
        return IpNet::from_str(entry)
            .map(|network| network.trunc())
            .map_err(|_| error());
    }
    let address = IpAddr::from_str(entry).map_err(|_| error())?;
    Ok(IpNet::from(address.to_canonical()))
}

/// Parses one `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`), as some proxies write it.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = IpAddr::from_str(entry) {
        return Some(address.to_canonical());
    }
    SocketAddr::from_str(entry)
        .ok()
        .map(|socket| socket.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(value: &str) -> IpAddr {
        value.parse().unwrap()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "fd00::/8", "192.0.2.1"]).unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_header() {
        let client = proxies().client_ip(ip("203.0.113.9"), ["198.51.100.1"]);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn no_proxies_configured_means_peer() {
        let client = TrustedProxies::default().client_ip(ip("10.1.1.1"), ["198.51.100.1"]);
        assert_eq!(client, ip("10.1.1.1"));
    }

    #[test]
    fn trusted_chain_yields_first_untrusted_from_right() {
        let header = "1.1.1.1, 198.51.100.7, 10.0.0.2";
        let client = proxies().client_ip(ip("10.0.0.1"), [header]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn all_trusted_yields_leftmost() {
        let client = proxies().client_ip(ip("10.0.0.1"), ["10.0.0.3, 10.0.0.2"]);
        assert_eq!(client, ip("10.0.0.3"));
    }

    #[test]
    fn several_header_values_are_one_list() {
        let client = proxies().client_ip(ip("10.0.0.1"), ["198.51.100.7", "10.0.0.2"]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn garbage_stops_at_last_trusted_hop() {
        let client = proxies().client_ip(ip("10.0.0.1"), ["1.1.1.1, not-an-ip, 10.0.0.2"]);
        assert_eq!(client, ip("10.0.0.2"));
    }

    #[test]
    fn ports_and_mapped_addresses() {
        let client = proxies().client_ip(ip("::ffff:10.0.0.1"), ["[2001:db8::5]:443"]);
        assert_eq!(client, ip("2001:db8::5"));

        let client = proxies().client_ip(ip("192.0.2.1"), ["198.51.100.7:8080"]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn empty_header_means_peer() {
        let client = proxies().client_ip(ip("10.0.0.1"), std::iter::empty());
        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn rejects_bad_entry() {
        let error = TrustedProxies::parse(&["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
        assert_eq!(error.value, "10.0.0.0/33");
        assert!(TrustedProxies::parse(&["proxy.internal"]).is_err());
    }

    fn address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            (0u8..4, any::<[u8; 3]>()).prop_map(|(last, rest)| {
                // A tenth of the v4 space is the trusted 10.0.0.0/8 proxy range.
                IpAddr::from([10, rest[0], rest[1], last])
            }),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        #[test]
        fn untrusted_peer_is_always_the_client(
            peer in address(),
            hops in proptest::collection::vec(address(), 0..6),
        ) {
            prop_assume!(!proxies().contains(peer));
            let header = hops.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(proxies().client_ip(peer, [header.as_str()]), peer.to_canonical());
        }

        #[test]
        fn client_prefix_cannot_change_the_answer(
            forged in proptest::collection::vec(address(), 0..6),
            client in address(),
            proxy_hops in proptest::collection::vec(0u8..4, 0..4),
        ) {
            // A real client behind trusted proxies; whatever it puts in front cannot win.
            prop_assume!(!proxies().contains(client));
            let mut hops: Vec<String> = forged.iter().map(ToString::to_string).collect();
            hops.push(client.to_string());
            hops.extend(proxy_hops.iter().map(|last| format!("10.9.9.{last}")));
            let header = hops.join(",");
            let found = proxies().client_ip(ip("10.0.0.1"), [header.as_str()]);
            prop_assert_eq!(found, client.to_canonical());
        }

        #[test]
        fn arbitrary_header_yields_peer_or_listed_address(
            header in "[0-9a-f:.,\\[\\] ]{0,80}|\\PC{0,80}",
        ) {
            let peer = ip("10.0.0.1");
            let found = proxies().client_ip(peer, [header.as_str()]);
            let listed = header.split(',').filter_map(|entry| parse_hop(entry.trim())).any(|hop| hop == found);
            prop_assert!(found == peer || listed, "{found} is neither the peer nor in {header:?}");
        }

        #[test]
        fn result_is_peer_or_from_header(
            peer in address(),
            hops in proptest::collection::vec(address(), 0..6),
        ) {
            let header = hops.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
            let found = proxies().client_ip(peer, [header.as_str()]);
            let candidates: Vec<IpAddr> =
                hops.iter().chain([&peer]).map(|address| address.to_canonical()).collect();
            prop_assert!(candidates.contains(&found));
        }
    }
}
