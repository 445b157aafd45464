//! The layering invariants of ARCHITECTURE.md, checked on the source so that they cannot rot
//! silently:
//!
//! 1. **The pure rooms stay pure.** The modules listed in [`PURE`] decide without touching the
//!    operating system: no file, socket, process, thread, clock, environment or entropy access,
//!    neither directly nor through any module of the crate they reference. A module "touches the
//!    OS" when its production code (comments, string literals and `#[cfg(test)]` items removed)
//!    names one of [`OS_ACCESS`].
//! 2. **No import cycle between sibling modules.** Among the children of one module (the crate's
//!    top-level modules, the rooms of `datamodel`, of `http`, …) the references form no cycle; a
//!    child's references include those of everything below it. A parent may use its children (it
//!    is their facade) and a child its parent's declarations.
//!
//! The scan is lexical (a small Rust lexer, no crates): it reads `crate::`, `super::` and
//! `self::` paths, including grouped `use` trees.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The rooms that must stay pure, as module paths (a module includes its children).
const PURE: &[&str] = &[
    "cwmp",
    "soap",
    "session",
    "events",
    "schedule",
    "uci",
    "http::policy",
    "http::url",
    "http::cookie",
    "http::auth",
    "connreq::gate",
    "connreq::throttle",
    "connreq::http",
    "connreq::url",
    "connreq::udp",
    "stun::msg",
    "stun::binding",
    "dhcp",
    "xmpp::stream",
    "xmpp::connreq",
    "xmpp::negotiate",
    "agent::plan",
    "datamodel::types",
    "datamodel::generate",
    "datamodel::scan",
    "datamodel::backend::file::key",
    "datamodel::backend::uci::key",
    "datamodel::backend::uci::export",
    "datamodel::backend::uci::batch",
    "datamodel::backend::uci::pool",
    "datamodel::backend::select",
    "datamodel::backend::netlink::wire",
    "datamodel::backend::ubus::blob",
    "datamodel::backend::ubus::proto",
    "diag::icmp",
    "diag::dns",
    "toml_write",
];

/// What production code names to reach the OS: files, sockets, processes, threads, clocks, the
/// environment, OS entropy, and the crates that wrap system calls.
const OS_ACCESS: &[&str] = &[
    "std::fs",
    "fs::",
    "File::",
    "OpenOptions",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "ToSocketAddrs",
    "std::process",
    "Command::",
    "std::thread",
    "thread::",
    "Instant::now",
    "SystemTime::now",
    "std::env",
    "env::var",
    "io::stdin",
    "io::stdout",
    "io::stderr",
    "SystemRandom",
    "nix::",
    "inotify::",
    "socket2::",
    "if_addrs::",
    "ureq::",
];

/// One module of the crate: its path (`""` for the crate root), its production code and the
/// module paths it references.
struct Module {
    code: String,
    refs: BTreeSet<String>,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a source file: `src/lib.rs` -> "", `src/soap/mod.rs` -> "soap",
/// `src/agent/plan.rs` -> "agent::plan". `None` for binaries and out-of-line test modules.
fn module_path(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().map(String::as_str) == Some("bin") || parts == ["main.rs"] {
        return None;
    }
    let mut segs: Vec<String> = parts.clone();
    let last = segs.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if stem == "tests" {
        return None;
    }
    if stem != "mod" && stem != "lib" {
        segs.push(stem.to_string());
    }
    Some(segs.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Removes comments, string and char literals (keeping line structure) so that only code remains.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && {
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            b.get(j) == Some(&b'"') && (i == 0 || !is_ident(b[i - 1]))
        } {
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // A multi-byte char literal or a lifetime.
                let n = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + n) == Some(&b'\'')).then_some(i + 1 + n)
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let n = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + n]);
            i += n;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Removes the items under `#[cfg(test)]` (an attribute, then an item up to its `;` or its
/// matching `}`) from stripped code.
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let b = item.as_bytes();
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, &c) in b.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a piece of code names after `crate::`, `super::` or `self::`, or after the name of
/// one of `here`'s own child modules (`children`: a Rust 2018 relative path such as
/// `use registry::Backends;` in `backend/mod.rs`, which no other item of the module can share a
/// name with), resolved against the module `here`, expanding grouped `use` trees. Each is a list
/// of segments from the crate root.
fn paths(code: &str, here: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':'))
            && is_ident(b[i])
            && !(i > 0 && b[i - 1].is_ascii_digit())
        {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &code[start..i];
            let base: Option<Vec<String>> = match word {
                "crate" => Some(Vec::new()),
                "self" => Some(here.to_vec()),
                "super" => Some(here[..here.len().saturating_sub(1)].to_vec()),
                child if children.contains(child) => {
                    let mut p = here.to_vec();
                    p.push(child.to_string());
                    Some(p)
                }
                _ => None,
            };
            if let Some(base) = base {
                if code[i..].starts_with("::") {
                    let (mut list, next) = tree(code, i + 2, base);
                    found.append(&mut list);
                    i = next;
                }
            }
        } else {
            i += 1;
        }
    }
    found
}

/// Reads a path tail at `i` (after `::`): segments, `super`, and `{ a, b::c }` groups.
fn tree(code: &str, mut i: usize, mut prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            let mut out = Vec::new();
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return (out, i + 1);
                }
                let (mut list, next) = tree(code, i, prefix.clone());
                out.append(&mut list);
                if next <= i {
                    return (out, i + 1);
                }
                i = next;
            }
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let seg = &code[start..i];
        match seg {
            "" | "self" => return (vec![prefix], i),
            "super" => {
                prefix.pop();
            }
            _ => prefix.push(seg.to_string()),
        }
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            // `as name` and the rest end the path.
            return (vec![prefix], i);
        }
    }
}

/// The longest module of the crate that `path` starts with.
fn resolve(path: &[String], modules: &BTreeMap<String, Module>) -> Option<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

fn load() -> BTreeMap<String, Module> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut raw = BTreeMap::new();
    for f in &files {
        if let Some(m) = module_path(f) {
            let text = fs::read_to_string(f).unwrap();
            raw.insert(m, without_tests(&strip(&text)));
        }
    }
    let mut modules: BTreeMap<String, Module> = raw
        .iter()
        .map(|(m, code)| {
            (
                m.clone(),
                Module {
                    code: code.clone(),
                    refs: BTreeSet::new(),
                },
            )
        })
        .collect();
    for (m, code) in &raw {
        let here: Vec<String> = if m.is_empty() {
            Vec::new()
        } else {
            m.split("::").map(String::from).collect()
        };
        let depth = here.len();
        let children: BTreeSet<String> = raw
            .keys()
            .filter(|c| within(c, m) && c != &m && c.split("::").count() == depth + 1)
            .map(|c| c.rsplit("::").next().unwrap_or(c).to_string())
            .collect();
        let refs: BTreeSet<String> = paths(code, &here, &children)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|r| r != m)
            .collect();
        modules.get_mut(m).unwrap().refs = refs;
    }
    modules
}

fn within(module: &str, room: &str) -> bool {
    room.is_empty() || module == room || module.starts_with(&format!("{room}::"))
}

/// What a module's own code names of [`OS_ACCESS`].
fn os_access(code: &str) -> Vec<&'static str> {
    OS_ACCESS
        .iter()
        .copied()
        .filter(|needle| {
            code.match_indices(needle).any(|(at, _)| {
                let before = code[..at].bytes().next_back();
                // Part of a longer name (`MyFile::`) is not the name; a path (`std::net::TcpStream`) is.
                !before.is_some_and(is_ident)
            })
        })
        .collect()
}

#[test]
fn the_pure_rooms_touch_no_file_socket_process_thread_or_clock() {
    let modules = load();
    let mut failures = Vec::new();
    for room in PURE {
        assert!(
            modules.keys().any(|m| within(m, room)),
            "the pure room `{room}` does not exist: keep PURE true to the layout"
        );
        // Every module the room reaches through the crate, with the way it was reached.
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut todo: Vec<(String, Vec<String>)> = modules
            .keys()
            .filter(|m| within(m, room))
            .map(|m| (m.clone(), vec![m.clone()]))
            .collect();
        while let Some((m, via)) = todo.pop() {
            if seen.contains_key(&m) {
                continue;
            }
            for r in &modules[&m].refs {
                if !seen.contains_key(r) {
                    let mut v = via.clone();
                    v.push(r.clone());
                    todo.push((r.clone(), v));
                }
            }
            seen.insert(m, via);
        }
        for (m, via) in &seen {
            let hits = os_access(&modules[m].code);
            if !hits.is_empty() {
                failures.push(format!(
                    "pure room `{room}` reaches `{m}` (via {}), which names {hits:?}",
                    via.join(" -> ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn sibling_modules_import_each_other_in_no_cycle() {
    let modules = load();
    let mut failures = Vec::new();
    for parent in modules.keys() {
        let depth = if parent.is_empty() {
            0
        } else {
            parent.split("::").count()
        };
        let children: Vec<&String> = modules
            .keys()
            .filter(|m| within(m, parent) && *m != parent && m.split("::").count() == depth + 1)
            .collect();
        if children.len() < 2 {
            continue;
        }
        // child -> siblings its subtree references
        let mut edges: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
        for c in &children {
            let set = edges.entry(c).or_default();
            for (m, module) in &modules {
                if !within(m, c) {
                    continue;
                }
                for r in &module.refs {
                    for d in &children {
                        if d != c && within(r, d) {
                            set.insert(d);
                        }
                    }
                }
            }
        }
        // Report each strongly connected set once, with one cycle through it.
        let mut reported: BTreeSet<&String> = BTreeSet::new();
        for c in &children {
            if reported.contains(c) {
                continue;
            }
            let only: BTreeMap<&String, BTreeSet<&String>> = edges
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        v.iter()
                            .copied()
                            .filter(|d| reaches(&edges, d, c))
                            .collect(),
                    )
                })
                .filter(|(k, _)| reaches(&edges, c, k) && reaches(&edges, k, c))
                .collect();
            if let Some(cycle) = find_cycle(&only) {
                reported.extend(only.keys().copied());
                failures.push(format!(
                    "a cycle among the rooms of `{}`: {} (the rooms that reach each other: {})",
                    if parent.is_empty() { "crate" } else { parent },
                    cycle.join(" -> "),
                    only.keys()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Whether `to` can be reached from `from` (a node reaches itself).
fn reaches(edges: &BTreeMap<&String, BTreeSet<&String>>, from: &String, to: &String) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(n) = todo.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n) {
            todo.extend(edges.get(n).into_iter().flatten().copied());
        }
    }
    false
}

/// A cycle of the graph, as the names along it (first repeated at the end), if there is one.
fn find_cycle(edges: &BTreeMap<&String, BTreeSet<&String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        n: &'a String,
        edges: &BTreeMap<&'a String, BTreeSet<&'a String>>,
        mark: &mut BTreeMap<&'a String, Mark>,
        stack: &mut Vec<&'a String>,
    ) -> Option<Vec<String>> {
        mark.insert(n, Mark::Open);
        stack.push(n);
        for &next in edges.get(n).into_iter().flatten() {
            match mark.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|s| *s == next).unwrap();
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(next.to_string());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, edges, mark, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        None
    }
    let mut mark = BTreeMap::new();
    for &n in edges.keys() {
        if mark.get(n).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(n, edges, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The checker itself: a planted file access and a planted cycle are found, and comments,
/// strings and test code are not read as code.
#[test]
fn the_checker_finds_what_it_looks_for() {
    let code = without_tests(&strip(
        "// std::fs in a comment\nlet s = \"std::fs::read\";\n#[cfg(test)]\nmod tests { use std::fs; }\nfn f() {}",
    ));
    assert!(os_access(&code).is_empty(), "{code}");
    assert_eq!(
        os_access(&strip("let f = std::fs::File::open(p);")),
        ["std::fs", "fs::", "File::"]
    );
    assert_eq!(
        os_access(&strip("let t = Instant::now();")),
        ["Instant::now"]
    );
    assert!(os_access(&strip("let a: std::net::IpAddr = ip;")).is_empty());

    assert_eq!(
        os_access(&strip("std::net::TcpStream::connect(a)")),
        ["TcpStream"]
    );
    assert_eq!(
        os_access(&strip("let r = ring::rand::SystemRandom::new();")),
        ["SystemRandom"]
    );
    assert!(os_access(&strip("let p = MyFile::open(); let c = SubCommand::Run;")).is_empty());

    let here = vec!["datamodel".to_string(), "backend".to_string()];
    let children: BTreeSet<String> = ["registry".to_string()].into();
    let found = paths(
        &strip("use crate::{soap::{ParameterValue, Limits}, cwmp::fault::Fault};\nuse super::types::BaseType;\nlet x = self::uci::UciBackend::new();\npub use registry::{BackendKind, Backends};\nlet y = std::registry::X;"),
        &here,
        &children,
    );
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "soap::ParameterValue",
            "soap::Limits",
            "cwmp::fault::Fault",
            "datamodel::types::BaseType",
            "datamodel::backend::uci::UciBackend::new",
            "datamodel::backend::registry::BackendKind",
            "datamodel::backend::registry::Backends"
        ]
    );

    let (a, b, c) = ("a".to_string(), "b".to_string(), "c".to_string());
    let mut edges: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    edges.entry(&a).or_default().insert(&b);
    edges.entry(&b).or_default().insert(&c);
    assert_eq!(find_cycle(&edges), None);
    edges.entry(&c).or_default().insert(&a);
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
}
