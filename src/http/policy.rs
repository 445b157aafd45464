//! The answer to a 401 (RFC 7235 §3.1), one policy for both HTTP clients: the session client
//! to the ACS (TR-069 §3.4.4) and the file client of Download and Upload (§3.4.3). Pure: plain
//! data in (the `WWW-Authenticate` values, the origin that answered, the origin the credentials
//! belong to, what was already tried), a [`Decision`] out; the caller draws the cnonce, sends,
//! logs and words the refusal.
//!
//! The rules it holds:
//! - Credentials go only to their origin (RFC 6454: scheme, host, port): a 401 from any other
//!   origin (reached by a redirect) is refused before anything else.
//! - Digest (RFC 7616) is preferred whenever a usable challenge is offered, the strongest
//!   algorithm first ([`auth::preferred_challenge`]); Basic (RFC 7617) only without one.
//! - Basic over plain http sends the password in clear text: refused unless the configuration
//!   opts in (`[acs] allow_basic_over_http`), answered with a warning when it does.
//! - One answer per request: a challenge after an answer is a rejection of the credentials; a
//!   401 without a challenge to a request that carried credentials is a refusal of them.
//! - `stale=true` (RFC 7616 §3.3) after a Digest answer is answered with the new nonce, at most
//!   [`MAX_STALE_RETRIES`] times in a row.
//! - Nonce counts: one [`ClientAuth::Digest`] per nonce, nc+1 on each request
//!   ([`DigestSession::authorization`]).

use crate::http::auth::{self, AuthParams, DigestSession, Preferred};
use crate::http::url::Origin;

/// Consecutive `stale=true` challenges answered for one request.
pub const MAX_STALE_RETRIES: u32 = 2;
/// Schemes named in [`Refusal::Unsupported`], and characters kept of each.
const MAX_NAMED_SCHEMES: usize = 4;
const MAX_SCHEME_CHARS: usize = 20;

/// An HTTP authentication scheme this agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Digest,
}

impl Scheme {
    /// The scheme's name as in the `Authorization` header.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Digest => "Digest",
        }
    }
}

/// The authentication a client answered for the current origin: every later request carries
/// it (Digest pre-authorizes with the same nonce and nc+1, RFC 7616 §3.4).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Basic,
    Digest(DigestSession),
}

impl ClientAuth {
    pub fn scheme(&self) -> Scheme {
        match self {
            ClientAuth::Basic => Scheme::Basic,
            ClientAuth::Digest(_) => Scheme::Digest,
        }
    }

    /// The `Authorization` value of the next request (`method` and `uri`, the request-target,
    /// enter a Digest answer; the nonce count advances).
    pub fn authorization(
        &mut self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
    ) -> String {
        match self {
            ClientAuth::Basic => auth::basic_authorization(username, password),
            ClientAuth::Digest(d) => d.authorization(method, uri, username, password),
        }
    }
}

/// What the request a 401 answered carried, and what was already tried for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tried {
    /// The scheme of the `Authorization` header the refused request carried, if any.
    pub sent: Option<Scheme>,
    /// Credentials were already computed from a challenge for this request (since its last
    /// redirect): another challenge rejects them.
    pub answered: bool,
    /// `stale=true` challenges already answered for this request.
    pub stale_retries: u32,
}

impl Tried {
    /// Records that `decision` was acted on (an answer is sent next).
    pub fn record(&mut self, decision: &Decision) {
        match decision {
            Decision::Digest { stale, .. } => {
                self.answered = true;
                if *stale {
                    self.stale_retries += 1;
                }
            }
            Decision::Basic { .. } => self.answered = true,
            Decision::Refuse(_) => {}
        }
    }
}

/// The facts of a 401 besides its challenges.
#[derive(Debug, Clone, Copy)]
pub struct Unauthorized<'a> {
    /// The origin of the URL that answered 401.
    pub origin: &'a Origin,
    /// The origin the credentials belong to (the configured ACS URL, the file's URL).
    pub credentials_origin: &'a Origin,
    /// Whether there is a user name to answer with.
    pub has_username: bool,
    /// `[acs] allow_basic_over_http`.
    pub allow_basic_over_http: bool,
}

/// What to do about a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer this Digest challenge (a new [`DigestSession`] with a fresh cnonce); `stale`:
    /// the previous nonce expired, the credentials were right.
    Digest { challenge: AuthParams, stale: bool },
    /// Answer with Basic; `clear_text`: over plain http, allowed by the configuration (warn).
    Basic { clear_text: bool },
    /// Give up: the request fails for this reason.
    Refuse(Refusal),
}

/// Why a 401 is not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The 401 came from another origin than the credentials' (after a redirect).
    OtherOrigin,
    /// No user name to answer with.
    NoUsername,
    /// More than [`MAX_STALE_RETRIES`] `stale=true` in a row.
    StaleLoop,
    /// A new challenge after an answer of this scheme: wrong user name or password.
    Rejected(Scheme),
    /// Only Basic offered over plain http, and the configuration does not allow it.
    BasicOverHttp,
    /// No challenge, and the request carried credentials: they were refused (what GenieACS
    /// answers to a wrong password).
    CredentialsRefused,
    /// No usable challenge, and the request carried no credentials.
    NoChallenge,
    /// Only schemes this agent cannot answer (their names, at most four, each cut to 20
    /// characters).
    Unsupported(Vec<String>),
}

/// Decides the answer to a 401 whose `WWW-Authenticate` values are `www_authenticate`
/// (unparsable values are skipped, RFC 7235 §4.1 allows several).
pub fn decide<'h>(
    www_authenticate: impl IntoIterator<Item = &'h str>,
    facts: &Unauthorized<'_>,
    tried: &Tried,
) -> Decision {
    let challenges: Vec<AuthParams> = www_authenticate
        .into_iter()
        .filter_map(|h| auth::parse_challenges(h).ok())
        .flatten()
        .collect();
    if facts.origin != facts.credentials_origin {
        // The credentials are not this server's business (and a hostile or spoofed server
        // could otherwise collect them with a redirect of its own).
        return Decision::Refuse(Refusal::OtherOrigin);
    }
    if !facts.has_username {
        return Decision::Refuse(Refusal::NoUsername);
    }
    match auth::preferred_challenge(&challenges) {
        Some(Preferred::Digest(ch)) => {
            let stale = tried.sent == Some(Scheme::Digest) && auth::is_stale(ch);
            if stale {
                if tried.stale_retries >= MAX_STALE_RETRIES {
                    return Decision::Refuse(Refusal::StaleLoop);
                }
            } else if tried.answered {
                return Decision::Refuse(Refusal::Rejected(Scheme::Digest));
            }
            Decision::Digest {
                challenge: ch.clone(),
                stale,
            }
        }
        Some(Preferred::Basic(_)) => {
            if tried.answered || tried.sent == Some(Scheme::Basic) {
                return Decision::Refuse(Refusal::Rejected(Scheme::Basic));
            }
            let clear_text = !facts.origin.https;
            if clear_text && !facts.allow_basic_over_http {
                // Anyone on the path could have replaced a Digest challenge with this one to
                // read the password.
                return Decision::Refuse(Refusal::BasicOverHttp);
            }
            Decision::Basic { clear_text }
        }
        None if challenges.is_empty() && tried.sent.is_some() => {
            Decision::Refuse(Refusal::CredentialsRefused)
        }
        None if challenges.is_empty() => Decision::Refuse(Refusal::NoChallenge),
        None => Decision::Refuse(Refusal::Unsupported(
            challenges
                .iter()
                .take(MAX_NAMED_SCHEMES)
                .map(|c| c.scheme.chars().take(MAX_SCHEME_CHARS).collect())
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = r#"Digest realm="acs", nonce="n1", qop="auth", algorithm=MD5"#;
    const DIGEST_256: &str = r#"Digest realm="acs", nonce="n2", qop="auth", algorithm=SHA-256"#;
    const STALE: &str = r#"Digest realm="acs", nonce="n3", qop="auth", stale=true"#;
    const BASIC: &str = r#"Basic realm="acs""#;

    fn origin(https: bool, host: &str, port: u16) -> Origin {
        Origin {
            https,
            host: host.into(),
            port,
        }
    }

    struct Case {
        at: Origin,
        home: Origin,
        has_username: bool,
        allow_basic_over_http: bool,
    }

    impl Case {
        fn https() -> Case {
            let o = origin(true, "acs.example", 443);
            Case {
                at: o.clone(),
                home: o,
                has_username: true,
                allow_basic_over_http: false,
            }
        }

        fn http() -> Case {
            let o = origin(false, "acs.example", 80);
            Case {
                at: o.clone(),
                home: o,
                ..Case::https()
            }
        }

        fn decide(&self, headers: &[&str], tried: Tried) -> Decision {
            let facts = Unauthorized {
                origin: &self.at,
                credentials_origin: &self.home,
                has_username: self.has_username,
                allow_basic_over_http: self.allow_basic_over_http,
            };
            decide(headers.iter().copied(), &facts, &tried)
        }
    }

    fn fresh() -> Tried {
        Tried::default()
    }

    fn sent(scheme: Scheme, answered: bool) -> Tried {
        Tried {
            sent: Some(scheme),
            answered,
            stale_retries: 0,
        }
    }

    fn nonce(d: &Decision) -> Option<&str> {
        match d {
            Decision::Digest { challenge, .. } => challenge.param("nonce"),
            _ => None,
        }
    }

    #[test]
    fn digest_is_preferred_to_basic_and_the_strongest_algorithm_wins() {
        let c = Case::https();
        let d = c.decide(&[BASIC, DIGEST], fresh());
        assert_eq!(nonce(&d), Some("n1"));
        let d = c.decide(&[DIGEST, &format!("{BASIC}, {DIGEST_256}")], fresh());
        assert_eq!(nonce(&d), Some("n2"));
        assert!(matches!(d, Decision::Digest { stale: false, .. }));
        // Over plain http too, whatever the Basic opt-in says: Digest never sends the password.
        assert_eq!(
            nonce(&Case::http().decide(&[BASIC, DIGEST], fresh())),
            Some("n1")
        );
    }

    #[test]
    fn basic_over_plain_http_only_with_the_opt_in() {
        assert_eq!(
            Case::https().decide(&[BASIC], fresh()),
            Decision::Basic { clear_text: false }
        );
        let mut c = Case::http();
        assert_eq!(
            c.decide(&[BASIC], fresh()),
            Decision::Refuse(Refusal::BasicOverHttp)
        );
        c.allow_basic_over_http = true;
        assert_eq!(
            c.decide(&[BASIC], fresh()),
            Decision::Basic { clear_text: true }
        );
    }

    #[test]
    fn credentials_go_only_to_their_origin() {
        for other in [
            origin(true, "other.example", 443),
            origin(true, "acs.example", 8443),
            origin(false, "acs.example", 443),
        ] {
            let c = Case {
                at: other,
                ..Case::https()
            };
            for headers in [&[DIGEST][..], &[BASIC], &[]] {
                assert_eq!(
                    c.decide(headers, fresh()),
                    Decision::Refuse(Refusal::OtherOrigin)
                );
            }
            // Checked first: even without a user name, the refusal names the origin.
            let c = Case {
                has_username: false,
                ..c
            };
            assert_eq!(
                c.decide(&[DIGEST], fresh()),
                Decision::Refuse(Refusal::OtherOrigin)
            );
        }
    }

    #[test]
    fn no_username_no_answer() {
        let c = Case {
            has_username: false,
            ..Case::https()
        };
        for headers in [&[DIGEST][..], &[BASIC], &[]] {
            assert_eq!(
                c.decide(headers, fresh()),
                Decision::Refuse(Refusal::NoUsername)
            );
        }
    }

    #[test]
    fn one_answer_per_request_then_the_credentials_are_rejected() {
        let c = Case::https();
        assert_eq!(
            c.decide(&[DIGEST], sent(Scheme::Digest, true)),
            Decision::Refuse(Refusal::Rejected(Scheme::Digest))
        );
        assert_eq!(
            c.decide(&[BASIC], sent(Scheme::Basic, true)),
            Decision::Refuse(Refusal::Rejected(Scheme::Basic))
        );
        // Basic sent pre-authorized (a later request of the session) and challenged again.
        assert_eq!(
            c.decide(&[BASIC], sent(Scheme::Basic, false)),
            Decision::Refuse(Refusal::Rejected(Scheme::Basic))
        );
        // A pre-authorized Digest challenged with a fresh nonce (not stale) is answered again.
        assert_eq!(
            nonce(&c.decide(&[DIGEST], sent(Scheme::Digest, false))),
            Some("n1")
        );
        // A Basic answer rejected by a Digest challenge.
        assert_eq!(
            c.decide(&[DIGEST], sent(Scheme::Basic, true)),
            Decision::Refuse(Refusal::Rejected(Scheme::Digest))
        );
    }

    #[test]
    fn a_bare_401_refuses_the_credentials_only_when_some_were_sent() {
        let c = Case::https();
        for tried in [sent(Scheme::Digest, true), sent(Scheme::Digest, false)] {
            assert_eq!(
                c.decide(&[], tried),
                Decision::Refuse(Refusal::CredentialsRefused)
            );
        }
        assert_eq!(
            c.decide(&[], sent(Scheme::Basic, true)),
            Decision::Refuse(Refusal::CredentialsRefused)
        );
        assert_eq!(
            c.decide(&[], fresh()),
            Decision::Refuse(Refusal::NoChallenge)
        );
        // Unparsable values count as no challenge.
        assert_eq!(
            c.decide(&["", "=", "\"x"], fresh()),
            Decision::Refuse(Refusal::NoChallenge)
        );
    }

    #[test]
    fn unsupported_schemes_are_named_bounded() {
        let c = Case::https();
        let long = "N".repeat(50);
        let d = c.decide(
            &["Negotiate", &format!("{long}, Bearer, HOBA, Mutual, X")],
            fresh(),
        );
        let Decision::Refuse(Refusal::Unsupported(names)) = d else {
            panic!("{d:?}")
        };
        assert_eq!(names.len(), 4);
        assert_eq!(names[0], "Negotiate");
        assert_eq!(names[1], "N".repeat(20));
        // A Digest challenge that cannot be answered (auth-int only, unknown algorithm) is no
        // Digest offer.
        let d = c.decide(
            &[
                r#"Digest realm="r", nonce="n", qop="auth-int""#,
                r#"Digest nonce="n", algorithm=SHA-512"#,
            ],
            sent(Scheme::Digest, true),
        );
        assert!(matches!(d, Decision::Refuse(Refusal::Unsupported(ref n)) if n.len() == 2));
    }

    #[test]
    fn stale_nonces_are_answered_a_bounded_number_of_times() {
        let c = Case::https();
        let mut tried = sent(Scheme::Digest, true);
        for _ in 0..MAX_STALE_RETRIES {
            let d = c.decide(&[STALE], tried);
            assert_eq!(nonce(&d), Some("n3"));
            assert!(matches!(d, Decision::Digest { stale: true, .. }));
            tried.record(&d);
        }
        assert_eq!(tried.stale_retries, MAX_STALE_RETRIES);
        assert_eq!(
            c.decide(&[STALE], tried),
            Decision::Refuse(Refusal::StaleLoop)
        );
        // stale=true means nothing to a request that carried no Digest answer: a first
        // challenge, or a rejection after an answer.
        let d = c.decide(&[STALE], fresh());
        assert!(matches!(d, Decision::Digest { stale: false, .. }));
        assert_eq!(
            c.decide(&[STALE], sent(Scheme::Basic, true)),
            Decision::Refuse(Refusal::Rejected(Scheme::Digest))
        );
    }

    #[test]
    fn tried_records_answers_only() {
        let mut t = fresh();
        t.record(&Decision::Refuse(Refusal::NoChallenge));
        assert_eq!(t, fresh());
        t.record(&Decision::Basic { clear_text: false });
        assert!(t.answered && t.stale_retries == 0);
    }

    #[test]
    fn client_auth_counts_nonces_and_names_its_scheme() {
        let ch = auth::parse_challenges(DIGEST).unwrap().remove(0);
        let mut a = ClientAuth::Digest(DigestSession::new(&ch, "c0ffee").unwrap());
        assert_eq!(a.scheme(), Scheme::Digest);
        let first = a.authorization("POST", "/acs", "u", "p");
        let second = a.authorization("POST", "/acs", "u", "p");
        assert!(first.contains("nc=00000001"), "{first}");
        assert!(second.contains("nc=00000002"), "{second}");
        let mut b = ClientAuth::Basic;
        assert_eq!(b.scheme().name(), "Basic");
        assert_eq!(
            b.authorization("GET", "/", "u", "p"),
            auth::basic_authorization("u", "p")
        );
    }
}
