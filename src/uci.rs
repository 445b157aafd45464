//! The UCI file format (`/etc/config/cwmpd` on OpenWrt), read leniently as libuci reads a file a
//! person wrote: `package`, `config TYPE ['NAME']`, `option KEY VALUE`, `list KEY VALUE`, values
//! unquoted, in single quotes (no escapes) or double quotes (`\"`, `\\`, `\$`… escapes), and
//! adjacent quoted parts joined (`'it'\''s'`), `#` comments, blank lines. Errors give the line.
//!
//! The [`Lexer`] is the one reader of UCI's quoting: [`crate::config`] reads the agent's own
//! configuration with this parser, and the data model's `uci` backend reads `uci export` (the
//! router's packages, through the `uci` command) with the lexer. It sits below both (it imports
//! nothing of the crate) so that neither imports the other for it. Pure: text in, values out.

use std::borrow::Cow;

/// One `config` section, its options in file order with the line each was on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub ty: String,
    pub name: Option<String>,
    pub line: usize,
    pub options: Vec<UciOption>,
}

/// An `option` (one value) or the values of a `list`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciOption {
    pub name: String,
    pub values: Vec<String>,
    pub list: bool,
    pub line: usize,
}

/// Parses a UCI file; `Err((line, what))` for the first malformed line.
pub fn parse(text: &str) -> Result<Vec<Section>, (usize, String)> {
    let mut sections: Vec<Section> = Vec::new();
    for l in Lexer::new(text) {
        let l = l?;
        let line = l.number;
        let words: Vec<String> = l.words.into_iter().map(|w| w.text.into_owned()).collect();
        let Some((first, rest)) = words.split_first() else {
            continue;
        };
        match (first.as_str(), rest) {
            ("package", [_]) => {}
            ("config", [ty]) | ("config", [ty, _]) => {
                if !is_name(ty) {
                    return Err((line, format!("bad section type {ty:?}")));
                }
                let name = rest.get(1).cloned();
                if name.as_deref().is_some_and(|n| !is_name(n)) {
                    return Err((line, format!("bad section name {:?}", name)));
                }
                sections.push(Section {
                    ty: ty.clone(),
                    name,
                    line,
                    options: Vec::new(),
                });
            }
            (kind @ ("option" | "list"), [name, value]) => {
                if !is_name(name) {
                    return Err((line, format!("bad option name {name:?}")));
                }
                let s = sections
                    .last_mut()
                    .ok_or_else(|| (line, format!("{kind} before any config section")))?;
                let list = kind == "list";
                match s.options.iter_mut().find(|o| o.name == *name) {
                    Some(o) if list && o.list => o.values.push(value.clone()),
                    Some(o) => {
                        return Err((
                            line,
                            format!("{name:?} given twice (first on line {})", o.line),
                        ))
                    }
                    None => s.options.push(UciOption {
                        name: name.clone(),
                        values: vec![value.clone()],
                        list,
                        line,
                    }),
                }
            }
            (other, _) => {
                return Err((
                    line,
                    format!("expected `config TYPE [NAME]`, `option NAME VALUE` or `list NAME VALUE`, found {other:?} with {} word(s)", rest.len()),
                ))
            }
        }
    }
    Ok(sections)
}

/// Letters, digits and `_` (what libuci allows in types, names and option names,
/// `uci_validate_name`).
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'))
}

/// One word of a UCI line, its quoting resolved; `start..end` is its text in the input. The
/// text borrows the input when the word is one part (`abc`, `'a b'`), the common case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word<'a> {
    pub text: Cow<'a, str>,
    pub start: usize,
    pub end: usize,
}

/// One line of a UCI text in words. `start..end` is the line in the input without its line
/// break (a quoted value spanning lines makes it span them too); `number` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: usize,
    pub start: usize,
    pub end: usize,
    pub words: Vec<Word<'a>>,
}

/// The UCI lexer (libuci's quoting): words separated by blanks; unquoted parts, `'…'` (no
/// escapes) and `"…"` (`\x` is `x`) joined when adjacent (`'it'\''s'` is `it's`); a `\`
/// outside quotes takes the next character as it is; a `#` outside quotes starts a comment
/// to the end of the line. Each item is a line, empty ones included; an error gives the line
/// and ends the lexing.
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
    /// Whether a quoted part may span lines (as `uci export` prints a value holding a line
    /// break); otherwise a quote still open at the end of its line is an error.
    multiline: bool,
}

/// The ASCII bytes that end an unquoted run: blanks (as `char::is_whitespace`), the line
/// break, `#`, quotes and `\`.
const ENDS_RUN: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = matches!(
            b,
            b'#' | b'\'' | b'"' | b'\\' | b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c
        );
        i += 1;
    }
    t
};

/// A word's text built from slices of the input: borrowed while it is one slice.
fn append<'a>(word: &mut Option<Cow<'a, str>>, part: &'a str) {
    match word {
        None => *word = Some(Cow::Borrowed(part)),
        Some(_) if part.is_empty() => {}
        Some(Cow::Borrowed("")) => *word = Some(Cow::Borrowed(part)),
        Some(Cow::Borrowed(b)) => *word = Some(Cow::Owned([*b, part].concat())),
        Some(Cow::Owned(s)) => s.push_str(part),
    }
}

impl<'a> Lexer<'a> {
    /// Quotes close on their line: a file a person wrote.
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            pos: 0,
            number: 1,
            multiline: false,
        }
    }

    /// Quoted parts may span lines: what `uci export` prints.
    pub fn multiline(text: &'a str) -> Lexer<'a> {
        Lexer {
            multiline: true,
            ..Lexer::new(text)
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// Whether the character at `pos` is a blank (Unicode white space other than the line
    /// break), and its length.
    fn blank_at(&self) -> Option<usize> {
        let b = *self.text.as_bytes().get(self.pos)?;
        if b == b'\n' {
            return None;
        }
        if b.is_ascii() {
            return (b.is_ascii_whitespace() || b == 0x0b).then_some(1);
        }
        let c = self.rest().chars().next()?;
        c.is_whitespace().then(|| c.len_utf8())
    }

    /// The rest of a quoted part after its opening `quote`, appended to `word`.
    fn quoted(&mut self, quote: u8, word: &mut Option<Cow<'a, str>>) -> Result<(), String> {
        let unterminated = || format!("unterminated {} quote", quote as char);
        if quote == b'\'' {
            // No escapes: up to the next quote (the common case, kept fast).
            let rest = self.rest();
            let close = rest.find('\'').ok_or_else(unterminated)?;
            let part = rest.get(..close).unwrap_or("");
            if part.contains('\n') {
                if !self.multiline {
                    return Err(unterminated());
                }
                self.number += part.matches('\n').count();
            }
            append(word, part);
            self.pos += close + 1;
            return Ok(());
        }
        let bytes = self.text.as_bytes();
        let mut from = self.pos;
        loop {
            let at = bytes
                .get(self.pos..)
                .unwrap_or(&[])
                .iter()
                .position(|&b| b == quote || b == b'\n' || (quote == b'"' && b == b'\\'));
            let Some(at) = at.map(|a| self.pos + a) else {
                return Err(unterminated());
            };
            match bytes[at] {
                b'\n' if !self.multiline => return Err(unterminated()),
                b'\n' => {
                    self.number += 1;
                    self.pos = at + 1;
                }
                b'\\' => {
                    // `"…\x…"`: the part so far, then `x` as it is.
                    append(word, self.text.get(from..at).unwrap_or(""));
                    self.pos = at + 1;
                    let Some(c) = self.rest().chars().next() else {
                        return Err(unterminated());
                    };
                    if c == '\n' {
                        if !self.multiline {
                            return Err(unterminated());
                        }
                        self.number += 1;
                    }
                    from = self.pos;
                    self.pos += c.len_utf8();
                }
                _ => {
                    append(word, self.text.get(from..at).unwrap_or(""));
                    self.pos = at + 1;
                    return Ok(());
                }
            }
        }
    }

    /// One word, at a character that is not blank, not `#` and not a line break.
    fn word(&mut self) -> Result<Word<'a>, String> {
        let start = self.pos;
        let mut text: Option<Cow<'a, str>> = None;
        while let Some(&b) = self.text.as_bytes().get(self.pos) {
            match b {
                b'#' | b'\n' | b' ' | b'\t' => break,
                _ if !b.is_ascii_alphanumeric() && self.blank_at().is_some() => break,
                b'\'' | b'"' => {
                    self.pos += 1;
                    self.quoted(b, &mut text)?;
                }
                b'\\' => {
                    self.pos += 1;
                    // A `\` at the end of a line is dropped; the line ends there.
                    let rest = self.rest();
                    match rest.chars().next() {
                        None | Some('\n') => {}
                        Some('\r') if rest.starts_with("\r\n") => {}
                        Some(c) => {
                            append(&mut text, rest.get(..c.len_utf8()).unwrap_or(""));
                            self.pos += c.len_utf8();
                        }
                    }
                }
                _ => {
                    // An unquoted run: up to the next character that means something.
                    let from = self.pos;
                    while let Some(&c) = self.text.as_bytes().get(self.pos) {
                        if c.is_ascii() {
                            if ENDS_RUN[usize::from(c)] {
                                break;
                            }
                            self.pos += 1;
                        } else if self.blank_at().is_some() {
                            break;
                        } else {
                            self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
                        }
                    }
                    append(&mut text, self.text.get(from..self.pos).unwrap_or(""));
                }
            }
        }
        Ok(Word {
            text: text.unwrap_or(Cow::Borrowed("")),
            start,
            end: self.pos,
        })
    }
}

impl<'a> Lexer<'a> {
    /// The next line with its words put into `words` (cleared first) rather than a new vector,
    /// for a caller that lexes many lines; the [`Line`] returned has none of its own.
    pub fn next_line(
        &mut self,
        words: &mut Vec<Word<'a>>,
    ) -> Option<Result<Line<'a>, (usize, String)>> {
        words.clear();
        if self.pos >= self.text.len() {
            return None;
        }
        let number = self.number;
        let start = self.pos;
        while let Some(&b) = self.text.as_bytes().get(self.pos) {
            match b {
                b'\n' => break,
                b' ' | b'\t' => self.pos += 1,
                b'#' => {
                    let rest = self.rest();
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                _ => match self.blank_at() {
                    Some(n) => self.pos += n,
                    None => match self.word() {
                        Ok(w) => words.push(w),
                        Err(e) => {
                            // Nothing after an error.
                            self.pos = self.text.len();
                            return Some(Err((self.number, e)));
                        }
                    },
                },
            }
        }
        let end = self.pos;
        if self.pos < self.text.len() {
            self.pos += 1;
            self.number += 1;
        }
        Some(Ok(Line {
            number,
            start,
            end,
            words: Vec::new(),
        }))
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<Line<'a>, (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut words = Vec::new();
        let line = self.next_line(&mut words)?;
        Some(line.map(|l| Line { words, ..l }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_and_uci_write() {
        let text = "package cwmpd\n\
                    # the ACS\n\
                    config acs 'acs'\n\
                    \toption url 'https://acs.example/cwmp'\n\
                    \toption username \"cpe \\\"one\\\"\"   # trailing comment\n\
                    \toption password 'it'\\''s'\n\
                    \n\
                    config hooks\n\
                    \tlist vendor 'X 00D0F8 A=/bin/a {file}'\n\
                    \tlist vendor 'X 00D0F8 B=/bin/b'\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].ty.as_str(), s[0].name.as_deref()),
            ("acs", Some("acs"))
        );
        let v: Vec<(&str, &str)> = s[0]
            .options
            .iter()
            .map(|o| (o.name.as_str(), o.values[0].as_str()))
            .collect();
        assert_eq!(
            v,
            [
                ("url", "https://acs.example/cwmp"),
                ("username", "cpe \"one\""),
                ("password", "it's"),
            ]
        );
        assert_eq!(s[0].options[1].line, 5);
        assert_eq!(s[1].name, None);
        assert_eq!(s[1].options[0].values.len(), 2);
        assert!(s[1].options[0].list);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line) in [
            ("option url 'x'\n", 1),
            ("config acs\n\toption url 'x\n", 2),
            ("config acs\n\toption url 'a'\n\toption url 'b'\n", 3),
            ("config acs\nfrobnicate\n", 2),
            ("config a-b\n", 1),
        ] {
            assert_eq!(parse(text).map_err(|e| e.0), Err(line), "{text:?}");
        }
    }

    fn lex(text: &str) -> Vec<(usize, Vec<String>)> {
        Lexer::new(text)
            .map(|l| {
                let l = l.unwrap();
                (
                    l.number,
                    l.words.into_iter().map(|w| w.text.into_owned()).collect(),
                )
            })
            .collect()
    }

    fn owned(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn lexer_quoting() {
        assert_eq!(
            lex("a 'b c' \"d \\\" e\"\n\n  x\\ y # comment 'unclosed\nz#c\n"),
            [
                (1, owned(&["a", "b c", "d \" e"])),
                (2, vec![]),
                (3, owned(&["x y"])),
                (4, owned(&["z"])),
            ]
        );
        // Adjacent parts join; `\` outside quotes takes the next character; inside single
        // quotes it is itself.
        assert_eq!(
            lex("'it'\\''s' 'a\\b' \"\"''x")[0].1,
            owned(&["it's", "a\\b", "x"])
        );
        // A `\` at the end of a line is dropped, CRLF ends a line like LF.
        assert_eq!(
            lex("a\\\nb\\\r\nc 'd'\r\n"),
            [
                (1, owned(&["a"])),
                (2, owned(&["b"])),
                (3, owned(&["c", "d"])),
            ]
        );
        assert!(lex("").is_empty());
        assert_eq!(lex("\n").len(), 1);
    }

    #[test]
    fn lexer_spans_and_lines() {
        let text = "config x 'n'\n\toption v 'two\nlines'\nlist l 'z'";
        let lines: Vec<Line> = Lexer::multiline(text).map(Result::unwrap).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(&text[lines[0].start..lines[0].end], "config x 'n'");
        assert_eq!(lines[1].words[2].text, "two\nlines");
        assert_eq!(
            &text[lines[1].start..lines[1].end],
            "\toption v 'two\nlines'"
        );
        let w = &lines[1].words[2];
        assert_eq!(&text[w.start..w.end], "'two\nlines'");
        // The line after a value spanning two starts on the third.
        assert_eq!((lines[1].number, lines[2].number), (2, 4));
        assert_eq!(&text[lines[2].start..lines[2].end], "list l 'z'");
        // One-part words borrow the input; joined ones own their text.
        assert!(matches!(lines[0].words[2].text, Cow::Borrowed("n")));
        let joined: Vec<Line> = Lexer::new("'it'\\''s'").map(Result::unwrap).collect();
        assert!(matches!(&joined[0].words[0].text, Cow::Owned(s) if s == "it's"));
    }

    #[test]
    fn lexer_errors_name_the_line_and_stop() {
        for (text, line) in [("a 'b\nc'\n", 1), ("a\n\"b\\\nc\"\n", 2), ("a\nb\n'c", 3)] {
            let got: Vec<_> = Lexer::new(text).collect();
            let last = got.last().unwrap();
            assert_eq!(last.as_ref().map_err(|e| e.0), Err(line), "{text:?}");
            assert_eq!(got.len(), line, "{text:?}");
        }
        // Multi-line quotes must still close; the error names the line the quote opened on.
        let got: Vec<_> = Lexer::multiline("a 'b\nc").collect();
        assert!(matches!(got.as_slice(), [Err((1, _))]), "{got:?}");
        assert!(Lexer::multiline("a 'b\nc'\n").all(|l| l.is_ok()));
    }
}
