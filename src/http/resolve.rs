//! The name resolver of both HTTP clients: an address in the URL is used as it is, and a host
//! name is looked up once for the life of the client's `ureq::Agent` (one CWMP session, one
//! transfer), not once per request.
//!
//! ureq's own resolver looks the host up again for every request, even when a kept-alive
//! connection will carry it, and when the request has a timeout (every request of the agent
//! has) it does so in a new thread, so that it can give up on a slow DNS: three thread starts
//! per CWMP session for the Inform, the empty POST and one response, each mapping a 2 MiB
//! stack, and the POST waiting for that thread to be scheduled (issue 19). Here:
//! - an IP address (`192.0.2.1`, `[2001:db8::1]`) needs no lookup: no thread, no
//!   `getaddrinfo`;
//! - a host name is looked up through a thread with the request's resolve timeout, as ureq
//!   does, and the addresses kept: the session's later POSTs, and a retry after a 401, connect
//!   to the same addresses. An ACS behind a round-robin name thus keeps one session on the one
//!   server that holds its state (the session's cookies, the Digest nonce);
//! - a redirect to another host or port looks that one up (only the last is kept).
//!
//! Who controls the input: the URL is the configured ACS URL, one a redirect of the ACS named
//! (checked by `http::url` before it gets here), or a file server's URL from a Download or
//! Upload; the answers come from the router's resolver. Nothing is kept beyond the `Agent`,
//! which both clients drop when the session or the transfer ends, so a changed DNS answer is
//! seen at the next session.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// The stack of a lookup's thread.
const LOOKUP_STACK: usize = 256 * 1024;

/// The system's lookup of `host` and `port` (`getaddrinfo` through std).
pub type Lookup = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// The resolver of one `ureq::Agent` (see the module's text).
pub struct SessionResolver {
    lookup: Lookup,
    /// The last host name looked up, its port and its addresses (as the config's IP family
    /// keeps them).
    last: Mutex<Option<(String, u16, ResolvedSocketAddrs)>>,
}

impl SessionResolver {
    /// A resolver that asks the system.
    pub fn new() -> SessionResolver {
        SessionResolver::with_lookup(system_lookup)
    }

    /// A resolver that asks `lookup` (tests count and delay lookups with it).
    pub fn with_lookup(lookup: Lookup) -> SessionResolver {
        SessionResolver {
            lookup,
            last: Mutex::new(None),
        }
    }

    fn kept(
        &self,
        config: &Config,
        addrs: impl Iterator<Item = SocketAddr>,
    ) -> ResolvedSocketAddrs {
        let mut out = self.empty();
        for addr in config.ip_family().keep_wanted(addrs) {
            // ureq keeps at most 16; the rest are dropped, as ureq's own resolver does.
            if out.try_push(addr).is_err() {
                break;
            }
        }
        out
    }
}

impl Default for SessionResolver {
    fn default() -> SessionResolver {
        SessionResolver::new()
    }
}

impl fmt::Debug for SessionResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionResolver")
    }
}

impl Resolver for SessionResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (host, port) = host_and_port(uri)?;
        let addrs = if let Some(ip) = ip_literal(host) {
            self.kept(config, std::iter::once(SocketAddr::new(ip, port)))
        } else {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            match last.as_ref() {
                Some((h, p, addrs)) if h == host && *p == port => addrs.clone(),
                _ => {
                    let found = lookup_within(self.lookup, host, port, &timeout)?;
                    let addrs = self.kept(config, found.into_iter());
                    if !addrs.is_empty() {
                        *last = Some((host.to_string(), port, addrs.clone()));
                    }
                    addrs
                }
            }
        };
        if addrs.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}

/// The URI's host (an IPv6 address without its brackets) and port (the scheme's default when
/// none is written, as ureq's own resolver has them: a proxy's URI from the environment comes
/// here too). Brackets around anything but an IPv6 address (a name, an address with a zone)
/// are refused, as ureq's resolver refuses them.
fn host_and_port(uri: &Uri) -> Result<(&str, u16), ureq::Error> {
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ureq::Error::BadUri(format!("{uri}: no host")))?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        (None, Some("socks4" | "socks4a" | "socks5" | "socks5h")) => 1080,
        (None, _) => return Err(ureq::Error::BadUri(format!("{uri}: no port"))),
    };
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<Ipv6Addr>().is_ok() => Ok((inner, port)),
        Some(_) => Err(ureq::Error::HostNotFound),
        None => Ok((host, port)),
    }
}

/// `host` as an address when it is one.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

/// `lookup` of `host`, given up at `timeout`: in a thread when the timeout is finite (a hung
/// lookup's thread ends when the system's resolver gives up, as ureq's does), in line when it
/// is not.
fn lookup_within(
    lookup: Lookup,
    host: &str,
    port: u16,
    timeout: &NextTimeout,
) -> Result<Vec<SocketAddr>, ureq::Error> {
    if timeout.after.is_not_happening() {
        return Ok(lookup(host, port)?);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let name = host.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        // Room for the C library's resolver (glibc's keeps a 64 KiB answer on the stack), not
        // the default 2 MiB.
        .stack_size(LOOKUP_STACK)
        .spawn(move || {
            // The receiver may have given up; the answer is then dropped.
            let _ = tx.send(lookup(&name, port));
        })?;
    match rx.recv_timeout(*timeout.after) {
        Ok(found) => Ok(found?),
        Err(RecvTimeoutError::Timeout) => Err(ureq::Error::Timeout(timeout.reason)),
        Err(RecvTimeoutError::Disconnected) => Err(ureq::Error::Io(io::Error::other(
            "the name lookup's thread ended without an answer",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    fn within(after: Duration) -> NextTimeout {
        NextTimeout {
            after: UreqDuration::Exact(after),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        }
    }

    fn config() -> Config {
        ureq::Agent::config_builder().build()
    }

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

    fn counted(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        LOOKUPS.fetch_add(1, Ordering::SeqCst);
        match host {
            "acs.example" => Ok(vec![
                SocketAddr::new("192.0.2.10".parse().unwrap(), port),
                SocketAddr::new("2001:db8::10".parse().unwrap(), port),
            ]),
            "files.example" => Ok(vec![SocketAddr::new("192.0.2.20".parse().unwrap(), port)]),
            "nothing.example" => Ok(Vec::new()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such name")),
        }
    }

    fn failing(_: &str, _: u16) -> io::Result<Vec<SocketAddr>> {
        Err(io::Error::new(io::ErrorKind::NotFound, "no such name"))
    }

    fn slow(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        std::thread::sleep(Duration::from_millis(400));
        Ok(vec![SocketAddr::new("192.0.2.30".parse().unwrap(), port)])
    }

    fn resolved(r: &SessionResolver, text: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        r.resolve(&uri(text), &config(), within(Duration::from_secs(5)))
            .map(|a| a.iter().copied().collect())
    }

    #[test]
    fn addresses_are_used_as_written_without_a_lookup() {
        let r = SessionResolver::with_lookup(failing);
        assert_eq!(
            resolved(&r, "https://192.0.2.1/acs").unwrap(),
            vec!["192.0.2.1:443".parse().unwrap()]
        );
        assert_eq!(
            resolved(&r, "http://192.0.2.1:7547/").unwrap(),
            vec!["192.0.2.1:7547".parse().unwrap()]
        );
        assert_eq!(
            resolved(&r, "http://[2001:db8::1]:8080/x").unwrap(),
            vec!["[2001:db8::1]:8080".parse().unwrap()]
        );
        assert_eq!(
            resolved(&r, "https://[::1]/").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
    }

    #[test]
    fn a_name_is_looked_up_once_until_another_replaces_it() {
        // The only test that counts LOOKUPS.
        let r = SessionResolver::with_lookup(counted);
        let acs: Vec<SocketAddr> = vec![
            "192.0.2.10:443".parse().unwrap(),
            "[2001:db8::10]:443".parse().unwrap(),
        ];
        let before = LOOKUPS.load(Ordering::SeqCst);
        assert_eq!(resolved(&r, "https://acs.example/cwmp").unwrap(), acs);
        assert_eq!(resolved(&r, "https://acs.example/other?x").unwrap(), acs);
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 1);
        // Another port is another lookup.
        assert_eq!(
            resolved(&r, "http://acs.example:8080/").unwrap(),
            vec![
                "192.0.2.10:8080".parse::<SocketAddr>().unwrap(),
                "[2001:db8::10]:8080".parse().unwrap()
            ]
        );
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 2);
        // A redirect to another host looks it up, and a return to the first looks again.
        assert_eq!(
            resolved(&r, "https://files.example/f").unwrap(),
            vec!["192.0.2.20:443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(resolved(&r, "https://acs.example/cwmp").unwrap(), acs);
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 4);
        // A failed or empty lookup is not kept: the last good one stays.
        assert!(matches!(
            resolved(&r, "https://nothing.example/"),
            Err(ureq::Error::HostNotFound)
        ));
        assert!(matches!(
            resolved(&r, "https://unknown.example/"),
            Err(ureq::Error::Io(_))
        ));
        assert_eq!(resolved(&r, "https://acs.example/cwmp").unwrap(), acs);
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 6);
        // A fresh resolver (the next session's) looks up again.
        let next = SessionResolver::with_lookup(counted);
        assert_eq!(resolved(&next, "https://acs.example/cwmp").unwrap(), acs);
        assert_eq!(LOOKUPS.load(Ordering::SeqCst) - before, 7);
    }

    #[test]
    fn the_config_s_ip_family_filters_names_and_addresses() {
        let r = SessionResolver::with_lookup(counted);
        let v4 = ureq::Agent::config_builder()
            .ip_family(ureq::config::IpFamily::Ipv4Only)
            .build();
        let t = || within(Duration::from_secs(5));
        let found = r.resolve(&uri("https://acs.example/"), &v4, t()).unwrap();
        assert_eq!(
            found.iter().copied().collect::<Vec<_>>(),
            vec!["192.0.2.10:443".parse::<SocketAddr>().unwrap()]
        );
        assert!(matches!(
            r.resolve(&uri("https://[2001:db8::1]/"), &v4, t()),
            Err(ureq::Error::HostNotFound)
        ));
    }

    #[test]
    fn a_slow_lookup_gives_up_at_the_timeout_and_is_not_kept() {
        let r = SessionResolver::with_lookup(slow);
        let err = r
            .resolve(
                &uri("https://slow.example/"),
                &config(),
                within(Duration::from_millis(20)),
            )
            .unwrap_err();
        assert!(matches!(err, ureq::Error::Timeout(ureq::Timeout::Resolve)));
        assert!(r.last.lock().unwrap().is_none());
        // Without a timeout the lookup runs in line and is waited for.
        let found = r
            .resolve(
                &uri("https://slow.example/"),
                &config(),
                NextTimeout::default(),
            )
            .unwrap();
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_uri_without_a_host_or_a_known_port_is_refused() {
        // `failing`'s answer (an I/O error) would show a lookup.
        let r = SessionResolver::with_lookup(failing);
        // Brackets hold an IPv6 address, nothing else: never looked up.
        for bad in ["https://[acs.example]/", "https://[fe80::1%25eth0]/"] {
            assert!(
                matches!(
                    resolved(&r, bad),
                    Err(ureq::Error::HostNotFound) | Err(ureq::Error::BadUri(_))
                ),
                "{bad}"
            );
        }
        // A SOCKS proxy's default port, as ureq has it.
        assert_eq!(
            resolved(&r, "socks5://192.0.2.9").unwrap(),
            vec!["192.0.2.9:1080".parse().unwrap()]
        );
        assert!(matches!(
            resolved(&r, "/relative"),
            Err(ureq::Error::BadUri(_))
        ));
        assert!(matches!(
            resolved(&r, "ftp://192.0.2.1/x"),
            Err(ureq::Error::BadUri(_))
        ));
    }
}
