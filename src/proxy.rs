//! The client's address behind reverse proxies: `Forwarded` / `X-Forwarded-For` are believed
//! only from a peer listed in `--trusted-proxies`, and then only as far as the chain of
//! trusted proxies goes, since anything left of the first untrusted hop was written by the
//! client itself.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("not an IP address or CIDR block: '{s}'"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix length in '{s}'"))?
            }
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A comma-separated list of addresses and blocks; empty entries are skipped.
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::parse).collect()
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(list: Vec<Cidr>) -> Self {
        TrustedProxies(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The address the request came from. A proxy appends the address it saw to the header
    /// it writes, so the chain is read from the right: each trusted hop vouches for the entry
    /// left of it, and the first untrusted entry is the client. A proxy passes on a header it
    /// does not write as the client sent it, so when both headers come only the peer can be
    /// believed: the client could have written either. An entry that is no address
    /// (`unknown`, an obfuscated name) ends the chain at the last hop that was believed.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer_ip = peer.ip().to_canonical();
        if self.0.is_empty() || !self.trusts(peer_ip) {
            return peer_ip;
        }
        let forwarded = joined(headers, "forwarded");
        let xff = joined(headers, "x-forwarded-for");
        let entries: Vec<Option<IpAddr>> = match (forwarded, xff) {
            (Some(f), None) => f.split(',').map(forwarded_for).collect(),
            (None, Some(x)) => x.split(',').map(parse_node).collect(),
            (None, None) => return peer_ip,
            (Some(_), Some(_)) => {
                tracing::debug!(%peer, "both Forwarded and X-Forwarded-For from a trusted proxy: using the proxy's address");
                return peer_ip;
            }
        };
        let mut client = peer_ip;
        for entry in entries.into_iter().rev() {
            let Some(ip) = entry else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// Every value of a header joined with commas (a proxy may add its own line).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The `for=` of one RFC 7239 element (`for=192.0.2.1;proto=https`); None when absent.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim().trim_matches('"')))?
    })
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.2")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")), "IPv4-mapped addresses are IPv4");
        let c: Cidr = "192.168.1.128/25".parse().unwrap();
        assert!(c.contains(ip("192.168.1.200")) && !c.contains(ip("192.168.1.100")));
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains(ip("2001:db8:1::5")) && !c.contains(ip("2001:db9::1")));
        let c: Cidr = "127.0.0.2".parse().unwrap();
        assert!(c.contains(ip("127.0.0.2")) && !c.contains(ip("127.0.0.3")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        assert_eq!(parse_list(" 10.0.0.0/8, ,::1 ").unwrap().len(), 2);
    }

    #[test]
    fn forwarded_chains() {
        let t = TrustedProxies::new(parse_list("127.0.0.2, 10.0.0.0/8").unwrap());
        let proxy: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let stranger: SocketAddr = "127.0.0.3:5000".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client(proxy, &xff), ip("203.0.113.7"));
        assert_eq!(t.client(stranger, &xff), ip("127.0.0.3"), "an untrusted peer's header is ignored");
        assert_eq!(TrustedProxies::default().client(proxy, &xff), ip("127.0.0.2"));
        // A client's own forgery sits left of what the proxies wrote.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(t.client(proxy, &h), ip("203.0.113.7"));
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9:1234")]);
        assert_eq!(t.client(proxy, &h), ip("203.0.113.9"), "header lines join in order; ports are dropped");
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(t.client(proxy, &h), ip("10.0.0.5"), "all trusted: the leftmost");
        let h = headers(&[("x-forwarded-for", "203.0.113.1, unknown")]);
        assert_eq!(t.client(proxy, &h), ip("127.0.0.2"), "an entry that is no address ends the chain");
        let h = headers(&[("forwarded", "for=198.51.100.1, for=\"[2001:db8::1]:4711\";proto=https")]);
        assert_eq!(t.client(proxy, &h), ip("2001:db8::1"));
        let h = headers(&[("forwarded", "proto=https;for=198.51.100.2")]);
        assert_eq!(t.client(proxy, &h), ip("198.51.100.2"));
        let h = headers(&[("forwarded", "for=198.51.100.1"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client(proxy, &h), ip("127.0.0.2"), "both headers: either may be the client's own");
    }
}
