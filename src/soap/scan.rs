//! The bounded parse of a SOAP envelope: [`document`] applies the [`Limits`] before and while
//! roxmltree parses (size, UTF-8, no DTD, node count, depth), after one linear scan of the raw
//! text ([`prescan`]) that refuses what roxmltree would parse in more than linear time or by
//! too deep a recursion. Nothing here panics on input.

use std::collections::BTreeSet;

use roxmltree::{Document, ParsingOptions};

use super::msg::ParseError;
use super::tree::malformed;
use super::Limits;

/// Parses `body` into a tree within `limits`. Every failure is [`ParseError::Malformed`].
pub(crate) fn document<'i>(body: &'i [u8], limits: &Limits) -> Result<Document<'i>, ParseError> {
    if body.len() > limits.max_bytes {
        return Err(malformed(format!(
            "envelope of {} bytes exceeds the limit of {} bytes",
            body.len(),
            limits.max_bytes
        )));
    }
    let text =
        std::str::from_utf8(body).map_err(|e| malformed(format!("envelope is not UTF-8: {e}")))?;
    // Whitespace before the XML declaration is not XML, but it is harmless: drop it (and a BOM).
    let text = text.trim_start_matches('\u{FEFF}').trim();
    if text.is_empty() {
        return Err(malformed("empty body".into()));
    }
    // Also refuses any DOCTYPE, which roxmltree accepts when it has no internal subset.
    prescan(text, limits)?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(limits.max_nodes).unwrap_or(u32::MAX),
    };
    let doc = Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => {
            malformed("DTDs are not allowed in SOAP (SOAP 1.1 §3)".into())
        }
        roxmltree::Error::NodesLimitReached => malformed(format!(
            "envelope has more than {} XML nodes",
            limits.max_nodes
        )),
        e => malformed(format!("not well-formed XML: {e}")),
    })?;
    Ok(doc)
}

/// The one scan of the raw text before roxmltree sees it (a few branches per byte of markup,
/// text skipped with one search for `<`). It refuses:
///
/// - nesting deeper than [`Limits::max_depth`]: roxmltree 0.20 parses nested elements by
///   recursion, so a deeply nested envelope would exhaust the stack (an abort, not a panic)
///   before any check on the tree could run;
/// - any DOCTYPE (roxmltree accepts one without an internal subset);
/// - the shapes roxmltree parses in more than linear time (the other bounds of [`Limits`]; the
///   costs they bound are in ARCHITECTURE.md, "XML parsing in linear time").
///
/// Comments, CDATA sections, processing instructions and quoted attribute values are skipped.
/// Unterminated markup ends the scan and is left to the parser to report. On a well-formed
/// prefix of the text the scan sees what roxmltree sees, so what it counts bounds what
/// roxmltree does before it stops at its first error.
fn prescan(text: &str, limits: &Limits) -> Result<(), ParseError> {
    let b = text.as_bytes();
    // The index after the first `pat` at or after `from`: a search for its first byte, the
    // rest compared only there (a comparison at every byte was a fifth of a parse).
    let find = |from: usize, pat: &[u8]| -> Option<usize> {
        let (&first, tail) = pat.split_first()?;
        let mut at = from;
        loop {
            let start = at + b.get(at..)?.iter().position(|&c| c == first)?;
            let after = start + pat.len();
            if b.get(start + 1..after)? == tail {
                return Some(after);
            }
            at = start + 1;
        }
    };
    let mut scan = Scan::new(limits);
    let mut i = 0;
    // The next `<` from `i`: `str::find` of a char is std's word-at-a-time search, not a loop
    // per byte (`i` always follows ASCII markup, so it is a char boundary; if it were not, the
    // bytes are searched).
    let next_lt = |i: usize| match text.get(i..) {
        Some(rest) => rest.find('<'),
        None => b.get(i..)?.iter().position(|&c| c == b'<'),
    };
    while let Some(off) = next_lt(i) {
        let lt = i + off;
        let rest = b.get(lt..).unwrap_or_default();
        // Told apart by the byte after `<`: most markup is a tag, compared with nothing.
        let next = match rest.get(1) {
            Some(b'!') if rest.starts_with(b"<![CDATA[") => {
                scan.cdata_run += 1;
                if scan.cdata_run > limits.max_cdata_run {
                    return Err(malformed(format!(
                        "more than {} CDATA sections in one text",
                        limits.max_cdata_run
                    )));
                }
                find(lt + 9, b"]]>")
            }
            // Anything else ends a run of character data (roxmltree starts a new text node).
            Some(b'!') if rest.starts_with(b"<!--") => {
                scan.cdata_run = 0;
                find(lt + 4, b"-->")
            }
            Some(b'!') => {
                return Err(malformed(
                    "DTDs are not allowed in SOAP (SOAP 1.1 §3)".into(),
                ));
            }
            Some(b'?') => {
                scan.cdata_run = 0;
                find(lt + 2, b"?>")
            }
            Some(b'/') => {
                scan.cdata_run = 0;
                scan.end_tag();
                find(lt + 2, b">")
            }
            _ => {
                scan.cdata_run = 0;
                scan.start_tag(b, lt)?
            }
        };
        match next {
            Some(n) => i = n,
            None => break,
        }
    }
    Ok(())
}

/// The state of [`prescan`].
struct Scan<'l, 't> {
    limits: &'l Limits,
    depth: usize,
    /// The distinct namespace prefixes in scope (`""` for the default namespace), outermost
    /// first: exactly the namespaces roxmltree gives the current element.
    scope: Vec<&'t [u8]>,
    /// For each open element that declared a namespace: its depth and the length of `scope`
    /// before it.
    frames: Vec<(usize, usize)>,
    /// The prefixes declared by the start tag being read.
    own: Vec<&'t [u8]>,
    /// Every (prefix, URI) declared so far (ordered: no hashing per envelope, at most
    /// `max_distinct_namespaces` of them, a lookup in log time).
    distinct: BTreeSet<(&'t [u8], &'t [u8])>,
    /// `scope.len()` summed over the elements that declared a namespace.
    bindings: usize,
    /// Attributes so far, declarations not counted.
    attributes: usize,
    /// CDATA sections since the last other markup.
    cdata_run: usize,
}

impl<'l, 't> Scan<'l, 't> {
    fn new(limits: &'l Limits) -> Self {
        Scan {
            limits,
            depth: 0,
            scope: Vec::new(),
            frames: Vec::new(),
            own: Vec::new(),
            distinct: BTreeSet::new(),
            bindings: 0,
            attributes: 0,
            cdata_run: 0,
        }
    }

    /// `</…>`: leaves the current element and the namespaces it declared.
    fn end_tag(&mut self) {
        if let Some(&(depth, len)) = self.frames.last() {
            if depth == self.depth {
                self.scope.truncate(len);
                self.frames.pop();
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// A start tag at `lt`: reads its attributes up to the `>` outside quoted values and
    /// returns the index after it (`None` when the tag is not terminated).
    fn start_tag(&mut self, b: &'t [u8], lt: usize) -> Result<Option<usize>, ParseError> {
        self.own.clear();
        let mut element_attributes = 0usize;
        // The name token being read (its start), the last one read, and the name of the
        // attribute whose `=` was seen and whose value comes next.
        let mut token: Option<usize> = None;
        let mut name: &'t [u8] = &[];
        let mut attribute: Option<&'t [u8]> = None;
        let mut j = lt + 1;
        let end = loop {
            let Some(&c) = b.get(j) else {
                return Ok(None);
            };
            match c {
                b'"' | b'\'' => {
                    let Some(len) = b.get(j + 1..).and_then(|r| r.iter().position(|&x| x == c))
                    else {
                        return Ok(None);
                    };
                    if let Some(n) = attribute.take() {
                        let value = b.get(j + 1..j + 1 + len).unwrap_or_default();
                        self.attribute(n, value, &mut element_attributes)?;
                    }
                    token = None;
                    j += len + 2;
                    continue;
                }
                b'>' => break j + 1,
                b'=' => {
                    if let Some(s) = token.take() {
                        name = b.get(s..j).unwrap_or_default();
                    }
                    attribute = Some(name);
                }
                b' ' | b'\t' | b'\n' | b'\r' | b'/' => {
                    if let Some(s) = token.take() {
                        name = b.get(s..j).unwrap_or_default();
                    }
                }
                _ => {
                    if token.is_none() {
                        token = Some(j);
                    }
                }
            }
            j += 1;
        };
        if self.depth + 1 > self.limits.max_depth {
            return Err(malformed(format!(
                "envelope is nested deeper than {} elements",
                self.limits.max_depth
            )));
        }
        // `<x/>` opens nothing.
        let opens = b.get(end.saturating_sub(2)) != Some(&b'/');
        if opens {
            self.depth += 1;
        }
        if !self.own.is_empty() {
            // roxmltree gives this element its own declarations and every prefix in scope that
            // they do not redeclare.
            let before = self.scope.len();
            for k in 0..self.own.len() {
                let p = self.own.get(k).copied().unwrap_or_default();
                if !self.scope.get(..before).unwrap_or_default().contains(&p) {
                    self.scope.push(p);
                }
            }
            self.check_scope()?;
            self.bindings += self.scope.len();
            if self.bindings > self.limits.max_namespace_bindings {
                return Err(malformed(format!(
                    "envelope records more than {} namespace bindings (the prefixes in scope at \
                     each element that declares one)",
                    self.limits.max_namespace_bindings
                )));
            }
            if opens {
                self.frames.push((self.depth, before));
            } else {
                self.scope.truncate(before);
            }
        }
        Ok(Some(end))
    }

    /// One attribute of the start tag being read.
    fn attribute(
        &mut self,
        name: &'t [u8],
        value: &'t [u8],
        element_attributes: &mut usize,
    ) -> Result<(), ParseError> {
        let l = self.limits;
        let prefix = if name == b"xmlns" {
            &[][..]
        } else if let Some(p) = name.strip_prefix(b"xmlns:") {
            p
        } else {
            *element_attributes += 1;
            if *element_attributes > l.max_element_attributes {
                return Err(malformed(format!(
                    "an element has more than {} attributes",
                    l.max_element_attributes
                )));
            }
            self.attributes += 1;
            if self.attributes > l.max_attributes {
                return Err(malformed(format!(
                    "envelope has more than {} attributes",
                    l.max_attributes
                )));
            }
            return Ok(());
        };
        if prefix.len() > l.max_namespace_len || value.len() > l.max_namespace_len {
            return Err(malformed(format!(
                "a namespace prefix or URI is longer than {} bytes",
                l.max_namespace_len
            )));
        }
        // Every prefix an element declares is in scope at it.
        if self.own.len() >= l.max_namespaces_in_scope {
            return Err(self.too_many_in_scope());
        }
        if self.own.contains(&prefix) {
            return Err(malformed(format!(
                "an element declares namespace prefix {:?} twice",
                String::from_utf8_lossy(prefix)
            )));
        }
        self.own.push(prefix);
        if !self.distinct.contains(&(prefix, value)) {
            if self.distinct.len() >= l.max_distinct_namespaces {
                return Err(malformed(format!(
                    "envelope declares more than {} distinct namespaces",
                    l.max_distinct_namespaces
                )));
            }
            self.distinct.insert((prefix, value));
        }
        Ok(())
    }

    fn check_scope(&self) -> Result<(), ParseError> {
        if self.scope.len() > self.limits.max_namespaces_in_scope {
            return Err(self.too_many_in_scope());
        }
        Ok(())
    }

    fn too_many_in_scope(&self) -> ParseError {
        malformed(format!(
            "more than {} namespace prefixes in scope",
            self.limits.max_namespaces_in_scope
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn rejects_what_is_not_a_small_envelope() {
        let big = vec![b' '; 100];
        let small = Limits {
            max_bytes: 50,
            ..limits()
        };
        assert!(
            matches!(document(&big, &small), Err(ParseError::Malformed(m)) if m.contains("100 bytes"))
        );
        assert!(
            matches!(document(b"\xff<a/>", &limits()), Err(ParseError::Malformed(m)) if m.contains("UTF-8"))
        );
        assert!(
            matches!(document(b"  \n", &limits()), Err(ParseError::Malformed(m)) if m.contains("empty"))
        );
        let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>";
        assert!(
            matches!(document(dtd, &limits()), Err(ParseError::Malformed(m)) if m.contains("DTD"))
        );
        let empty_dtd = b"<!DOCTYPE x><x/>";
        assert!(
            matches!(document(empty_dtd, &limits()), Err(ParseError::Malformed(m)) if m.contains("DTD"))
        );
        assert!(document(b"\xef\xbb\xbf\n <?xml version=\"1.0\"?><x/>", &limits()).is_ok());
    }

    #[test]
    fn node_and_depth_limits() {
        let few = Limits {
            max_nodes: 10,
            ..limits()
        };
        let many = format!("<x>{}</x>", "<y/>".repeat(20));
        assert!(
            matches!(document(many.as_bytes(), &few), Err(ParseError::Malformed(m)) if m.contains("nodes"))
        );
        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(document(deep(32).as_bytes(), &limits()).is_ok());
        assert!(
            matches!(document(deep(33).as_bytes(), &limits()), Err(ParseError::Malformed(m)) if m.contains("deeper"))
        );
        // Very deep input is refused without exhausting the stack.
        let huge = Limits {
            max_nodes: 1_000_000,
            max_bytes: 8 << 20,
            max_depth: 32,
            ..limits()
        };
        assert!(document(deep(200_000).as_bytes(), &huge).is_err());
        // Markup-like text in comments, CDATA, PIs and attribute values does not count, and
        // `<x/>` opens nothing; a `<x/>` one level too deep is still too deep.
        let decoy = format!(
            "{}<b a='>' c=\"/>\"/><!-- <a><a><a> --><![CDATA[<a><a>]]><?pi <a><a>?>{}",
            "<a>".repeat(31),
            "</a>".repeat(31)
        );
        assert!(document(decoy.as_bytes(), &limits()).is_ok());
        let leaf = format!("{}<b/>{}", "<a>".repeat(32), "</a>".repeat(32));
        assert!(document(leaf.as_bytes(), &limits()).is_err());
        // Siblings after a deep branch are still checked.
        let late = format!("<r><a/>{}</r>", deep(40));
        assert!(document(late.as_bytes(), &limits()).is_err());
    }
}
