//! The byte searches every key and path of a request goes through: where a byte is, whether
//! any of a set is, and the `{i}` holes of a template. A leaf room (it uses nothing of the
//! crate), written for `opt-level = "z"`, where each call of `str`'s searchers costs more than
//! the few dozen bytes it searches.

/// Where the ASCII byte `b` is first in `s`, eight bytes at a time. The keys and paths
/// searched are a few dozen bytes, where `str::find` of a `char` costs more in setting up its
/// searcher than in searching (with a substring search, it was a tenth of a
/// GetParameterValues' work), and a byte loop still most of what expanding a key costs.
pub(super) fn byte_at(s: &str, b: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let bytes = s.as_bytes();
    let spread = u64::from_ne_bytes([b; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut skipped = 0;
    for w in words.by_ref() {
        let &[b0, b1, b2, b3, b4, b5, b6, b7] = w else {
            break;
        };
        // A byte of `x` is zero where `b` is; the test is true exactly when one is.
        let x = u64::from_ne_bytes([b0, b1, b2, b3, b4, b5, b6, b7]) ^ spread;
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        skipped += 8;
    }
    bytes[skipped..]
        .iter()
        .position(|&c| c == b)
        .map(|i| skipped + i)
}

/// Whether `s` holds any of the ASCII bytes of `set`: what `str::contains` of a `char` array
/// answers, at a small part of its cost (its searcher decodes each character and compares it
/// with each of the array's: thousands of instructions on a key of a GPV, at `opt-level = "z"`).
pub(super) fn has_byte_of(s: &str, set: &[u8]) -> bool {
    // The set as a bitmap of the 128 ASCII bytes, in 32-bit words (a router's CPU is 32-bit).
    let mut map = [0u32; 4];
    for &c in set.iter().filter(|c| c.is_ascii()) {
        map[usize::from(c >> 5)] |= 1 << (c & 31);
    }
    s.bytes()
        .any(|b| b.is_ascii() && map[usize::from(b >> 5)] >> (b & 31) & 1 != 0)
}

/// Where the first `{i}` of `s` starts. Every path and key of a request goes through here.
pub(super) fn next_hole(s: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let at = from + byte_at(s.get(from..)?, b'{')?;
        if s.get(at..)?.starts_with("{i}") {
            return Some(at);
        }
        from = at + 1;
    }
}

/// How many `{i}` a template holds.
pub(super) fn count_holes(template: &str) -> usize {
    let mut n = 0;
    let mut rest = template;
    while let Some(pos) = next_hole(rest) {
        n += 1;
        rest = &rest[pos + 3..];
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_at_finds_the_first_of_a_byte_at_any_place() {
        for len in 0usize..40 {
            for at in 0..len {
                for other in [None, Some(at + 1), Some(len - 1)] {
                    let mut text = vec![b'a'; len];
                    // Neighbours of the byte sought in value (`{` is 0x7b, `|` 0x7c).
                    for (i, c) in text.iter_mut().enumerate() {
                        *c = [b'a', b'z', b'|', b'z', 0x7a, b'}'][i % 6];
                    }
                    text[at] = b'{';
                    if let Some(o) = other.filter(|&o| o < len) {
                        text[o] = b'{';
                    }
                    let s = std::str::from_utf8(&text).unwrap();
                    assert_eq!(super::byte_at(s, b'{'), Some(at), "{s:?}");
                    assert_eq!(super::byte_at(&s[at + 1..], b'{'), s[at + 1..].find('{'));
                }
            }
            let s = "x".repeat(len);
            assert_eq!(super::byte_at(&s, b'{'), None);
            assert_eq!(super::byte_at(&s, b'x'), (len > 0).then_some(0));
        }
        assert_eq!(super::byte_at("\u{e9}\u{e9}\u{e9}\u{e9}{", b'{'), Some(8));
    }

    #[test]
    fn has_byte_of_is_contains_of_the_characters() {
        let sets: [&[u8]; 5] = [b"", b"{}[]", b"/{}[]*=#", b"\0", b" ~\x7f"];
        for s in [
            "",
            "eth0",
            "a{b",
            "x]",
            "\u{e9}t\u{e9}",
            "1=2",
            "nul\0",
            "~",
            "\x7f",
            "A@`",
        ] {
            for set in sets {
                let chars: Vec<char> = set.iter().map(|&b| char::from(b)).collect();
                assert_eq!(
                    super::has_byte_of(s, set),
                    s.contains(&chars[..]),
                    "{s:?} {set:?}"
                );
            }
        }
    }
}
