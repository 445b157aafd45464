//! Fuzzes the parsers of the ACS's HTTP response headers in the transport (src/http/acs.rs,
//! reached through its hidden `transport::fuzzing` wrappers): `Set-Cookie` (RFC 6265 §5.2) and
//! the session's cookie jar (§5.3, §5.4), the cookie-date / HTTP-date parser (§5.1.1, RFC 9110
//! §5.6.7) with its calendar arithmetic, `Retry-After` (RFC 9110 §10.2.3), and the resolution of
//! a redirect's `Location` (RFC 3986 §5.2) with `remove_dot_segments` (§5.2.4).
//!
//! Input: the first byte picks the mode (`% 6`), the second the ACS URL (one of [`ACS_URLS`])
//! where a mode needs one; the rest is the mode's input:
//!
//! | mode | rest of the input | properties besides "no panic, no overflow" |
//! | --- | --- | --- |
//! | 0 | UTF-8, one `Set-Cookie` value a line | a cookie's name is visible ASCII without `=` `;`, its value printable ASCII without `;` (so neither has CR/LF), both are the first pair of the line, trimmed, within 4096 bytes; its domain is the host or a parent of a non-IP host (host-only: the host); its path starts with `/`. The jar of all lines holds at most 32 cookies and 16 KiB, no expired cookie, one per name/domain/path; its `Cookie` header is printable ASCII, made of the jar's pairs, and carries every cookie with path `/` the scheme allows |
//! | 1 | UTF-8, a date | a parsed date is at most 9999-12-31 23:59:59; as an `Expires` it sets the cookie's expiry (at least 1); `Retry-After` with it waits until then |
//! | 2 | bytes: Unix time, format, `now`, date, Max-Age, delta | a random time 1970..=9999 formatted as IMF-fixdate, RFC 850 (1970..=2069) or asctime parses back equal (also as `Expires` and `Retry-After`); `days_from_civil` of a random valid date 0..=9999 counts the days since 1970 (`None` before); `Max-Age` wins over `Expires`; delta-seconds parse to the number, capped at `u32::MAX` |
//! | 3 | UTF-8, a `Retry-After` value | digits parse to their value capped at `u32::MAX`; anything else is an HTTP-date until which to wait, or `None` |
//! | 4 | UTF-8, a path | the result starts with `/`, has no `.` or `..` segment, is a fixpoint, and for an absolute path equals RFC 3986 §5.2.4's algorithm (a reference written here) |
//! | 5 | UTF-8, a `Location` value | from https, never http; a relative reference stays on the base's origin and its path has no dot segment |
#![no_main]

use cwmpd::http::acs::fuzzing::{self as t, Cookie, Url};
use libfuzzer_sys::fuzz_target;

/// The ACS URLs the cookies come from and the redirects start at: http and https, a port, an
/// IPv4 and an IPv6 host, a subdomain, a query, dot segments in the path.
const ACS_URLS: [&str; 8] = [
    "http://acs.example:7547/cwmp/acs",
    "https://acs.example/cwmp/acs?id=1",
    "https://cpe.sub.acs.example/a/b/c",
    "http://192.0.2.1:7547/",
    "http://[2001:db8::1]:7547/acs",
    "https://ACS.Example/./a/../b/",
    "http://acs",
    "https://acs.example:8443/a%2Fb/c;p=1",
];

/// The time of the session (2023-11-14).
const NOW: u64 = 1_700_000_000;
/// The last second a 4-digit year reaches: 9999-12-31 23:59:59 UTC.
const MAX_TIME: u64 = 253_402_300_799;
/// src/http/acs.rs `MAX_COOKIE_BYTES`, `MAX_COOKIES`, `MAX_JAR_BYTES`.
const MAX_COOKIE_BYTES: usize = 4096;
const MAX_COOKIES: usize = 32;
const MAX_JAR_BYTES: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let [mode, url, rest @ ..] = data else {
        return;
    };
    let acs_url = ACS_URLS[usize::from(*url) % ACS_URLS.len()];
    match mode % 6 {
        2 => generated(rest),
        m => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            match m {
                0 => set_cookies(text, acs_url),
                1 => date_text(text),
                3 => retry_after_text(text),
                4 => dot_segments(text),
                _ => redirect(text, acs_url),
            }
        }
    }
});

/// The ACS URL as the transport parses it.
fn base(acs_url: &str) -> Url {
    match t::parse_url(acs_url) {
        Ok(u) => u,
        Err(e) => panic!("a harness ACS URL does not parse: {acs_url}: {e}"),
    }
}

/// Mode 0: each line alone, then all of them in one jar.
fn set_cookies(text: &str, acs_url: &str) {
    let url = base(acs_url);
    let lines: Vec<&str> = text.split('\n').take(64).collect();
    for line in &lines {
        match t::parse_set_cookie(line, acs_url, NOW) {
            Ok(Some(c)) => check_cookie(line, &c, &url),
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let (jar, header) = match t::cookie_jar(&lines, acs_url, NOW) {
        Ok(j) => j,
        Err(e) => panic!("{e}"),
    };
    assert!(jar.len() <= MAX_COOKIES, "{} cookies in the jar", jar.len());
    let bytes: usize = jar.iter().map(|c| c.name.len() + c.value.len()).sum();
    assert!(bytes <= MAX_JAR_BYTES, "{bytes} bytes in the jar");
    for (i, c) in jar.iter().enumerate() {
        assert!(
            c.expires.is_none_or(|e| e > NOW),
            "expired cookie kept: {c:?}"
        );
        assert!(
            !jar[..i]
                .iter()
                .any(|o| o.name == c.name && o.domain == c.domain && o.path == c.path),
            "two cookies with the same name, domain and path: {c:?}"
        );
    }
    let Some(header) = header else {
        assert!(
            !jar.iter().any(|c| always_sent(c, &url)),
            "no Cookie header though the jar holds {jar:?}"
        );
        return;
    };
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "Cookie header not printable ASCII: {header:?}"
    );
    // Neither names nor values contain `;`, so the pairs split apart exactly.
    let pairs: Vec<&str> = header.split("; ").collect();
    assert!(pairs.len() <= jar.len(), "{header:?} from {jar:?}");
    for p in &pairs {
        assert!(
            jar.iter().any(|c| *p == format!("{}={}", c.name, c.value)),
            "Cookie header pair {p:?} is not in the jar {jar:?}"
        );
    }
    for c in jar.iter().filter(|c| always_sent(c, &url)) {
        let pair = format!("{}={}", c.name, c.value);
        assert!(pairs.contains(&pair.as_str()), "{c:?} not sent: {header:?}");
    }
}

/// A cookie of the jar with path `/` matches every request to its own origin (RFC 6265 §5.4).
fn always_sent(c: &Cookie, url: &Url) -> bool {
    c.path == "/" && (url.https || !c.secure)
}

fn check_cookie(line: &str, c: &Cookie, url: &Url) {
    assert!(
        !c.name.is_empty()
            && c.name.bytes().all(|b| (0x21..0x7f).contains(&b))
            && !c.name.contains(['=', ';']),
        "cookie name {:?} from {line:?}",
        c.name
    );
    assert!(
        c.value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !c.value.contains(';'),
        "cookie value {:?} from {line:?}",
        c.value
    );
    assert!(c.name.len() + c.value.len() <= MAX_COOKIE_BYTES);
    // RFC 6265 §5.2 steps 1-5: name and value are the first `;`-part split at its first `=`.
    let first = line.split(';').next().and_then(|p| p.split_once('='));
    assert_eq!(
        first.map(|(n, v)| (n.trim(), v.trim())),
        Some((c.name.as_str(), c.value.as_str())),
        "name/value are not the first pair of {line:?}"
    );
    // §5.3 steps 5-6: a Domain the host does not domain-match rejects the cookie.
    if c.host_only {
        assert_eq!(
            c.domain, url.host,
            "host-only cookie for another host: {line:?}"
        );
    } else {
        let is_ip = url.host.starts_with('[') || url.host.parse::<std::net::IpAddr>().is_ok();
        let parent = url
            .host
            .strip_suffix(c.domain.as_str())
            .is_some_and(|h| h.ends_with('.'));
        assert!(
            !c.domain.is_empty() && !is_ip && parent,
            "domain {:?} does not cover host {:?}: {line:?}",
            c.domain,
            url.host
        );
    }
    assert!(
        c.path.starts_with('/'),
        "cookie path {:?} from {line:?}",
        c.path
    );
}

/// Mode 1: arbitrary text as a date, also through `Expires` and `Retry-After`.
fn date_text(text: &str) {
    let parsed = t::parse_cookie_date(text);
    if let Some(at) = parsed {
        assert!(at <= MAX_TIME, "{text:?} parsed to {at}, beyond year 9999");
    }
    let v = text.trim();
    if !text.contains(';') {
        let c = cookie(&format!("id=1; Expires={text}"));
        assert_eq!(
            c.expires,
            t::parse_cookie_date(v).map(|at| at.max(1)),
            "Expires={text:?}"
        );
    }
    // Not delta-seconds (those are mode 3's).
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        for now in [0, NOW, MAX_TIME] {
            assert_eq!(
                t::parse_retry_after(text, now),
                t::parse_cookie_date(v).map(|at| wait(at, now)),
                "Retry-After: {text:?}"
            );
        }
    }
}

/// Seconds from `now` until `at`, as `Retry-After` reports them.
fn wait(at: u64, now: u64) -> u32 {
    u32::try_from(at.saturating_sub(now)).unwrap_or(u32::MAX)
}

/// A `Set-Cookie` the harness expects to be accepted from the first ACS URL.
fn cookie(line: &str) -> Cookie {
    match t::parse_set_cookie(line, ACS_URLS[0], NOW) {
        Ok(Some(c)) => c,
        other => panic!("{line:?} was not accepted: {other:?}"),
    }
}

/// Little-endian integer from the next `N` bytes (zeros past the end).
fn take<const N: usize>(buf: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = buf.len().min(N);
    out[..n].copy_from_slice(&buf[..n]);
    *buf = &buf[n..];
    out
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Mode 2: round trips of values derived from the bytes.
fn generated(mut buf: &[u8]) {
    // A time from 1970 to 9999 as one of the three HTTP-date forms (RFC 9110 §5.6.7).
    let at = u64::from_le_bytes(take(&mut buf)) % (MAX_TIME + 1);
    let [form] = take(&mut buf);
    let now = u64::from_le_bytes(take(&mut buf));
    let date = http_date(at, form);
    assert_eq!(t::parse_cookie_date(&date), Some(at), "{date:?}");
    assert_eq!(
        t::parse_retry_after(&date, now),
        Some(wait(at, now)),
        "{date:?} at {now}"
    );
    let c = cookie(&format!("id=1; Path=/; Expires={date}"));
    assert_eq!(c.expires, Some(at.max(1)), "Expires={date:?}");

    // days_from_civil of a valid date of years 0..=9999 (what a cookie-date can carry after
    // the two-digit-year rule), against a count written here.
    let [y0, y1, m, d] = take(&mut buf);
    let y = u64::from(u16::from_le_bytes([y0, y1]) % 10_000);
    let m = u64::from(m % 12) + 1;
    let d = u64::from(d) % days_in_month(y, m) + 1;
    let want = (y >= 1970).then(|| days_since_1970(y, m, d));
    assert_eq!(t::days_from_civil(y, m, d), want, "{y}-{m}-{d}");

    // Max-Age (RFC 6265 §5.2.2) wins over Expires in either order (§5.3 step 3).
    let max_age = i64::from_le_bytes(take(&mut buf));
    let expiry = if max_age <= 0 {
        0
    } else {
        NOW.saturating_add(max_age.unsigned_abs())
    };
    for line in [
        format!("id=1; Max-Age={max_age}"),
        format!("id=1; Expires={date}; Max-Age={max_age}"),
        format!("id=1; Max-Age={max_age}; Expires={date}"),
    ] {
        assert_eq!(cookie(&line).expires, Some(expiry), "{line:?}");
    }

    // delta-seconds, with leading zeros and surrounding whitespace.
    let delta = u64::from_le_bytes(take(&mut buf));
    let [pad] = take(&mut buf);
    let zeros = "0".repeat(usize::from(pad & 7));
    let space = [" ", "\t", "", "  "][usize::from(pad >> 6)];
    let text = format!("{space}{zeros}{delta}{space}");
    let want = u32::try_from(delta).unwrap_or(u32::MAX);
    assert_eq!(t::parse_retry_after(&text, now), Some(want), "{text:?}");
}

/// `at` (Unix seconds, 1970..=9999) as IMF-fixdate (`form % 3 == 0`), RFC 850 (`1`, only for
/// 1970..=2069, whose two-digit year reads back; IMF-fixdate otherwise) or asctime (`2`).
fn http_date(at: u64, form: u8) -> String {
    let days = at / 86_400;
    let secs = at % 86_400;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (y, m, d) = civil_from_days(days);
    let wd = WEEKDAYS[usize::try_from((days + 4) % 7).unwrap_or(0)];
    let mon = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    match form % 3 {
        1 if y <= 2069 => format!(
            "{wd}, {d:02}-{mon}-{:02} {hh:02}:{mm:02}:{ss:02} GMT",
            y % 100
        ),
        2 => format!("{} {mon} {d:>2} {hh:02}:{mm:02}:{ss:02} {y}", &wd[..3]),
        _ => format!("{}, {d:02} {mon} {y} {hh:02}:{mm:02}:{ss:02} GMT", &wd[..3]),
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`), for days >= 0.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: u64) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `y-m-d` (y >= 1970), counted by years and months.
fn days_since_1970(y: u64, m: u64, d: u64) -> u64 {
    // Leap years in 1..y minus those in 1..1970.
    let leaps = |n: u64| n / 4 - n / 100 + n / 400;
    let years = (y - 1970) * 365 + leaps(y - 1) - leaps(1969);
    let months: u64 = (1..m).map(|k| days_in_month(y, k)).sum();
    years + months + d - 1
}

/// Mode 3: an arbitrary `Retry-After` value.
fn retry_after_text(text: &str) {
    let v = text.trim();
    for now in [0, NOW] {
        let got = t::parse_retry_after(text, now);
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            let digits = v.trim_start_matches('0');
            let want = if digits.len() > 10 {
                u32::MAX
            } else {
                let n = digits.parse::<u64>().unwrap_or(0);
                u32::try_from(n).unwrap_or(u32::MAX)
            };
            assert_eq!(got, Some(want), "Retry-After: {text:?}");
        } else {
            let want = t::parse_cookie_date(v).map(|at| wait(at, now));
            assert_eq!(got, want, "Retry-After: {text:?} at {now}");
        }
    }
}

/// Mode 4: `remove_dot_segments` on an arbitrary path.
fn dot_segments(path: &str) {
    let out = t::remove_dot_segments(path);
    assert!(out.starts_with('/'), "{path:?} -> {out:?}");
    assert!(
        !out.split('/').any(|s| s == "." || s == ".."),
        "dot segment left: {path:?} -> {out:?}"
    );
    assert_eq!(
        t::remove_dot_segments(&out),
        out,
        "not a fixpoint: {path:?}"
    );
    if path.starts_with('/') {
        assert_eq!(out, rfc3986_remove_dot_segments(path), "{path:?}");
    }
}

/// RFC 3986 §5.2.4, step by step on the input buffer.
fn rfc3986_remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::new();
    // Removes the last segment and its preceding "/" (if any) from the output.
    let pop = |output: &mut String| output.truncate(output.rfind('/').unwrap_or(0));
    while !input.is_empty() {
        if let Some(r) = input.strip_prefix("../") {
            input = r; // A
        } else if let Some(r) = input.strip_prefix("./") {
            input = r; // A
        } else if input.starts_with("/./") {
            input = &input[2..]; // B: "/./" -> "/"
        } else if input == "/." {
            input = "/"; // B
        } else if input.starts_with("/../") {
            input = &input[3..]; // C: "/../" -> "/"
            pop(&mut output);
        } else if input == "/.." {
            input = "/"; // C
            pop(&mut output);
        } else if input == "." || input == ".." {
            input = ""; // D
        } else {
            // E: the first segment, with its leading "/" if any, up to the next "/".
            let end = input[1..].find('/').map_or(input.len(), |i| i + 1);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Mode 5: an arbitrary `Location` against one of the ACS URLs.
fn redirect(location: &str, acs_url: &str) {
    let from = base(acs_url);
    let loc = (!location.is_empty()).then_some(location);
    let next = match t::redirect_target(acs_url, loc) {
        Ok(Ok(next)) => next,
        Ok(Err(_)) => return,
        Err(e) => panic!("{e}"),
    };
    assert!(
        !from.https || next.https,
        "https redirected to http: {location:?} -> {next:?}"
    );
    // A reference without a scheme or authority (RFC 3986 §4.2 relative-path or absolute-path
    // reference) resolves on the base's origin, its path merged and without dot segments.
    let reference = location.trim();
    let reference = reference.split('#').next().unwrap_or("");
    if !has_scheme(reference) && !reference.starts_with("//") {
        assert!(
            next.https == from.https && next.host == from.host && next.port == from.port,
            "a relative Location left the origin: {location:?} from {acs_url} -> {next:?}"
        );
        assert!(
            !next.path.split('/').any(|s| s == "." || s == ".."),
            "dot segment left: {location:?} from {acs_url} -> {next:?}"
        );
    }
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"` at the start.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}
