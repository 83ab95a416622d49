//! Which addresses a webhook may be delivered to (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
//!
//! A webhook URL is chosen by a caller but fetched by our servers, so a URL on
//! loopback, a private network or the cloud metadata address (169.254.169.254)
//! would let the caller reach what only our servers can (SSRF). Only public
//! unicast addresses are allowed, unless an operator lists a network for an
//! internal receiver. The API checks at registration and the delivery loop
//! checks every address a name resolves to, each time it connects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network in CIDR notation (`10.1.0.0/16`, `::1/128`); a bare
/// address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or a CIDR network"))?;
        // An IPv4-mapped entry (::ffff:10.0.0.1) means the IPv4 network.
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The networks an operator opened to webhooks on top of the public internet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookNetworks {
    allowed: Vec<IpNet>,
}

impl WebhookNetworks {
    /// Only public addresses: what holds when the variable is unset.
    pub fn public_only() -> Self {
        WebhookNetworks::default()
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allowed.iter().any(|n| n.contains(ip))
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }
}

/// A comma-separated list of networks; empty means public addresses only.
impl FromStr for WebhookNetworks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let allowed = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(IpNet::from_str)
            .collect::<Result<_, _>>()?;
        Ok(WebhookNetworks { allowed })
    }
}

impl fmt::Display for WebhookNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.allowed.iter().map(IpNet::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address:
/// the socket reaches the same host.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A globally routable unicast address. The ranges refused are those that
/// reach our own host or network, or no single host at all.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0 included: Linux connects it to the local host
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT; some clouds' metadata lives here
        || (a == 169 && b == 254) // link-local: cloud metadata (169.254.169.254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking, often used inside labs
        || a >= 224) // multicast, reserved and the broadcast address
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded_v4 = |hi: usize| Ipv4Addr::from(((seg[hi] as u32) << 16) | seg[hi + 1] as u32);
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    match seg[0] {
        0xfe80..=0xfebf => false, // link-local
        0xfec0..=0xfeff => false, // site-local (deprecated, still routed in places)
        0xfc00..=0xfdff => false, // unique local
        0xff00..=0xffff => false, // multicast
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they carry.
        0x0064 if seg[1] == 0xff9b && seg[2..6] == [0; 4] => is_public_v4(embedded_v4(6)),
        0x2002 => is_public_v4(embedded_v4(1)),
        // The rest of ::/8: IPv4-compatible and other reserved forms.
        0x0000..=0x00ff => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_ranges() {
        for s in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip(s)), "{s} is not public");
            assert!(!WebhookNetworks::public_only().permits(ip(s)), "{s}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for s in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn an_allowlist_opens_its_networks_only() {
        let n: WebhookNetworks = "127.0.0.0/8, ::1, 10.1.0.0/16".parse().unwrap();
        assert!(n.permits(ip("127.0.0.1")));
        assert!(n.permits(ip("::ffff:127.0.0.2")));
        assert!(n.permits(ip("::1")));
        assert!(n.permits(ip("10.1.200.3")));
        assert!(!n.permits(ip("10.2.0.1")));
        assert!(!n.permits(ip("169.254.169.254")));
        assert!(!n.permits(ip("fe80::1")));
        assert_eq!(n.to_string(), "127.0.0.0/8,::1/128,10.1.0.0/16");
        assert_eq!("".parse::<WebhookNetworks>(), Ok(WebhookNetworks::public_only()));
        let everything: WebhookNetworks = "0.0.0.0/0,::/0".parse().unwrap();
        assert!(everything.permits(ip("169.254.169.254")) && everything.permits(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "::1/129", "localhost", "10.0.0.0/x", "10.0.0/8"] {
            assert!(bad.parse::<WebhookNetworks>().is_err(), "{bad} accepted");
        }
    }
}
