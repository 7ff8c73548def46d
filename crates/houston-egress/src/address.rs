//! Address check: which IP addresses an agent may never reach on its own.
//!
//! Only global unicast addresses pass. The check rejects every range in the IANA IPv4 and
//! IPv6 special-purpose address registries that is not globally reachable. It also rejects
//! every IPv6 form that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
//! Teredo), because the embedded address could be loopback or private.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The cloud metadata address used by AWS, GCP, Azure and most other clouds.
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// Returns the name of the special range `ip` belongs to, or `None` when it is a global
/// unicast address that an agent may reach.
#[must_use]
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip == METADATA_V4 => "link-local (cloud metadata)",
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared address space, CGNAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) => "documentation (192.0.2.0/24)",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (198, 51, 100) => "documentation (198.51.100.0/24)",
        (203, 0, 113) => "documentation (203.0.113.0/24)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let range = match segments {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback (::1)",
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped IPv6 (::ffff:0:0/96)",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible IPv6 (::/96)",
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => "NAT64 (64:ff9b::/96)",
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0, ..] => "Teredo (2001::/32)",
        [0x2001, 0x2, 0, ..] => "benchmarking (2001:2::/48)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [0x2002, ..] => "6to4 (2002::/16)",
        [0x3fff, s, ..] if s & 0xf000 == 0 => "documentation (3fff::/20)",
        [s, ..] if s & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [s, ..] if s & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        // Only 2000::/3 is allocated for global unicast; the rest is reserved by IANA.
        [s, ..] if s & 0xe000 != 0x2000 => "reserved IPv6 (outside 2000::/3)",
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address parses")
    }

    #[test]
    fn refuses_special_ranges() {
        let forbidden = [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
        ];
        for text in forbidden {
            assert!(
                forbidden_range(ip(text)).is_some(),
                "{text} must be refused"
            );
        }
    }

    #[test]
    fn allows_global_unicast() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(forbidden_range(ip(text)), None, "{text} must be allowed");
        }
    }

    proptest::proptest! {
        #[test]
        fn ipv4_in_ipv6_is_always_rejected(bits in proptest::prelude::any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert!(forbidden_range(IpAddr::V6(v4.to_ipv6_mapped())).is_some());
            proptest::prop_assert!(forbidden_range(IpAddr::V6(v4.to_ipv6_compatible())).is_some());
        }

        #[test]
        fn allowed_ipv4_is_not_special_in_std(bits in proptest::prelude::any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            if forbidden_range(IpAddr::V4(v4)).is_none() {
                proptest::prop_assert!(!v4.is_private());
                proptest::prop_assert!(!v4.is_loopback());
                proptest::prop_assert!(!v4.is_link_local());
                proptest::prop_assert!(!v4.is_unspecified());
                proptest::prop_assert!(!v4.is_multicast());
                proptest::prop_assert!(!v4.is_broadcast());
                proptest::prop_assert!(!v4.is_documentation());
            }
        }

        #[test]
        fn allowed_ipv6_is_not_special_in_std(bits in proptest::prelude::any::<u128>()) {
            let v6 = Ipv6Addr::from(bits);
            if forbidden_range(IpAddr::V6(v6)).is_none() {
                proptest::prop_assert!(!v6.is_loopback());
                proptest::prop_assert!(!v6.is_unspecified());
                proptest::prop_assert!(!v6.is_multicast());
                proptest::prop_assert!(!v6.is_unique_local());
                proptest::prop_assert!(!v6.is_unicast_link_local());
                proptest::prop_assert!(v6.to_ipv4_mapped().is_none());
            }
        }
    }

    #[test]
    fn names_metadata_address() {
        assert_eq!(
            forbidden_range(ip("169.254.169.254")),
            Some("link-local (cloud metadata)")
        );
    }
}
