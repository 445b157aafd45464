//! The UCI file format (`/etc/config/cwmpd` on OpenWrt), read leniently as libuci reads a file a
//! person wrote: `package`, `config TYPE ['NAME']`, `option KEY VALUE`, `list KEY VALUE`, values
//! unquoted, in single quotes (no escapes) or double quotes (`\"`, `\\`, `\$`… escapes), and
//! adjacent quoted parts joined (`'it'\''s'`), `#` comments, blank lines. Errors give the line.
//!
//! This reads the agent's own configuration only; the data model reads the router's packages
//! through the `uci` command (`datamodel::uci`).

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
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let words = words(raw).map_err(|e| (line, e))?;
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

/// Letters, digits and `_` (what libuci allows in types, names and option names).
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The words of a line, quotes resolved; a `#` outside quotes starts a comment.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(out),
            Some(_) => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                c if c.is_whitespace() => break,
                '\'' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err("unterminated ' quote".into()),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c) => word.push(c),
                                None => return Err("unterminated \" quote".into()),
                            },
                            Some(c) => word.push(c),
                            None => return Err("unterminated \" quote".into()),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    if let Some(c) = chars.next() {
                        word.push(c);
                    }
                }
                '#' => break,
                c => {
                    word.push(c);
                    chars.next();
                }
            }
        }
        out.push(word);
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
}
