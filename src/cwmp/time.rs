//! Time as CWMP writes it: the `xsd:dateTime` text of CurrentTime, PeriodicInformTime and
//! dateTime parameter values (TR-106 §3.2.1 data types), to and from Unix seconds, without a date
//! library; and the proleptic Gregorian calendar arithmetic under it. Pure: no clock is read here
//! (the caller passes the time).

/// The unknown time `0001-01-01T00:00:00Z` (TR-106 §3.2.1) as Unix seconds: for
/// PeriodicInformTime it means "no particular phase".
pub const UNKNOWN_TIME: i64 = -62_135_596_800;
/// [`UNKNOWN_TIME`] in milliseconds.
pub const UNKNOWN_TIME_MS: i64 = UNKNOWN_TIME * 1000;

/// Formats Unix seconds as an `xsd:dateTime` with a numeric UTC offset, the form CurrentTime
/// uses (`2026-11-21T05:50:26+00:00`; §A.3.3.1 asks for the local time with its offset).
/// `offset_minutes` is clamped to ±23:59.
pub fn format_datetime(unix: i64, offset_minutes: i32) -> String {
    let offset = offset_minutes.clamp(-(24 * 60 - 1), 24 * 60 - 1);
    let local = unix.saturating_add(i64::from(offset) * 60);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.unsigned_abs();
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y}")
    };
    format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

/// Formats Unix seconds in UTC with the `Z` designator (`2026-11-21T05:50:26Z`), the TR-106
/// form for dateTime parameter values.
pub fn format_datetime_utc(unix: i64) -> String {
    let mut s = format_datetime(unix, 0);
    s.truncate(s.len() - "+00:00".len());
    s.push('Z');
    s
}

/// Parses an `xsd:dateTime` (`YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]`) to Unix seconds. Without
/// a zone designator the time is taken as UTC (TR-106 §3.2.1: "all times MUST be expressed in
/// UTC" unless stated otherwise). Fractions are dropped ([`parse_datetime_ms`] keeps them);
/// `24:00:00` is the end of the day and a leap second `:60` counts as the next second. `None`
/// when the text is not a valid dateTime.
pub fn parse_datetime(s: &str) -> Option<i64> {
    parse_datetime_parts(s).map(|(secs, _)| secs)
}

/// [`parse_datetime`] in Unix milliseconds, keeping the fraction: its first three digits, and
/// one millisecond more when the digits after them are not all zero (a time is never taken as
/// earlier than written: a periodic Inform must not come before its phase). `None` also for a
/// year too far out for milliseconds in an `i64` (about 292 million years).
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let (secs, millis) = parse_datetime_parts(s)?;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Unix seconds and the milliseconds of the fraction (0–1000, rounded up).
fn parse_datetime_parts(s: &str) -> Option<(i64, i64)> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = body.as_bytes();
    // The year has at least four digits (xsd), then `-MM-DDThh:mm:ss`.
    let ylen = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(4..=9).contains(&ylen) || (ylen > 4 && b.first() == Some(&b'0')) {
        return None;
    }
    let rest = b.get(ylen..)?;
    if rest.len() < 15 {
        return None;
    }
    let digits2 = |i: usize| -> Option<u32> {
        let hi = *rest.get(i)?;
        let lo = *rest.get(i + 1)?;
        if hi.is_ascii_digit() && lo.is_ascii_digit() {
            Some(u32::from(hi - b'0') * 10 + u32::from(lo - b'0'))
        } else {
            None
        }
    };
    let seps = [(0, b'-'), (3, b'-'), (6, b'T'), (9, b':'), (12, b':')];
    if seps.iter().any(|&(i, c)| rest.get(i) != Some(&c)) {
        return None;
    }
    let year: i64 = std::str::from_utf8(b.get(..ylen)?).ok()?.parse().ok()?;
    let year = if neg { -year } else { year };
    let (month, day) = (digits2(1)?, digits2(4)?);
    let (hour, minute, second) = (digits2(7)?, digits2(10)?, digits2(13)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0;
    if (hour > 23 && !end_of_day) || minute > 59 || second > 60 {
        return None;
    }
    let mut tail = rest.get(15..)?;
    let mut millis: i64 = 0;
    if tail.first() == Some(&b'.') {
        let digits = &tail[1..];
        let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + digits
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        if digits
            .get(3..n)
            .is_some_and(|r| r.iter().any(|&d| d != b'0'))
        {
            millis += 1;
        }
        tail = &digits[n..];
    }
    let offset_s: i64 = match tail {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let num = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (oh, om) = (num(*h1, *h2)?, num(*m1, *m2)?);
            if oh > 14 || om > 59 || (oh == 14 && om != 0) {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some((days * 86_400 + secs - offset_s, millis))
}

/// xsd:dateTime: `YYYY-MM-DDThh:mm:ss[.frac][Z|(+|-)hh:mm]` (TR-106 §3.2.2 also allows the
/// unknown time `0001-01-01T00:00:00Z`).
pub fn is_datetime(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 19 {
        return false;
    }
    let shape = b"dddd-dd-ddThh:mm:ss"
        .iter()
        .zip(b)
        .all(|(want, c)| match want {
            b'd' | b'h' | b'm' | b's' => c.is_ascii_digit(),
            _ => c == want,
        });
    if !shape {
        return false;
    }
    let num = |i: usize| (b[i] - b'0') as u32 * 10 + (b[i + 1] - b'0') as u32;
    let (mo, day, h, mi, s) = (num(5), num(8), num(11), num(14), num(17));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return false;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    match rest {
        [] | [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] if (*sign == b'+' || *sign == b'-') => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1–12) of year `y`; 0 for another `m`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_kept_to_the_millisecond_and_never_rounded_down() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.05Z"), Some(1_050));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.123Z"), Some(1_123));
        assert_eq!(
            parse_datetime_ms("1970-01-01T00:00:01.123000Z"),
            Some(1_123)
        );
        // Below a millisecond: rounded up, so the time is never earlier than written.
        assert_eq!(
            parse_datetime_ms("1970-01-01T00:00:01.1230001Z"),
            Some(1_124)
        );
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.9999Z"), Some(2_000));
        assert_eq!(parse_datetime_ms("1969-12-31T23:59:59.250Z"), Some(-750));
        assert_eq!(
            parse_datetime_ms("2026-11-21T06:50:26.040+01:00"),
            Some(1_795_240_226_040)
        );
        // Seconds drop the fraction (floor), before the epoch too.
        assert_eq!(parse_datetime("1969-12-31T23:59:59.250Z"), Some(-1));
        let long = format!("1970-01-01T00:00:01.{}Z", "0".repeat(10_000));
        assert_eq!(parse_datetime_ms(&long), Some(1_000));
        // Years beyond milliseconds in an i64 are refused there, not overflowed.
        assert_eq!(parse_datetime_ms("999999999-01-01T00:00:00Z"), None);
        assert!(parse_datetime("999999999-01-01T00:00:00Z").is_some());
    }

    #[test]
    fn formats_with_offsets_and_leap_days() {
        assert_eq!(format_datetime(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            format_datetime(1_795_240_226, 0),
            "2026-11-21T05:50:26+00:00"
        );
        assert_eq!(
            format_datetime(1_795_240_226, 60),
            "2026-11-21T06:50:26+01:00"
        );
        assert_eq!(
            format_datetime(1_795_240_226, -330),
            "2026-11-21T00:20:26-05:30"
        );
        assert_eq!(
            format_datetime(1_795_240_226, -420),
            "2026-11-20T22:50:26-07:00"
        );
        // 2024-02-29 exists; 2100 is not a leap year; 2000 is.
        assert_eq!(
            format_datetime(1_709_164_800, 0),
            "2024-02-29T00:00:00+00:00"
        );
        assert_eq!(format_datetime(951_782_400, 0), "2000-02-29T00:00:00+00:00");
        assert_eq!(
            format_datetime(4_107_542_400, 0),
            "2100-03-01T00:00:00+00:00"
        );
        assert_eq!(format_datetime(-1, 0), "1969-12-31T23:59:59+00:00");
        assert_eq!(format_datetime_utc(UNKNOWN_TIME), "0001-01-01T00:00:00Z");
        assert_eq!(format_datetime_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        // Extreme inputs do not panic.
        let _ = format_datetime(i64::MAX, i32::MAX);
        let _ = format_datetime(i64::MIN, i32::MIN);
    }

    #[test]
    fn parses_xsd_datetime() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:00"), Some(0));
        assert_eq!(
            parse_datetime("2026-11-21T05:50:26+00:00"),
            Some(1_795_240_226)
        );
        assert_eq!(
            parse_datetime("2026-11-21T06:50:26+01:00"),
            Some(1_795_240_226)
        );
        assert_eq!(
            parse_datetime("2026-11-21T00:20:26-05:30"),
            Some(1_795_240_226)
        );
        assert_eq!(
            parse_datetime(" 2026-11-21T05:50:26.999Z "),
            Some(1_795_240_226)
        );
        assert_eq!(parse_datetime("0001-01-01T00:00:00Z"), Some(UNKNOWN_TIME));
        assert_eq!(parse_datetime("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_datetime("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(
            parse_datetime("1999-12-31T24:00:00Z"),
            parse_datetime("2000-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_datetime("2016-12-31T23:59:60Z"),
            parse_datetime("2017-01-01T00:00:00Z")
        );
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T24:00:01Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+15:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00ZZ",
            "26-01-01T00:00:00Z",
            "02026-01-01T00:00:00Z",
            "2026-1-01T00:00:00Z",
            "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        for t in [
            0,
            1,
            951_782_399,
            1_709_251_199,
            1_795_240_226,
            -86_401,
            UNKNOWN_TIME,
        ] {
            for off in [0, 60, -300, 345, 840, -720] {
                assert_eq!(
                    parse_datetime(&format_datetime(t, off)),
                    Some(t),
                    "{t} {off}"
                );
            }
        }
    }
}
