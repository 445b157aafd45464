//! HTTP authentication as pure functions: the auth-param parser (RFC 7235 §2.1), HTTP Digest
//! (RFC 7616: MD5, MD5-sess, SHA-256, SHA-256-sess, qop=auth) for both the client and the
//! server side, and Basic (RFC 7617).
