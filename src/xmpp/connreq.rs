//! The XMPP Connection Request of TR-069 Annex K: an IQ from the ACS's JID carrying the
//! Connection Request credentials, of type `get` as Annex K's example and GenieACS send it
//! (`lib/connection-request.ts`), `set` accepted too (the request has an effect),
//!
//! ```text
//! <iq type="get" id="cr001" from="acs@xmpp.example.com/acs" to="cpe@xmpp.example.com/cwmp">
//!   <connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">
//!     <username>ConnectionRequestUsername</username>
//!     <password>ConnectionRequestPassword</password>
//!   </connectionRequest>
//! </iq>
//! ```
//!
//! answered with an IQ `result` (then a `6 CONNECTION REQUEST` session) or an IQ `error`:
//! `service-unavailable` (type `cancel`) when ManagementServer.ConnReqAllowedJabberIDs is not
//! empty and holds neither the sender's full nor its bare JID, `not-authorized` (type `auth`)
//! when the credentials are wrong (the allowed list first: a JID not on it learns nothing of
//! the password). Any other IQ `get` or `set` gets `feature-not-implemented` (RFC 6120 §8.2.3:
//! every request is answered); results and errors addressed to the CPE are ignored. Pure: the
//! stanza is text, the answer is text; the password is compared in constant time.

use crate::soap::xml_escape;

/// The namespace of the connection request (Annex K.2.2).
pub const NS: &str = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The longest id, JID, username and password read.
const MAX_FIELD: usize = 1024;

/// A connection request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub from: String,
    pub username: String,
    pub password: String,
}

/// What a stanza is, as far as the CPE is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    ConnectionRequest(Request),
    /// Another IQ `get` or `set`: its id and sender, to answer `feature-not-implemented`.
    OtherRequest {
        id: String,
        from: String,
    },
    /// Anything else (presence, messages, IQ results and errors): nothing to do.
    Ignored,
}

/// What to answer a connection request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// The sender is not in ConnReqAllowedJabberIDs.
    NotAllowed,
    /// Wrong username or password (or none set on the CPE).
    NotAuthorized,
    /// Not now: over the rate limit, or the sender spent its allowance of failures
    /// (`resource-constraint`, type `wait`: RFC 6120 §8.3.3.18, retry later).
    Busy,
}

/// Reads a stanza (from [`super::stream`]) within the bounds of a small XML document.
pub fn read(stanza: &str) -> Stanza {
    match super::stream::with_element(stanza, read_iq) {
        Ok(Some(s)) => s,
        _ => Stanza::Ignored,
    }
}

/// What an element is, as [`read`] tells.
fn read_iq(iq: roxmltree::Node<'_, '_>) -> Stanza {
    if iq.tag_name().name() != "iq" || iq.tag_name().namespace() != Some("jabber:client") {
        return Stanza::Ignored;
    }
    let field = |v: Option<&str>| -> Option<String> {
        v.filter(|s| s.len() <= MAX_FIELD).map(str::to_string)
    };
    let (Some(id), Some(from)) = (field(iq.attribute("id")), field(iq.attribute("from"))) else {
        return Stanza::Ignored;
    };
    let kind = iq.attribute("type").unwrap_or_default();
    if kind != "set" && kind != "get" {
        return Stanza::Ignored;
    }
    let child = iq.first_element_child();
    let cr = child.filter(|c| {
        c.tag_name().name() == "connectionRequest" && c.tag_name().namespace() == Some(NS)
    });
    let Some(cr) = cr else {
        return Stanza::OtherRequest { id, from };
    };
    let text = |name: &str| -> Option<String> {
        let n = cr.children().find(|c| {
            c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(NS)
        })?;
        field(Some(n.text().unwrap_or_default()))
    };
    match (text("username"), text("password")) {
        (Some(username), Some(password)) => Stanza::ConnectionRequest(Request {
            id,
            from,
            username,
            password,
        }),
        _ => Stanza::OtherRequest { id, from },
    }
}

/// The bare JID (`user@domain`) of a full one (`user@domain/resource`).
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// Decides on a request: the allowed JIDs first (an empty list allows any), then the
/// credentials (never with an empty password).
pub fn decide(r: &Request, allowed: &[String], username: &str, password: &str) -> Verdict {
    if !is_allowed(r, allowed) {
        Verdict::NotAllowed
    } else if !holds_credentials(r, username, password) {
        Verdict::NotAuthorized
    } else {
        Verdict::Accept
    }
}

/// Whether ConnReqAllowedJabberIDs lets the sender in: an empty list allows any; an item is a
/// full JID or a bare one (any resource). The bare parts compare without regard to ASCII case
/// (RFC 7622 case-maps the localpart and the domainpart), the resources exactly.
pub fn is_allowed(r: &Request, allowed: &[String]) -> bool {
    fn split(j: &str) -> (&str, Option<&str>) {
        j.split_once('/').map_or((j, None), |(b, r)| (b, Some(r)))
    }
    let same = |a: &str, b: &str| {
        let ((ab, ar), (bb, br)) = (split(a), split(b));
        ab.eq_ignore_ascii_case(bb) && ar == br
    };
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| same(a, &r.from) || same(a, bare(&r.from)))
}

/// Whether the request holds the Connection Request credentials (the password compared in
/// constant time; never an empty one).
pub fn holds_credentials(r: &Request, username: &str, password: &str) -> bool {
    let same = crate::http::auth::constant_time_eq(r.password.as_bytes(), password.as_bytes());
    !password.is_empty() && r.username == username && same
}

/// The IQ that answers a request `id` from `to`.
pub fn answer(id: &str, to: &str, verdict: Verdict) -> String {
    let (id, to) = (xml_escape(id), xml_escape(to));
    match verdict {
        Verdict::Accept => format!("<iq type='result' id='{id}' to='{to}'/>"),
        Verdict::NotAllowed => error(&id, &to, "cancel", "service-unavailable"),
        Verdict::NotAuthorized => error(&id, &to, "auth", "not-authorized"),
        Verdict::Busy => error(&id, &to, "wait", "resource-constraint"),
    }
}

/// `feature-not-implemented` for another request `id` from `to`.
pub fn not_implemented(id: &str, to: &str) -> String {
    error(
        &xml_escape(id),
        &xml_escape(to),
        "cancel",
        "feature-not-implemented",
    )
}

fn error(id: &str, to: &str, kind: &str, condition: &str) -> String {
    format!(
        "<iq type='error' id='{id}' to='{to}'><error type='{kind}'><{condition} xmlns='{STANZAS}'/></error></iq>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(from: &str, user: &str, pass: &str) -> String {
        format!(
            "<iq type=\"get\" id=\"cr001\" from=\"{from}\" to=\"cpe@x.test/cwmp\">\
             <connectionRequest xmlns=\"{NS}\"><username>{user}</username>\
             <password>{pass}</password></connectionRequest></iq>"
        )
    }

    #[test]
    fn annex_k_requests_are_read_and_decided() {
        let Stanza::ConnectionRequest(r) = read(&request("acs@x.test/acs", "u", "p&amp;w")) else {
            panic!("not read");
        };
        // The same request as an IQ `set`.
        let set = request("acs@x.test/acs", "u", "p&amp;w").replace("type=\"get\"", "type=\"set\"");
        assert_eq!(read(&set), Stanza::ConnectionRequest(r.clone()));
        assert_eq!(
            (
                r.id.as_str(),
                r.from.as_str(),
                r.username.as_str(),
                r.password.as_str()
            ),
            ("cr001", "acs@x.test/acs", "u", "p&w")
        );
        assert_eq!(decide(&r, &[], "u", "p&w"), Verdict::Accept);
        assert_eq!(decide(&r, &[], "u", "other"), Verdict::NotAuthorized);
        assert_eq!(decide(&r, &[], "v", "p&w"), Verdict::NotAuthorized);
        assert_eq!(decide(&r, &[], "u", ""), Verdict::NotAuthorized);
        let allowed = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            decide(&r, &allowed(&["acs@x.test"]), "u", "p&w"),
            Verdict::Accept
        );
        assert_eq!(
            decide(&r, &allowed(&["acs@x.test/acs"]), "u", "p&w"),
            Verdict::Accept
        );
        // Not on the list: refused before the password is looked at.
        assert_eq!(
            decide(
                &r,
                &allowed(&["acs@x.test/other", "eve@x.test"]),
                "u",
                "wrong"
            ),
            Verdict::NotAllowed
        );
        let a = answer("cr001", "acs@x.test/acs", Verdict::Accept);
        assert_eq!(a, "<iq type='result' id='cr001' to='acs@x.test/acs'/>");
        let e = answer("c'r", "a<b", Verdict::NotAuthorized);
        assert!(
            e.contains("id='c&apos;r'")
                && e.contains("to='a&lt;b'")
                && e.contains("<not-authorized"),
            "{e}"
        );
        assert!(answer("1", "a", Verdict::NotAllowed).contains("<service-unavailable"));
        // Case: the bare parts fold, the resource does not.
        assert!(is_allowed(&r, &allowed(&["ACS@X.test"])));
        assert!(is_allowed(&r, &allowed(&["acs@x.TEST/acs"])));
        assert!(!is_allowed(&r, &allowed(&["acs@x.test/ACS"])));
        let busy = answer("1", "a", Verdict::Busy);
        assert!(
            busy.contains("<error type='wait'><resource-constraint"),
            "{busy}"
        );
    }

    #[test]
    fn other_stanzas_are_answered_or_ignored() {
        assert_eq!(
            read("<iq type='get' id='v1' from='s@x.test'><query xmlns='jabber:iq:version'/></iq>"),
            Stanza::OtherRequest {
                id: "v1".into(),
                from: "s@x.test".into()
            }
        );
        for ignored in [
            "<iq type='result' id='x' from='s@x.test'/>",
            "<presence from='a@x.test'/>",
            "<message from='a@x.test'><body>hi</body></message>",
            "<iq type='set' from='a@x.test'/>",
            "<iq type='set' id='x' from='a@x.test'",
            "<!DOCTYPE x><iq/>",
        ] {
            assert_eq!(read(ignored), Stanza::Ignored, "{ignored}");
        }
        // A connection request in another namespace, or without its password: not one.
        let wrong_ns = request("a@x.test", "u", "p").replace(NS, "urn:other");
        assert!(matches!(read(&wrong_ns), Stanza::OtherRequest { .. }));
        assert!(not_implemented("9", "a@x.test").contains("<feature-not-implemented"));
    }
}
