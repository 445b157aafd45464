//! The session's cookies (TR-069 §3.4.4, RFC 6265): `Set-Cookie` parsing, the jar, and the
//! cookie-date algorithm (which also reads the HTTP-dates of `Retry-After`). Pure: the time is
//! passed in; the jar is bounded ([`MAX_COOKIES`], [`MAX_JAR_BYTES`]).

/// Cookie jar limits, so a hostile ACS cannot grow it without bound.
pub const MAX_COOKIES: usize = 32;
pub const MAX_COOKIE_BYTES: usize = 4096;
pub const MAX_JAR_BYTES: usize = 16 * 1024;

/// What a cookie is matched against: the request URL's scheme, host and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site<'a> {
    pub https: bool,
    /// Lower-case; an IPv6 literal in brackets.
    pub host: &'a str,
    /// The path alone (RFC 6265 §5.1.4).
    pub path: &'a str,
}

/// One stored cookie (RFC 6265 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: String,
    pub host_only: bool,
    pub path: String,
    pub secure: bool,
    pub expires: Option<u64>,
}

impl Cookie {
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len()
    }

    fn matches(&self, site: &Site<'_>, now: u64) -> bool {
        let domain_ok = if self.host_only {
            site.host == self.domain
        } else {
            domain_match(site.host, &self.domain)
        };
        domain_ok
            && path_match(site.path, &self.path)
            && (!self.secure || site.https)
            && self.expires.is_none_or(|t| t > now)
    }
}

/// The session's cookies (TR-069 §3.4.4: the CPE returns every cookie the ACS set during the
/// session on each later POST). Bounded by [`MAX_COOKIES`] and [`MAX_JAR_BYTES`].
#[derive(Debug, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Stores one `Set-Cookie` received from `site` (RFC 6265 §5.2 and §5.3). Invalid
    /// cookies are ignored; an expiry in the past deletes the cookie.
    pub fn store(&mut self, set_cookie: &str, site: &Site<'_>, now: u64) {
        let Some(c) = parse_set_cookie(set_cookie, site, now) else {
            log::debug!("ignoring an unusable Set-Cookie from the ACS");
            return;
        };
        self.cookies
            .retain(|o| !(o.name == c.name && o.domain == c.domain && o.path == c.path));
        if c.expires.is_some_and(|t| t <= now) {
            return;
        }
        self.cookies.retain(|o| o.expires.is_none_or(|t| t > now));
        let total: usize = self.cookies.iter().map(Cookie::size).sum();
        if self.cookies.len() >= MAX_COOKIES || total + c.size() > MAX_JAR_BYTES {
            log::warn!("cookie jar full; ignoring a cookie from the ACS");
            return;
        }
        self.cookies.push(c);
    }

    /// The `Cookie` header for a request to `site` (RFC 6265 §5.4): longer paths first.
    pub fn header(&self, site: &Site<'_>, now: u64) -> Option<String> {
        let mut sel: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.matches(site, now))
            .collect();
        if sel.is_empty() {
            return None;
        }
        // A stable sort keeps creation order among equal path lengths.
        sel.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let parts: Vec<String> = sel
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(parts.join("; "))
    }

    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// The stored cookies, oldest first.
    pub fn cookies(&self) -> &[Cookie] {
        &self.cookies
    }
}

pub fn parse_set_cookie(header: &str, site: &Site<'_>, now: u64) -> Option<Cookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || name.len() + value.len() > MAX_COOKIE_BYTES {
        return None;
    }
    let visible = |s: &str| s.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !visible(name) || name.contains('=') || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut c = Cookie {
        name: name.to_owned(),
        value: value.to_owned(),
        domain: site.host.to_owned(),
        host_only: true,
        path: default_path(site.path),
        secure: false,
        expires: None,
    };
    let mut max_age: Option<i64> = None;
    let mut expires: Option<u64> = None;
    for attr in parts {
        let (k, v) = match attr.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (attr.trim(), ""),
        };
        if k.eq_ignore_ascii_case("max-age") {
            let digits = v.strip_prefix('-').unwrap_or(v);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                // Out-of-range values saturate (RFC 6265 §5.2.2).
                max_age = Some(v.parse::<i64>().unwrap_or(if v.starts_with('-') {
                    i64::MIN
                } else {
                    i64::MAX
                }));
            }
        } else if k.eq_ignore_ascii_case("expires") {
            if let Some(t) = parse_cookie_date(v) {
                expires = Some(t);
            }
        } else if k.eq_ignore_ascii_case("domain") {
            let d = v.trim_start_matches('.').to_ascii_lowercase();
            if !d.is_empty() {
                // §5.3 step 6: a Domain the request host does not match rejects the cookie.
                if !domain_match(site.host, &d) {
                    return None;
                }
                c.domain = d;
                c.host_only = c.domain == site.host;
            }
        } else if k.eq_ignore_ascii_case("path") {
            if v.starts_with('/') {
                c.path = v.to_owned();
            }
        } else if k.eq_ignore_ascii_case("secure") {
            c.secure = true;
        }
    }
    c.expires = match max_age {
        Some(n) if n <= 0 => Some(0),
        Some(n) => Some(now.saturating_add(n.unsigned_abs())),
        None => expires.map(|t| t.max(1)),
    };
    Some(c)
}

/// RFC 6265 §5.1.3; an IP address only matches itself.
fn domain_match(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    let is_ip = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
    !is_ip
        && host.len() > domain.len()
        && host.ends_with(domain)
        && host
            .as_bytes()
            .get(host.len() - domain.len() - 1)
            .is_some_and(|b| *b == b'.')
}

/// RFC 6265 §5.1.4 default-path.
fn default_path(path: &str) -> String {
    if !path.starts_with('/') {
        return "/".to_owned();
    }
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path.get(..i).unwrap_or("/").to_owned(),
    }
}

/// RFC 6265 §5.1.4 path-match.
fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// The cookie-date algorithm of RFC 6265 §5.1.1 (also reads HTTP-dates), as Unix seconds.
pub fn parse_cookie_date(s: &str) -> Option<u64> {
    let is_delim = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(is_delim).filter(|t| !t.is_empty()) {
        if time.is_none() {
            if let Some(t) = parse_hms(tok) {
                time = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = leading_digits(tok, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            let m = tok.get(..3).map(str::to_ascii_lowercase);
            if let Some(i) = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ]
            .iter()
            .position(|n| m.as_deref() == Some(*n))
            {
                month = Some(i as u64 + 1);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = leading_digits(tok, 2, 4) {
                year = Some(y);
            }
        }
    }
    let (h, mi, se) = time?;
    let (d, mo, mut y) = (day?, month?, year?);
    if (70..=99).contains(&y) {
        y += 1900;
    } else if y <= 69 {
        y += 2000;
    }
    if !(1..=31).contains(&d) || y < 1601 || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    // "If no such date exists" (§5.1.1 step 6): 31 February is not 3 March.
    let (yi, mo32) = (i64::try_from(y).ok()?, u32::try_from(mo).ok()?);
    if d > u64::from(crate::cwmp::time::days_in_month(yi, mo32)) {
        return None;
    }
    let days = days_from_civil(y, mo, d)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// `min..=max` digits at the start of `tok`, not followed by another digit.
fn leading_digits(tok: &str, min: usize, max: usize) -> Option<u64> {
    let n = tok.bytes().take_while(u8::is_ascii_digit).count();
    if n < min || n > max {
        return None;
    }
    tok.get(..n)?.parse().ok()
}

/// `hh:mm:ss` with 1–2 digits each (RFC 6265 §5.1.1 hms-time; only the seconds may be followed
/// by more, a non-digit first).
fn parse_hms(tok: &str) -> Option<(u64, u64, u64)> {
    let mut it = tok.splitn(3, ':');
    let whole = |f: &str| {
        let n = leading_digits(f, 1, 2)?;
        f.bytes().all(|b| b.is_ascii_digit()).then_some(n)
    };
    let h = whole(it.next()?)?;
    let m = whole(it.next()?)?;
    let s = leading_digits(it.next()?, 1, 2)?;
    Some((h, m, s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the schedule's count); `None` before
/// the epoch or for a year, month or day out of range.
pub fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let days = crate::cwmp::time::days_from_civil(
        i64::try_from(y).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(d).ok()?,
    );
    u64::try_from(days).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::url::Url;

    /// A URL's site, owned for the test.
    struct Owned {
        https: bool,
        host: String,
        path: String,
    }

    impl Owned {
        fn site(&self) -> Site<'_> {
            Site {
                https: self.https,
                host: &self.host,
                path: &self.path,
            }
        }
    }

    fn owned(url: &str) -> Owned {
        let u = Url::parse(url).unwrap();
        Owned {
            https: u.is_https(),
            host: u.host.to_ascii_lowercase(),
            path: u.path().to_owned(),
        }
    }

    #[test]
    fn cookie_dates() {
        // RFC 9110 IMF-fixdate, RFC 850 and asctime forms, and a Netscape form with dashes.
        let want = 784_111_777; // 1994-11-06 08:49:37 UTC
        assert_eq!(
            parse_cookie_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(want)
        );
        assert_eq!(
            parse_cookie_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(want)
        );
        assert_eq!(parse_cookie_date("Sun Nov  6 08:49:37 1994"), Some(want));
        assert_eq!(parse_cookie_date("Thu, 01-Jan-1970 00:00:01 GMT"), Some(1));
        // Only the seconds of an hms-time may run on into other characters.
        assert_eq!(
            parse_cookie_date("Sun, 06 Nov 1994 08:49:37x GMT"),
            Some(want)
        );
        assert_eq!(
            parse_cookie_date("Wed, 29 Feb 2040 23:59:59 GMT"),
            Some(2_214_172_799)
        );
        for bad in [
            "",
            "tomorrow",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "06 Nov 1994",
            "Thu, 31 Feb 2000 00:00:00 GMT",
            "Sat, 29 Feb 2100 00:00:00 GMT",
            "Thu, 31 Apr 2000 00:00:00 GMT",
            "Sun, 06 Nov 1994 0x:49:37 GMT",
        ] {
            assert_eq!(parse_cookie_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookie_jar_stores_matches_and_expires() {
        let t = owned("http://acs.example:7547/cwmp/acs");
        let t = t.site();
        let now = 1_000_000;
        let mut jar = CookieJar::default();
        jar.store("session=abc123; Path=/; HttpOnly", &t, now);
        jar.store("SerialNumber=0010; path=/", &t, now);
        jar.store("scoped=1", &t, now); // default path /cwmp
        jar.store("secure=1; Secure", &t, now);
        jar.store("other=1; Domain=elsewhere.example", &t, now); // rejected
        jar.store("bad name=1", &t, now);
        jar.store("noequals", &t, now);
        assert_eq!(
            jar.header(&t, now).as_deref(),
            Some("scoped=1; session=abc123; SerialNumber=0010")
        );
        // Replaced in place, deleted by Max-Age=0 and by an Expires in the past.
        jar.store("session=def; Path=/", &t, now);
        jar.store("scoped=; Max-Age=0", &t, now);
        jar.store(
            "SerialNumber=x; path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
            &t,
            now,
        );
        assert_eq!(jar.header(&t, now).as_deref(), Some("session=def"));
        // Max-Age expires later; Secure cookies go over https only.
        jar.store("short=1; Max-Age=10; Path=/", &t, now);
        assert!(jar.header(&t, now + 5).unwrap().contains("short=1"));
        assert!(!jar.header(&t, now + 11).unwrap().contains("short=1"));
        let ts = owned("https://acs.example/cwmp/acs");
        let ts = ts.site();
        jar.store("s2=1; Secure; Path=/", &ts, now);
        assert!(jar.header(&ts, now).unwrap().contains("s2=1"));
        assert!(!jar.header(&t, now).unwrap().contains("s2=1"));
        // Domain cookies reach subdomains; host-only ones do not.
        jar.store(
            "dom=1; Domain=.example.example; Path=/",
            &owned("http://a.example.example/").site(),
            now,
        );
        assert!(jar
            .header(&owned("http://b.example.example/").site(), now)
            .unwrap()
            .contains("dom=1"));
        assert_eq!(
            jar.header(&owned("http://other.example/").site(), now),
            None
        );
        jar.clear();
        assert_eq!(jar.header(&t, now), None);
    }

    #[test]
    fn cookie_jar_is_bounded() {
        let t = owned("http://acs/");
        let t = t.site();
        let mut jar = CookieJar::default();
        for i in 0..1000 {
            jar.store(&format!("c{i}={}", "v".repeat(100)), &t, 0);
        }
        assert!(jar.cookies().len() <= MAX_COOKIES);
        jar.clear();
        jar.store(&format!("big={}", "v".repeat(MAX_COOKIE_BYTES)), &t, 0);
        assert!(jar.cookies().is_empty());
        for i in 0..10 {
            jar.store(&format!("m{i}={}", "v".repeat(4000)), &t, 0);
        }
        let total: usize = jar.cookies().iter().map(Cookie::size).sum();
        assert!(total <= MAX_JAR_BYTES && !jar.cookies().is_empty());
    }

    #[test]
    fn paths_and_domains() {
        assert_eq!(default_path("/"), "/");
        assert_eq!(default_path("/acs"), "/");
        assert_eq!(default_path("/a/b/c"), "/a/b");
        assert!(path_match("/a/b", "/a"));
        assert!(path_match("/a/b", "/a/"));
        assert!(!path_match("/ab", "/a"));
        assert!(domain_match("a.b.c", "b.c"));
        assert!(!domain_match("ab.c", "b.c"));
        assert!(!domain_match("1.2.3.4", "2.3.4"));
    }
}
