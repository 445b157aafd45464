//! The UCI file format (`/etc/config/cwmpd` on OpenWrt), read leniently as libuci reads a file a
//! person wrote: `package`, `config TYPE ['NAME']`, `option KEY VALUE`, `list KEY VALUE`, values
//! unquoted, in single quotes (no escapes) or double quotes (`\"`, `\\`, `\$`… escapes), and
//! adjacent quoted parts joined (`'it'\''s'`), `#` comments, blank lines. Errors give the line.
//!
//! The [`Lexer`] is the one reader of UCI's quoting: this parser reads the agent's own
//! configuration with it, and the data model's `uci` backend reads `uci export` (the router's
//! packages, through the `uci` command) with it too.

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
        let words: Vec<String> = l.words.into_iter().map(|w| w.text).collect();
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
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One word of a UCI line, its quoting resolved; `start..end` is its text in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// One line of a UCI text in words. `start..end` is the line in the input without its line
/// break (a quoted value spanning lines makes it span them too); `number` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub start: usize,
    pub end: usize,
    pub words: Vec<Word>,
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

    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|r| r.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// The rest of a quoted part after its opening `quote`, pushed onto `word`.
    fn quoted(&mut self, quote: char, word: &mut String) -> Result<(), String> {
        let unterminated = || format!("unterminated {quote} quote");
        loop {
            match self.bump() {
                Some(c) if c == quote => return Ok(()),
                Some('\\') if quote == '"' => match self.bump() {
                    Some('\n') if !self.multiline => return Err(unterminated()),
                    Some(c) => {
                        self.number += usize::from(c == '\n');
                        word.push(c);
                    }
                    None => return Err(unterminated()),
                },
                Some('\n') if !self.multiline => return Err(unterminated()),
                Some(c) => {
                    self.number += usize::from(c == '\n');
                    word.push(c);
                }
                None => return Err(unterminated()),
            }
        }
    }

    /// One word, at a character that is not blank and not `#`.
    fn word(&mut self) -> Result<Word, String> {
        let start = self.pos;
        let mut text = String::new();
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() || c == '#' => break,
                '\'' | '"' => {
                    self.bump();
                    self.quoted(c, &mut text)?;
                }
                '\\' => {
                    self.bump();
                    // A `\` at the end of a line is dropped; the line ends there.
                    let rest = self.text.get(self.pos..).unwrap_or("");
                    match self.peek() {
                        None | Some('\n') => {}
                        Some('\r') if rest.starts_with("\r\n") => {}
                        Some(c) => {
                            self.bump();
                            text.push(c);
                        }
                    }
                }
                c => {
                    self.bump();
                    text.push(c);
                }
            }
        }
        Ok(Word {
            text,
            start,
            end: self.pos,
        })
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<Line, (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let number = self.number;
        let start = self.pos;
        let mut words = Vec::new();
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some('#') => {
                    let rest = self.text.get(self.pos..).unwrap_or("");
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some(_) => match self.word() {
                    Ok(w) => words.push(w),
                    Err(e) => {
                        // Nothing after an error.
                        self.pos = self.text.len();
                        return Some(Err((self.number, e)));
                    }
                },
            }
        }
        let end = self.pos;
        if self.bump().is_some() {
            self.number += 1;
        }
        Some(Ok(Line {
            number,
            start,
            end,
            words,
        }))
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
                (l.number, l.words.into_iter().map(|w| w.text).collect())
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
    }

    #[test]
    fn lexer_errors_name_the_line_and_stop() {
        for (text, line) in [("a 'b\nc'\n", 1), ("a\n\"b\\\nc\"\n", 2), ("a\nb\n'c", 3)] {
            let got: Vec<_> = Lexer::new(text).collect();
            let last = got.last().unwrap();
            assert_eq!(last.as_ref().map_err(|e| e.0), Err(line), "{text:?}");
            assert_eq!(got.len(), line, "{text:?}");
        }
        // Multi-line quotes must still close.
        let got: Vec<_> = Lexer::multiline("a 'b\nc").collect();
        assert!(matches!(got.as_slice(), [Err((2, _))]), "{got:?}");
        assert!(Lexer::multiline("a 'b\nc'\n").all(|l| l.is_ok()));
    }
}
