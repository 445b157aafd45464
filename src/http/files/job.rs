//! One transfer's requests: the URL checked and split, the request sent again after a 401
//! (answered by [`policy::decide`]), a redirect or a 417, and every failure mapped to its
//! TransferComplete fault (TR-069 §A.5.1).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use ureq::http::Response;
use ureq::{Body, SendBody};

use super::{
    default_user_agent, failure, quoted, shown, ClientConfig, Direction, UploadMethod, AWAIT_100,
    MAX_ERROR_BODY, MAX_REDIRECTS,
};
use crate::cwmp::fault::{TransferFailure, TransferFault};
use crate::http::acs::{self, Target, TransportError};
use crate::http::auth::DigestSession;
use crate::http::policy::{self, ClientAuth, Decision, Refusal, Tried, Unauthorized};
use crate::http::url::{percent_decode, redact, Url, UrlError};

/// One request to make, possibly several times (401, redirects).
#[derive(Clone, Copy)]
pub(super) enum Op<'a> {
    Download,
    Upload { method: UploadMethod, src: &'a Path },
}

impl Op<'_> {
    fn method(&self) -> &'static str {
        match self {
            Op::Download => "GET",
            Op::Upload { method, .. } => method.as_str(),
        }
    }
}

/// One transfer: the validated URL, the credentials to use, the HTTP agent.
pub(super) struct Job {
    direction: Direction,
    target: Target,
    username: String,
    /// Never logged nor put in a message.
    password: String,
    allow_basic_over_http: bool,
    agent: ureq::Agent,
    rng: ring::rand::SystemRandom,
}

impl Job {
    /// Checks the URL (§A.3.2.8: an unsupported scheme is 9013) and sets up the agent.
    pub(super) fn new(
        cfg: &ClientConfig,
        url: &str,
        username: &str,
        password: &str,
        direction: Direction,
    ) -> Result<Job, TransferFailure> {
        let split = split_url(url, direction)?;
        let target = Target::parse(&split.url).map_err(|_| invalid(&split.url, direction))?;
        let (username, password) = match (username.is_empty(), split.userinfo) {
            (true, Some((u, p))) => (u, p),
            _ => (username.to_owned(), password.to_owned()),
        };
        let agent = build_agent(cfg, target.https).map_err(|detail| {
            failure(
                TransferFault::CannotContact,
                false,
                format!(
                    "cannot set up TLS for {}: {}",
                    shown(&target),
                    quoted(&detail)
                ),
            )
        })?;
        Ok(Job {
            direction,
            target,
            username,
            password,
            allow_basic_over_http: cfg.allow_basic_over_http,
            agent,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// Sends the request until it gets a final answer: a 401 is answered once (per origin),
    /// redirects are followed. Returns the success response (2xx, or 303 for an upload) with
    /// its body unread and the URL that gave it.
    pub(super) fn exchange(&self, op: Op<'_>) -> Result<(Target, Response<Body>), TransferFailure> {
        let mut target = self.target.clone();
        // Credentials go to the origin of the URL the ACS gave, never to another one.
        let mut auth: Option<ClientAuth> = None;
        let mut tried = Tried::default();
        let mut redirects = 0u32;
        let mut expect_100 = true;
        loop {
            let authorization = auth.as_mut().map(|a| {
                a.authorization(
                    op.method(),
                    &target.request_uri,
                    &self.username,
                    &self.password,
                )
            });
            tried.sent = auth.as_ref().map(ClientAuth::scheme);
            let resp = self.send(&target, op, authorization, expect_100)?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => return Ok((target, resp)),
                303 if matches!(op, Op::Upload { .. }) => return Ok((target, resp)),
                401 => {
                    let www_authenticate: Vec<String> = resp
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok().map(str::to_owned))
                        .collect();
                    drain(resp);
                    self.answer_challenge(&www_authenticate, &target, &mut auth, &mut tried)?;
                }
                301 | 302 | 303 | 307 | 308 => {
                    let location = resp
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    drain(resp);
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(failure(
                            self.direction.refused(),
                            false,
                            format!(
                                "more than {MAX_REDIRECTS} redirects for {}",
                                shown(&self.target)
                            ),
                        ));
                    }
                    let next = acs::redirect_target(&target, location.as_deref()).map_err(|e| {
                        let detail = match e {
                            TransportError::BadRedirect(m) => {
                                m.replace("the ACS URL", "the redirect URL")
                            }
                            other => other.to_string(),
                        };
                        failure(
                            self.direction.refused(),
                            false,
                            format!(
                                "unusable redirect ({status}) from {}: {}",
                                shown(&target),
                                quoted(&detail)
                            ),
                        )
                    })?;
                    log::info!(
                        "{} redirected ({status}) from {} to {}",
                        self.direction.noun(),
                        shown(&target),
                        shown(&next)
                    );
                    if !next.same_origin(&target) {
                        auth = None;
                    }
                    tried.answered = false;
                    target = next;
                }
                417 if expect_100 => {
                    // The server does not do `Expect: 100-continue` (RFC 9110 §10.1.1): again
                    // without it.
                    drain(resp);
                    expect_100 = false;
                }
                _ => return Err(self.status_failure(status, &target)),
            }
        }
    }

    /// Sends one request. Errors before a response are "cannot contact" (9015), except an
    /// upload cut while its body was being sent (9011).
    fn send(
        &self,
        target: &Target,
        op: Op<'_>,
        authorization: Option<String>,
        expect_100: bool,
    ) -> Result<Response<Body>, TransferFailure> {
        match op {
            Op::Download => {
                let mut req = self.agent.get(target.url.as_str());
                if let Some(a) = authorization {
                    req = req.header("Authorization", a);
                }
                req.call().map_err(|e| self.send_failure(e, target, false))
            }
            Op::Upload { method, src } => {
                let unreadable = |e: io::Error| {
                    failure(
                        TransferFault::Upload,
                        false,
                        format!(
                            "cannot read the file to upload {}: {}",
                            src.display(),
                            quoted(&e.to_string())
                        ),
                    )
                };
                // Never through a link: the file is the one the produce hook wrote.
                use std::os::unix::fs::OpenOptionsExt as _;
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(src)
                    .map_err(unreadable)?;
                let len = file.metadata().map_err(unreadable)?.len();
                let mut reader = CountingReader {
                    inner: file,
                    read: 0,
                    error: None,
                };
                let mut req = match method {
                    UploadMethod::Put => self.agent.put(target.url.as_str()),
                    UploadMethod::Post => self.agent.post(target.url.as_str()),
                };
                req = req
                    .header("Content-Length", len.to_string())
                    .header("Content-Type", "application/octet-stream");
                if expect_100 && len > 0 {
                    req = req.header("Expect", "100-continue");
                }
                if let Some(a) = authorization {
                    req = req.header("Authorization", a);
                }
                let result = req.send(SendBody::from_reader(&mut reader));
                if let Some(e) = reader.error.take() {
                    return Err(unreadable(e));
                }
                result.map_err(|e| self.send_failure(e, target, reader.read > 0))
            }
        }
    }

    /// The fault of a request that got no response.
    fn send_failure(&self, e: ureq::Error, target: &Target, body_started: bool) -> TransferFailure {
        let text = quoted(&e.to_string());
        let url = shown(target);
        match acs::classify(e) {
            TransportError::Tls(_) => failure(
                TransferFault::CannotContact,
                true,
                format!("TLS with the file server failed for {url}: {text}"),
            ),
            TransportError::Connect(_) => failure(
                TransferFault::CannotContact,
                true,
                format!("cannot connect to the file server for {url}: {text}"),
            ),
            _ if body_started => failure(
                self.direction.generic(),
                true,
                format!("the upload to {url} broke off: {text}"),
            ),
            _ => failure(
                TransferFault::CannotContact,
                true,
                format!("no answer from the file server for {url}: {text}"),
            ),
        }
    }

    /// The fault of a final status that is neither success, 401 nor a redirect: a refusal
    /// (4xx, 9016 / 9011) or a server error (5xx, worth another attempt).
    fn status_failure(&self, status: u16, target: &Target) -> TransferFailure {
        let reason = ureq::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        // 408 Request Timeout and 429 Too Many Requests say "later" as much as a 5xx does.
        let retryable = status >= 500 || status == 408 || status == 429;
        failure(
            self.direction.refused(),
            retryable,
            format!(
                "the file server answered {status} {reason} for {}",
                shown(target)
            )
            .replace("  ", " ")
            .trim_end()
            .to_owned(),
        )
    }

    /// Picks the answer to a 401 (RFC 7235 §3.1, decided by [`policy::decide`]) or says why
    /// there is none (9012).
    fn answer_challenge(
        &self,
        www_authenticate: &[String],
        target: &Target,
        auth: &mut Option<ClientAuth>,
        tried: &mut Tried,
    ) -> Result<(), TransferFailure> {
        let fail = |why: String| failure(TransferFault::ServerAuthentication, false, why);
        let url = shown(target);
        let facts = Unauthorized {
            origin: &target.origin(),
            credentials_origin: &self.target.origin(),
            has_username: !self.username.is_empty(),
            allow_basic_over_http: self.allow_basic_over_http,
        };
        let decision = policy::decide(www_authenticate.iter().map(String::as_str), &facts, tried);
        tried.record(&decision);
        match decision {
            Decision::Digest { challenge, .. } => {
                let session = DigestSession::new(&challenge, &self.cnonce()?).map_err(|e| {
                    fail(format!(
                        "cannot answer the Digest challenge of {url}: {}",
                        quoted(&e.to_string())
                    ))
                })?;
                log::debug!(
                    "answering a Digest {} challenge from {url}",
                    session.algorithm().name()
                );
                *auth = Some(ClientAuth::Digest(session));
                Ok(())
            }
            Decision::Basic { clear_text } => {
                if clear_text {
                    log::warn!(
                        "{url} asks for Basic authentication over plain http: the password goes \
                         in clear text (allow_basic_over_http is set)"
                    );
                }
                *auth = Some(ClientAuth::Basic);
                Ok(())
            }
            Decision::Refuse(why) => Err(fail(match why {
                Refusal::OtherOrigin => format!(
                    "{url} (redirected from {}) asks for credentials, which are only sent to {}",
                    shown(&self.target),
                    self.target.origin()
                ),
                Refusal::NoUsername => {
                    format!("{url} requires authentication but no Username was given")
                }
                Refusal::StaleLoop => format!("{url} keeps declaring the Digest nonce stale"),
                Refusal::Rejected(scheme) => format!(
                    "{url} rejected the Username or Password ({})",
                    scheme.name()
                ),
                Refusal::BasicOverHttp => format!(
                    "{url} asks for Basic authentication over plain http, which would send the \
                     password in clear text: refused (only Digest is answered over http unless \
                     [acs] allow_basic_over_http is set)"
                ),
                Refusal::CredentialsRefused => {
                    format!("{url} refused the credentials (wrong Username or Password)")
                }
                Refusal::NoChallenge => {
                    format!("{url} answered 401 without a usable WWW-Authenticate challenge")
                }
                Refusal::Unsupported(schemes) => {
                    let schemes: Vec<String> = schemes.iter().map(|s| quoted(s)).collect();
                    format!(
                        "{url} offers no supported authentication ({})",
                        schemes.join(", ")
                    )
                }
            })),
        }
    }

    /// A fresh client nonce: 16 random bytes in hex (RFC 7616 §3.4).
    fn cnonce(&self) -> Result<String, TransferFailure> {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 16];
        self.rng.fill(&mut b).map_err(|_| {
            failure(
                self.direction.generic(),
                false,
                "no randomness for the Digest cnonce".to_owned(),
            )
        })?;
        Ok(b.iter().map(|x| format!("{x:02x}")).collect())
    }
}

/// The file of an upload as ureq reads it: counts what was read (to tell a cut upload from a
/// server that could not be reached) and keeps a local read error apart from network errors.
struct CountingReader {
    inner: File,
    read: u64,
    error: Option<io::Error>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(io::Error::new(kind, "reading the file to upload failed"))
            }
        }
    }
}

/// A URL with its user information taken out (RFC 3986 §3.2.1).
pub(super) struct SplitUrl {
    /// The URL without user information and fragment.
    pub(super) url: String,
    /// The percent-decoded user name and password, when the URL had them.
    pub(super) userinfo: Option<(String, String)>,
}

/// 9013 for an http(s) URL that cannot be used (shown redacted).
fn invalid(url: &str, direction: Direction) -> TransferFailure {
    failure(
        TransferFault::UnsupportedProtocol,
        false,
        format!(
            "the {} URL {} is not a valid http(s) URL",
            direction.noun(),
            quoted(&redact(url))
        ),
    )
}

/// Takes the user information out of `url` and refuses any scheme but http and https (9013).
pub(super) fn split_url(url: &str, direction: Direction) -> Result<SplitUrl, TransferFailure> {
    let url = url.trim();
    let unsupported = |what: String| {
        failure(
            TransferFault::UnsupportedProtocol,
            false,
            format!("unsupported protocol for the {}: {what}", direction.noun()),
        )
    };
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(UrlError::NoScheme) => {
            return Err(unsupported(if url.is_empty() {
                "the URL is empty".to_owned()
            } else if url.contains('@') {
                "the URL is not an http or https URL".to_owned()
            } else {
                format!("{} is not an http or https URL", quoted(&redact(url)))
            }))
        }
        // Its authority is not host[:port]: refused before any connection.
        Err(UrlError::BadAuthority) => {
            let scheme = url.split_once("://").map_or("", |(s, _)| s);
            if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
                return Err(unsupported(quoted(&redact(url))));
            }
            return Err(invalid(url, direction));
        }
    };
    let clean = parsed.without_userinfo();
    if !(parsed.is_http() || parsed.is_https()) {
        return Err(unsupported(quoted(&redact(&clean))));
    }
    let userinfo = parsed.userinfo.map(|u| match u.split_once(':') {
        Some((name, pass)) => (percent_decode(name), percent_decode(pass)),
        None => (percent_decode(u), String::new()),
    });
    Ok(SplitUrl {
        url: clean,
        userinfo,
    })
}

/// Reads at most [`MAX_ERROR_BODY`] of a response we do not use, so the connection can serve
/// the next request; a longer body is dropped with its connection.
pub(super) fn drain(resp: Response<Body>) {
    let mut body = resp
        .into_body()
        .into_with_config()
        .limit(MAX_ERROR_BODY)
        .reader();
    let _ = io::copy(&mut body, &mut io::sink());
}

/// The ureq agent of one transfer: the ACS connection's TLS setup, no automatic redirects (they
/// are followed here), HTTP statuses as responses, and a bound on every wait.
fn build_agent(cfg: &ClientConfig, https: bool) -> Result<ureq::Agent, String> {
    let tls = cfg.tls.client_config(https)?;
    let timeout = if cfg.timeout.is_zero() {
        acs::DEFAULT_TIMEOUT
    } else {
        cfg.timeout
    };
    let user_agent = if !cfg.user_agent.is_empty()
        && cfg.user_agent.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        cfg.user_agent.clone()
    } else {
        default_user_agent()
    };
    // A firmware image may take many minutes: there is no budget for the whole body, but each
    // read and write is bounded, as are connecting and waiting for the response headers.
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .https_only(false)
        .tls_config(tls)
        .user_agent(user_agent.as_str())
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .max_idle_age(timeout)
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_await_100(Some(AWAIT_100.min(timeout / 2)))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .build();
    Ok(acs::new_agent(&config))
}
