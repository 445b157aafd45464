//! URLs as the agent's HTTP clients and its Connection Request listener see them (RFC 3986).
//! Pure: no I/O.

use std::fmt;

/// The origin of an http(s) URL (RFC 6454 §4: scheme, host, port): where credentials may go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `https` (else `http`).
    pub https: bool,
    /// The host, lower-case; an IPv6 literal in brackets.
    pub host: String,
    /// The port, the scheme's default when the URL gives none.
    pub port: u16,
}

impl Origin {
    /// The scheme's default port (RFC 9110 §4.2).
    pub fn default_port(https: bool) -> u16 {
        if https {
            443
        } else {
            80
        }
    }
}

/// `scheme://host` with `:port` unless it is the scheme's default (RFC 6454 §6.2).
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.port == Origin::default_port(self.https) {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_print_the_port_only_when_not_the_default() {
        let o = |https, host: &str, port| Origin {
            https,
            host: host.into(),
            port,
        };
        assert_eq!(
            o(true, "acs.example", 443).to_string(),
            "https://acs.example"
        );
        assert_eq!(o(false, "acs", 443).to_string(), "http://acs:443");
        assert_eq!(o(false, "[::1]", 80).to_string(), "http://[::1]");
        assert_eq!(o(true, "[::1]", 8443).to_string(), "https://[::1]:8443");
        assert_ne!(o(true, "a", 443), o(false, "a", 443));
    }
}
