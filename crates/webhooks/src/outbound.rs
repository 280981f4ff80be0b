//! Outbound safety: which URLs an endpoint may have and which addresses a delivery may reach.
//!
//! A webhook URL is chosen by whoever holds a staff token, and the service POSTs to it from
//! inside the deployment: without these rules it is a server-side request forgery tool (the
//! cloud's metadata service at 169.254.169.254, the database next door, an admin port on
//! loopback). The rules, checked at registration and again at every delivery:
//!
//! - `https` only; `http` only to a loopback host, and only with the development flag;
//! - no credentials in the URL (they would show wherever the URL does);
//! - every address the host resolves to must be public: loopback, private, shared,
//!   link-local (the metadata services), multicast and reserved ranges are refused, also when
//!   wrapped in IPv6 (mapped, NAT64, 6to4), unless an allow-list names them;
//! - a delivery connects only to addresses that passed (the resolver hands the client nothing
//!   else), so a name that changes its answer between the check and the connect (DNS
//!   rebinding) gains nothing; redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Longest a host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a URL or an address is refused. The text says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a URL.
    #[error("{0:?} is not an absolute URL")]
    Malformed(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// Not `https` (nor `http` to loopback under the development flag).
    #[error(
        "webhook URLs must be https (http is accepted only to a loopback host when the service runs with --webhooks-allow-loopback, for development)"
    )]
    Scheme,
    /// A user name or password in the URL.
    #[error(
        "the URL carries credentials; remove them: receivers authenticate deliveries by their signature"
    )]
    Credentials,
    /// The host resolves to an address of a refused range.
    #[error(
        "{host} resolves to {ip}, a {range} address; webhooks reach public addresses only (an operator can allow a network with ORDERS_WEBHOOKS_ALLOW_NETWORKS)"
    )]
    Address {
        /// The URL's host.
        host: String,
        /// The address it resolved to.
        ip: IpAddr,
        /// Which range refused it.
        range: &'static str,
    },
    /// The host does not resolve.
    #[error("{host} does not resolve to any address: {reason}")]
    Unresolvable {
        /// The URL's host.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

/// The outbound rules of one deployment.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Development only: `http` URLs and loopback addresses are accepted.
    pub allow_loopback: bool,
    /// Networks accepted although their range is refused (an internal receiver).
    pub allow: Vec<IpNet>,
}

impl OutboundPolicy {
    /// `raw` as an endpoint URL, if its form passes the rules (its addresses are checked by
    /// [`Self::resolve`]).
    pub fn parse_url(&self, raw: &str) -> Result<Url, Refused> {
        if raw.len() > MAX_URL_LEN {
            return Err(Refused::TooLong);
        }
        let url = Url::parse(raw).map_err(|_| Refused::Malformed(raw.to_owned()))?;
        let host = url
            .host()
            .ok_or_else(|| Refused::Malformed(raw.to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && is_loopback_host(&host) => {}
            _ => return Err(Refused::Scheme),
        }
        Ok(url)
    }

    /// Whether the policy lets a connection reach `ip`; the range that refuses it otherwise.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match refused_range(ip) {
            Some("loopback") if self.allow_loopback => Ok(()),
            Some(range) => Err(range),
            None => Ok(()),
        }
    }

    /// The addresses `url`'s host resolves to, every one allowed; refused if any is not (a
    /// name that mixes public and private answers is not trusted with either).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, Refused> {
        let port = url.port_or_known_default().unwrap_or(443);
        let host = url
            .host()
            .ok_or_else(|| Refused::Malformed(url.to_string()))?;
        let addrs: Vec<SocketAddr> = match host {
            Host::Ipv4(ip) => vec![SocketAddr::new(ip.into(), port)],
            Host::Ipv6(ip) => vec![SocketAddr::new(ip.into(), port)],
            Host::Domain(name) => lookup(name, port).await?,
        };
        self.allowed(&host.to_string(), addrs)
    }

    fn allowed(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        if addrs.is_empty() {
            return Err(Refused::Unresolvable {
                host: host.to_owned(),
                reason: "no addresses".to_owned(),
            });
        }
        for addr in &addrs {
            self.check_ip(addr.ip()).map_err(|range| Refused::Address {
                host: host.to_owned(),
                ip: addr.ip(),
                range,
            })?;
        }
        Ok(addrs)
    }

    /// A resolver for the HTTP client that answers only with allowed addresses.
    pub(crate) fn resolver(self: &Arc<Self>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver(self.clone()))
    }
}

async fn lookup(name: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
    let unresolvable = |reason: String| Refused::Unresolvable {
        host: name.to_owned(),
        reason,
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(addrs)) => Ok(addrs.collect()),
        Ok(Err(error)) => Err(unresolvable(error.to_string())),
        Err(_) => Err(unresolvable(format!(
            "no answer within {} s",
            RESOLVE_TIMEOUT.as_secs()
        ))),
    }
}

/// The HTTP client's resolver: [`OutboundPolicy::resolve`] for every name it connects to.
#[derive(Debug)]
pub(crate) struct GuardedResolver(Arc<OutboundPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is the client's to set; 0 here is replaced by the URL's.
            let addrs = lookup(&host, 0).await?;
            let addrs = policy.allowed(&host, addrs)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The refused range `ip` belongs to, if any.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => refused_v6(ip),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (127, ..) => "loopback",
        (0, ..) => "unspecified",
        (10, ..) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) => "protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return refused_v4(v4);
    }
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        0xfc00..=0xfdff => "private (unique local)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if ip.segments()[1] == 0x0db8 => "documentation",
        _ => return None,
    })
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or
/// 6to4 (`2002:aabb:ccdd::`) address: connecting to one reaches that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn public_addresses_pass_and_every_private_range_is_refused() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "172.32.0.1",
            "100.128.0.1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(refused_range(ip(public)), None, "{public}");
        }
        let refused = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.100.100.200", "shared (carrier-grade NAT)"),
            ("192.0.0.192", "protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ];
        for (address, range) in refused {
            assert_eq!(refused_range(ip(address)), Some(range), "{address}");
        }
    }

    #[test]
    fn the_allow_list_and_the_development_flag_open_only_what_they_name() {
        let strict = OutboundPolicy::default();
        assert_eq!(strict.check_ip(ip("127.0.0.1")), Err("loopback"));
        let dev = OutboundPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert_eq!(dev.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(dev.check_ip(ip("::1")), Ok(()));
        assert_eq!(dev.check_ip(ip("10.0.0.1")), Err("private"));
        let internal = OutboundPolicy {
            allow: vec!["10.20.0.0/16".parse().expect("a network")],
            ..Default::default()
        };
        assert_eq!(internal.check_ip(ip("10.20.3.4")), Ok(()));
        assert_eq!(internal.check_ip(ip("10.21.3.4")), Err("private"));
        assert_eq!(internal.check_ip(ip("127.0.0.1")), Err("loopback"));
    }

    #[test]
    fn urls_must_be_https_without_credentials() {
        let strict = OutboundPolicy::default();
        assert!(strict.parse_url("https://hooks.example.com/orders").is_ok());
        assert_eq!(
            strict.parse_url("http://hooks.example.com/"),
            Err(Refused::Scheme)
        );
        assert_eq!(
            strict.parse_url("http://127.0.0.1:9/"),
            Err(Refused::Scheme)
        );
        assert_eq!(strict.parse_url("ftp://example.com/"), Err(Refused::Scheme));
        for with_credentials in [
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://:pw@example.com/",
        ] {
            assert_eq!(
                strict.parse_url(with_credentials),
                Err(Refused::Credentials),
                "{with_credentials}"
            );
        }
        assert!(matches!(
            strict.parse_url("not a url"),
            Err(Refused::Malformed(_))
        ));
        let longest = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(longest.len(), MAX_URL_LEN);
        assert!(strict.parse_url(&longest).is_ok());
        let long = format!("{longest}a");
        assert_eq!(strict.parse_url(&long), Err(Refused::TooLong));
        let dev = OutboundPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert!(dev.parse_url("http://127.0.0.1:9/hook").is_ok());
        assert!(dev.parse_url("http://localhost:9/hook").is_ok());
        assert!(dev.parse_url("http://[::1]:9/hook").is_ok());
        assert_eq!(dev.parse_url("http://example.com/"), Err(Refused::Scheme));
    }

    #[tokio::test]
    async fn addresses_are_checked_after_resolution() {
        let strict = OutboundPolicy::default();
        for url in [
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.7/",
            "https://localhost/",
            "https://[::ffff:10.0.0.1]/",
        ] {
            let parsed = strict.parse_url(url).expect("the form passes");
            let refused = strict.resolve(&parsed).await;
            assert!(
                matches!(refused, Err(Refused::Address { .. })),
                "{url}: {refused:?}"
            );
        }
        let dev = OutboundPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        let local = dev.parse_url("http://localhost:8/").expect("dev form");
        let addrs = dev.resolve(&local).await.expect("loopback allowed");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8));
    }
}
