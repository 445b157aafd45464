//! Fuzzes HTTP authentication (RFC 7235 §2.1 auth-params, RFC 7616 Digest, RFC 7617 Basic;
//! TR-069 §3.4.4 towards the ACS and §3.2.2 on the Connection Request listener) in both
//! directions, on arbitrary text:
//!
//! - client side: the text as a `WWW-Authenticate` value ([`auth::parse_challenges`]); every
//!   Digest challenge the client agrees to answer gives an `Authorization` that a
//!   [`DigestServer`] with the same realm, algorithm and opaque must accept (the nonce and nonce
//!   count it reports must be the challenge's and 1), and the server's own challenge for the same
//!   values must parse back to them;
//! - server side: the text as an `Authorization` value ([`auth::parse_credentials`],
//!   [`DigestServer::verify`], [`auth::basic_credentials`], [`auth::verify_basic`]); Basic
//!   credentials the parser accepts must re-encode and decode to the same pair.
//!
//! Nothing may panic; every header is bounded by [`auth::MAX_HEADER_LEN`].
#![no_main]

use cwmpd::http::auth::{
    self, Algorithm, AuthParams, DigestServer, DigestSession, NonceStatus, Preferred, Verdict,
};
use libfuzzer_sys::fuzz_target;

const METHOD: &str = "GET";
const URI: &str = "/cr/path?x=1";
const USER: &str = "cpe-user";
const PASS: &str = "s3cr\"et\\";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    client_side(text);
    server_side(text);
});

fn client_side(text: &str) {
    let Ok(challenges) = auth::parse_challenges(text) else {
        return;
    };
    assert!(
        !challenges.is_empty(),
        "parse_challenges returned no challenge"
    );
    let _ = auth::preferred_challenge(&challenges);
    for c in &challenges {
        let _ = auth::is_stale(c);
        let Ok(alg) = auth::digest_algorithm(c) else {
            continue;
        };
        let Ok(mut session) = DigestSession::new(c, "0a4f113b") else {
            continue;
        };
        assert_eq!(session.algorithm(), alg);
        let authorization = session.authorization(METHOD, URI, USER, PASS);
        assert_eq!(session.nc(), 1);
        let offers_auth = c
            .param("qop")
            .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
        // Our server demands qop=auth; a longer header than the limit is refused by design.
        if !offers_auth || authorization.len() > auth::MAX_HEADER_LEN {
            continue;
        }
        let server = DigestServer {
            realm: c.param("realm").unwrap_or("").to_owned(),
            algorithm: alg,
            opaque: c.param("opaque").map(str::to_owned),
        };
        let nonce = session.nonce().to_owned();
        let verdict = server.verify(&authorization, METHOD, URI, USER, PASS, |n, nc| {
            assert_eq!(
                n, nonce,
                "the server saw another nonce than the client sent"
            );
            assert_eq!(
                nc, 1,
                "the server saw another nonce count than the client sent"
            );
            NonceStatus::Valid
        });
        assert_eq!(
            verdict,
            Verdict::Ok,
            "our own answer to {c:?} is refused: {authorization}"
        );
        // The server's challenge for the same values parses back to them.
        let challenge = server.challenge(&nonce, true);
        if challenge.len() <= auth::MAX_HEADER_LEN {
            let back = match auth::parse_challenges(&challenge) {
                Ok(back) => back,
                Err(e) => panic!("our own challenge does not parse: {e}: {challenge}"),
            };
            let [one] = back.as_slice() else {
                panic!("our own challenge parses as {} challenges", back.len());
            };
            assert_eq!(one.param("realm"), Some(server.realm.as_str()));
            assert_eq!(one.param("nonce"), Some(nonce.as_str()));
            assert_eq!(one.param("opaque"), server.opaque.as_deref());
            assert!(auth::is_stale(one));
            assert_eq!(auth::digest_algorithm(one).ok(), Some(alg));
            assert!(matches!(
                auth::preferred_challenge(&back),
                Some(Preferred::Digest(_))
            ));
        }
    }
}

fn server_side(text: &str) {
    let cred: Option<AuthParams> = auth::parse_credentials(text).ok();
    for algorithm in [Algorithm::Md5, Algorithm::Sha256Sess] {
        let server = DigestServer {
            realm: cred
                .as_ref()
                .and_then(|c| c.param("realm"))
                .unwrap_or("cwmpd")
                .to_owned(),
            algorithm,
            opaque: cred
                .as_ref()
                .and_then(|c| c.param("opaque"))
                .map(str::to_owned),
        };
        // A fuzzed header cannot know the password's digest: only a forged success would pass.
        let verdict = server.verify(text, METHOD, URI, USER, PASS, |_, _| NonceStatus::Valid);
        assert_ne!(
            verdict,
            Verdict::Ok,
            "a forged Authorization was accepted: {text}"
        );
    }
    if let Ok((user, pass)) = auth::basic_credentials(text) {
        assert!(auth::verify_basic(text, &user, &pass));
        if !user.contains(':') {
            let again = auth::basic_authorization(&user, &pass);
            if again.len() <= auth::MAX_HEADER_LEN {
                let back = auth::basic_credentials(&again);
                assert_eq!(
                    back,
                    Ok((user, pass)),
                    "Basic credentials changed in a round trip"
                );
            }
        }
    }
    if let Some(decoded) = auth::base64_decode(text) {
        // Decoding accepts padding-free input, so compare after re-encoding and decoding again.
        assert_eq!(
            auth::base64_decode(&auth::base64_encode(&decoded)).as_deref(),
            Some(decoded.as_slice())
        );
    }
}
