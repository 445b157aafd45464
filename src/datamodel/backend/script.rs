//! The `script` backend: vendor scripts, the door through which a vendor serves parameters
//! without a rebuild. Invariant: one process per script per request, never one per parameter
//! (unlike easycwmp's shell functions).
//!
//! A binding key is `NAME:KEY`, where NAME is a script declared in a data model file
//! (`[script.NAME]`, [`ScriptDef`]) and KEY is the script's own name for the value or table.
//! The protocol (one line per item; VALUE escapes `\\`, `\n` and `\t`, other backslashes are kept
//! as they are):
//!
//! | call | stdin | stdout |
//! |---|---|---|
//! | `SCRIPT get` | one KEY per line | `ok<TAB>KEY<TAB>VALUE` or `fault<TAB>KEY<TAB>CODE<TAB>MESSAGE` per key |
//! | `SCRIPT list TABLE` | | `instance<TAB>KEY` per instance |
//! | `SCRIPT set` | `KEY<TAB>VALUE` per line | `fault` lines for refused values; `deferred` when the change takes effect at the end of the session |
//! | `SCRIPT add TABLE` | | `instance<TAB>KEY` of the new instance (or a `fault` line) |
//! | `SCRIPT delete TABLE KEY` | | nothing (or a `fault` line) |
//! | `SCRIPT end-session` | | nothing; run once at the end of a session in which a change printed `deferred` |
//!
//! Exit status 0 means done. A key a `get` does not answer has no value (the engine uses the
//! default). A script that exits with another status, runs longer than its timeout, writes more
//! than [`MAX_OUTPUT`] bytes or a line outside the protocol, or cannot be started costs 9002 for
//! what was asked of it, never a hang or a crash of the agent: every call goes through
//! [`crate::sys::process`].
//!
//! Consistency (TR-069 §A.3.2.1, all or nothing): values and instance lists read are kept until
//! [`Backend::invalidate`] (one snapshot per session), and a script that failed a read is not
//! called again for reads in the same snapshot (a hung script costs one timeout per session, not
//! one per request). Sets are staged and sent in one `set` call per script at `apply`, after a
//! `get` of the same keys; a rollback sends those values back with another `set`. The limits of
//! that undo: a value the script did not answer cannot be restored, a `delete` cannot be undone,
//! and the script sees the transient values. An `add` runs when it is staged (the engine needs
//! the new key at once) and is undone with `delete`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::{Applied, Backend, Cx, Platform, ScriptDef};
use crate::cwmp::fault::Fault;
use crate::sys::process::{self, Running};

/// The most bytes a script may write on stdout in one call; more is 9002.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// What one `get` answered, by key (`None`: refused with a `fault` line).
type Answers = HashMap<String, Option<String>>;

/// Scripts declared by the data model files, and what they said in this snapshot.
pub struct ScriptBackend {
    /// Timeout of a script that declares none ([`Platform::script_timeout`]).
    default_timeout: Duration,
    scripts: BTreeMap<String, ScriptDef>,
    /// Values read in this snapshot, by full key (`NAME:KEY`); `None` when not answered.
    values: HashMap<String, Option<String>>,
    /// Instance keys listed in this snapshot, by full table key (`NAME:TABLE`).
    lists: HashMap<String, Vec<String>>,
    /// Scripts that failed a read in this snapshot, with the fault given again at once.
    broken: BTreeMap<String, Fault>,
    /// Staged values by script, in staging order (a later value of a key replaces it).
    staged: BTreeMap<String, Vec<(String, String)>>,
    /// Staged deletions: (script, table, instance key).
    deletes: Vec<(String, String, String)>,
    /// Values before `apply`, by script, sent back by `rollback`.
    undo: Vec<(String, Vec<(String, String)>)>,
    /// Instances created since the last commit: (script, table, instance key), deleted by
    /// `rollback`.
    added: Vec<(String, String, String)>,
    /// Whether a change since the last `apply` printed `deferred`.
    pending_deferred: bool,
    /// Scripts whose `end-session` runs when the session ends.
    deferred: BTreeSet<String>,
    /// The per-key faults of the last `set` (full key, fault).
    set_faults: Vec<(String, Fault)>,
}

impl ScriptBackend {
    pub fn new(platform: &Platform) -> ScriptBackend {
        ScriptBackend {
            default_timeout: platform.script_timeout,
            scripts: BTreeMap::new(),
            values: HashMap::new(),
            lists: HashMap::new(),
            broken: BTreeMap::new(),
            staged: BTreeMap::new(),
            deletes: Vec::new(),
            undo: Vec::new(),
            added: Vec::new(),
            pending_deferred: false,
            deferred: BTreeSet::new(),
            set_faults: Vec::new(),
        }
    }

    /// Sets the scripts the data model files declared (`[script.NAME]`), by NAME. Drops every
    /// cached value.
    pub fn set_scripts(&mut self, scripts: BTreeMap<String, ScriptDef>) {
        self.scripts = scripts;
        self.invalidate();
    }

    /// The values the last `apply` had refused by a script (`fault` lines of `set` with codes
    /// 9005–9008): full key (`NAME:KEY`) and fault. `apply` returns the first of them; the
    /// engine may use this list to report every refused parameter (§A.3.2.1).
    pub fn set_faults(&self) -> &[(String, Fault)] {
        &self.set_faults
    }

    /// The declared script NAME of a full key, and the rest.
    fn split<'k>(&self, full: &'k str) -> Result<(&'k str, &'k str), Fault> {
        let (name, key) = split_key(full).map_err(Fault::internal)?;
        if !self.scripts.contains_key(name) {
            return Err(Fault::internal(format!(
                "script {name:?} is not declared: no [script.{name}] in the data model files (key {full:?})"
            )));
        }
        Ok((name, key))
    }

    /// Starts `SCRIPT ARGS…` with `stdin`.
    fn start(&self, name: &str, args: &[&str], stdin: &[u8]) -> Result<Running, Fault> {
        let def = self.def(name)?;
        let timeout = def.timeout.unwrap_or(self.default_timeout);
        let mut cmd = Command::new(&def.path);
        cmd.args(args);
        process::start(&mut cmd, stdin, timeout, MAX_OUTPUT)
            .map_err(|e| call_fault(name, def, args, &e.to_string()))
    }

    /// Waits for a started call and parses what it wrote.
    fn finish(&self, name: &str, args: &[&str], running: Running) -> Result<Reply, Fault> {
        let def = self.def(name)?;
        let out = running
            .wait()
            .map_err(|e| call_fault(name, def, args, &e.to_string()))?;
        let text = String::from_utf8(out.stdout)
            .map_err(|_| call_fault(name, def, args, "output is not UTF-8"))?;
        let lines = parse_output(&text).map_err(|m| call_fault(name, def, args, &m))?;
        let stderr = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(Reply {
            status: out.status,
            stderr,
            lines,
        })
    }

    /// Runs one call to its end.
    fn call(&self, name: &str, args: &[&str], stdin: &[u8]) -> Result<Reply, Fault> {
        let running = self.start(name, args, stdin)?;
        self.finish(name, args, running)
    }

    fn def(&self, name: &str) -> Result<&ScriptDef, Fault> {
        self.scripts.get(name).ok_or_else(|| {
            Fault::internal(format!(
                "script {name:?} is not declared: no [script.{name}] in the data model files"
            ))
        })
    }

    /// Runs `get` for each script (side by side) with its keys; returns the answers by script
    /// and key (`None`: not answered or refused). The first failure is returned after every
    /// started call has ended.
    fn get_many(
        &self,
        wanted: &BTreeMap<&str, Vec<&str>>,
    ) -> Vec<(String, Result<Answers, Fault>)> {
        let mut started = Vec::new();
        for (&name, keys) in wanted {
            let mut stdin = String::new();
            for k in keys {
                stdin.push_str(k);
                stdin.push('\n');
            }
            started.push((name, self.start(name, &["get"], stdin.as_bytes())));
        }
        let mut out = Vec::new();
        for (name, running) in started {
            let r = running
                .and_then(|r| self.finish(name, &["get"], r))
                .and_then(|reply| {
                    let def = self.def(name)?;
                    reply.check_status(name, def, &["get"])?;
                    let mut got = Answers::new();
                    let asked: BTreeSet<&str> =
                        wanted.get(name).into_iter().flatten().copied().collect();
                    for line in reply.lines {
                        match line {
                            Line::Ok(k, v) if asked.contains(k.as_str()) => {
                                got.insert(k, Some(v));
                            }
                            Line::Fault(k, code, msg) if asked.contains(k.as_str()) => {
                                // The engine takes no per-parameter read fault: the value is
                                // left out (the default is used) and the refusal is logged.
                                log::warn!("script {name}: get {k}: fault {code}: {msg}");
                                got.insert(k, None);
                            }
                            Line::Ok(k, _) | Line::Fault(k, _, _) => {
                                log::debug!("script {name}: get: answer for {k:?}, not asked");
                            }
                            other => {
                                return Err(call_fault(
                                    name,
                                    def,
                                    &["get"],
                                    &format!("unexpected `{}` line", other.word()),
                                ))
                            }
                        }
                    }
                    Ok(got)
                });
            out.push((name.to_string(), r));
        }
        out
    }

    /// Runs `set` with these pairs. Returns the per-key faults (full key, fault), and notes a
    /// `deferred` answer.
    fn set_pairs(
        &mut self,
        name: &str,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, Fault)>, Fault> {
        let mut stdin = String::new();
        for (k, v) in pairs {
            stdin.push_str(k);
            stdin.push('\t');
            stdin.push_str(&escape(v));
            stdin.push('\n');
        }
        let reply = self.call(name, &["set"], stdin.as_bytes())?;
        let def = self.def(name)?.clone();
        let def = &def;
        let mut faults = Vec::new();
        for line in &reply.lines {
            match line {
                Line::Deferred => {
                    self.deferred.insert(name.to_string());
                    self.pending_deferred = true;
                }
                Line::Fault(k, code, msg) => {
                    let full = format!("{name}:{k}");
                    let fault = if (9005..=9008).contains(code) {
                        Fault::from_code(*code, format!("{full}: {msg}"))
                    } else {
                        call_fault(name, def, &["set"], &format!("{k}: fault {code}: {msg}"))
                    };
                    faults.push((full, fault));
                }
                other => {
                    return Err(call_fault(
                        name,
                        def,
                        &["set"],
                        &format!("unexpected `{}` line", other.word()),
                    ))
                }
            }
        }
        if faults.is_empty() {
            reply.check_status(name, def, &["set"])?;
        }
        // What this script said before is no longer the system's state.
        for (k, _) in pairs {
            self.values.remove(&format!("{name}:{k}"));
        }
        Ok(faults)
    }

    /// Runs `add` or `delete` of one instance: the instance key printed, if any.
    fn change_instance(&mut self, name: &str, args: &[&str]) -> Result<Option<String>, Fault> {
        let reply = self.call(name, args, b"")?;
        let def = self.def(name)?.clone();
        let def = &def;
        let mut instance = None;
        for line in reply.lines.iter() {
            match line {
                Line::Instance(k) if instance.is_none() && args.first() == Some(&"add") => {
                    instance = Some(k.clone());
                }
                Line::Deferred => {
                    self.deferred.insert(name.to_string());
                    self.pending_deferred = true;
                }
                Line::Fault(k, code, msg) => {
                    let detail = format!("{name}:{k}: {msg}");
                    return Err(match code {
                        9001 | 9003..=9008 => Fault::from_code(*code, detail),
                        _ => call_fault(name, def, args, &format!("fault {code}: {msg}")),
                    });
                }
                other => {
                    return Err(call_fault(
                        name,
                        def,
                        args,
                        &format!("unexpected `{}` line", other.word()),
                    ))
                }
            }
        }
        reply.check_status(name, def, args)?;
        // The script's tables and values changed: read them again.
        if let Some(table) = args.get(1) {
            self.lists.remove(&format!("{name}:{table}"));
        }
        let prefix = format!("{name}:");
        self.values.retain(|k, _| !k.starts_with(&prefix));
        Ok(instance)
    }
}

/// Checks a binding key when the definitions are loaded: `NAME:KEY`, NAME of letters, digits,
/// `_` and `-`, KEY not empty and free of control characters (the protocol is line- and
/// tab-separated).
pub fn check_key(key: &str) -> Result<(), String> {
    split_key(key).map(|_| ())
}

/// Splits `NAME:KEY` and checks both parts.
fn split_key(full: &str) -> Result<(&str, &str), String> {
    let Some((name, key)) = full.split_once(':') else {
        return Err(format!(
            "script key {full:?} is not `NAME:KEY` (NAME declared by [script.NAME])"
        ));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "script name {name:?} in {full:?}: letters, digits, `_` and `-` only"
        ));
    }
    check_item(key).map_err(|m| format!("script key {full:?}: {m}"))?;
    Ok((name, key))
}

/// A key or instance key the protocol can carry: not empty, no control character.
fn check_item(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.chars().any(char::is_control) {
        return Err("control characters (tab, newline…) are not allowed".into());
    }
    Ok(())
}

/// The fault of a failed call, naming the script, its file and the command.
fn call_fault(name: &str, def: &ScriptDef, args: &[&str], why: &str) -> Fault {
    Fault::internal(format!(
        "script {name} ({} {}): {why}",
        def.path.display(),
        args.join(" ")
    ))
}

/// What a finished call said.
struct Reply {
    status: ExitStatus,
    stderr: String,
    lines: Vec<Line>,
}

impl Reply {
    /// 9002 unless the script exited with status 0.
    fn check_status(&self, name: &str, def: &ScriptDef, args: &[&str]) -> Result<(), Fault> {
        if self.status.success() {
            return Ok(());
        }
        let how = match self.status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "killed by a signal".to_string(),
        };
        let why = if self.stderr.is_empty() {
            how
        } else {
            format!("{how}: {}", self.stderr)
        };
        Err(call_fault(name, def, args, &why))
    }
}

/// One line of a script's output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `ok KEY VALUE` (VALUE unescaped).
    Ok(String, String),
    /// `fault KEY CODE MESSAGE`.
    Fault(String, u32, String),
    /// `instance KEY`.
    Instance(String),
    /// `deferred`.
    Deferred,
}

impl Line {
    fn word(&self) -> &'static str {
        match self {
            Line::Ok(..) => "ok",
            Line::Fault(..) => "fault",
            Line::Instance(_) => "instance",
            Line::Deferred => "deferred",
        }
    }
}

/// Parses a script's stdout; empty lines are skipped. The error names the first bad line.
fn parse_output(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            let shown: String = raw.chars().take(80).collect();
            format!("output line {}: {why}: {shown:?}", n + 1)
        };
        let mut fields = raw.splitn(2, '\t');
        let word = fields.next().unwrap_or("");
        let rest = fields.next();
        let line = match (word, rest) {
            ("ok", Some(rest)) => {
                let (key, value) = rest
                    .split_once('\t')
                    .ok_or_else(|| bad("`ok` needs KEY<TAB>VALUE"))?;
                check_item(key).map_err(|m| bad(&m))?;
                Line::Ok(key.to_string(), unescape(value))
            }
            ("fault", Some(rest)) => {
                let mut f = rest.splitn(3, '\t');
                let key = f.next().unwrap_or("");
                let code = f
                    .next()
                    .and_then(|c| c.trim().parse::<u32>().ok())
                    .ok_or_else(|| bad("`fault` needs KEY<TAB>CODE<TAB>MESSAGE"))?;
                check_item(key).map_err(|m| bad(&m))?;
                Line::Fault(key.to_string(), code, unescape(f.next().unwrap_or("")))
            }
            ("instance", Some(key)) => {
                check_item(key).map_err(|m| bad(&m))?;
                Line::Instance(key.to_string())
            }
            ("deferred", None) => Line::Deferred,
            _ => return Err(bad("not `ok`, `fault`, `instance` or `deferred`")),
        };
        lines.push(line);
    }
    Ok(lines)
}

/// Escapes a value for one protocol line: `\` → `\\`, newline → `\n`, tab → `\t`.
pub fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s
}

/// Reverses [`escape`]; a backslash before any other character is kept as it is.
pub fn unescape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            s.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => s.push('\\'),
            Some('n') => s.push('\n'),
            Some('t') => s.push('\t'),
            Some(other) => {
                s.push('\\');
                s.push(other);
            }
            None => s.push('\\'),
        }
    }
    s
}

impl Backend for ScriptBackend {
    fn take_set_faults(&mut self) -> Vec<(String, Fault)> {
        std::mem::take(&mut self.set_faults)
    }

    fn writable(&self, key: &str) -> bool {
        self.split(key).is_ok()
    }

    fn creatable(&self, table: &str) -> bool {
        self.split(table).is_ok()
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        // One `get` per script with every key not yet read in this snapshot.
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for &full in keys {
            if self.values.contains_key(full) {
                continue;
            }
            let (name, key) = self.split(full)?;
            if let Some(f) = self.broken.get(name) {
                return Err(f.clone());
            }
            let list = wanted.entry(name).or_default();
            if !list.contains(&key) {
                list.push(key);
            }
        }
        let mut first_fault = None;
        for (name, got) in self.get_many(&wanted) {
            match got {
                Ok(mut got) => {
                    for k in wanted.get(name.as_str()).into_iter().flatten() {
                        let v = got.remove(*k).flatten();
                        self.values.insert(format!("{name}:{k}"), v);
                    }
                }
                Err(f) => {
                    self.broken.insert(name, f.clone());
                    first_fault.get_or_insert(f);
                }
            }
        }
        if let Some(f) = first_fault {
            return Err(f);
        }
        Ok(keys
            .iter()
            .map(|k| self.values.get(*k).cloned().flatten())
            .collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        if let Some(list) = self.lists.get(table) {
            return Ok(Some(list.clone()));
        }
        let (name, t) = self.split(table)?;
        if let Some(f) = self.broken.get(name) {
            return Err(f.clone());
        }
        let args = ["list", t];
        let listed = self.call(name, &args, b"").and_then(|reply| {
            let def = self.def(name)?;
            reply.check_status(name, def, &args)?;
            let mut keys: Vec<String> = Vec::new();
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            for line in reply.lines {
                match line {
                    Line::Instance(k) => {
                        if seen.insert(k.clone()) {
                            keys.push(k);
                        }
                    }
                    other => {
                        return Err(call_fault(
                            name,
                            def,
                            &args,
                            &format!("unexpected `{}` line", other.word()),
                        ))
                    }
                }
            }
            Ok(keys)
        });
        match listed {
            Ok(keys) => {
                self.lists.insert(table.to_string(), keys.clone());
                Ok(Some(keys))
            }
            Err(f) => {
                self.broken.insert(name.to_string(), f.clone());
                Err(f)
            }
        }
    }

    fn stage_set(&mut self, _cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        let (name, k) = self.split(key)?;
        let (name, k) = (name.to_string(), k.to_string());
        let list = self.staged.entry(name).or_default();
        list.retain(|(x, _)| *x != k);
        list.push((k, value.to_string()));
        Ok(())
    }

    fn stage_add(&mut self, _cx: &mut Cx<'_>, table: &str, _number: u32) -> Result<String, Fault> {
        let (name, t) = self.split(table)?;
        let (name, t) = (name.to_string(), t.to_string());
        let args = ["add", t.as_str()];
        let key = self.change_instance(&name, &args)?;
        let Some(key) = key else {
            let def = self.def(&name)?;
            return Err(call_fault(&name, def, &args, "no `instance` line"));
        };
        self.added.push((name, t, key.clone()));
        Ok(key)
    }

    fn stage_delete(&mut self, _cx: &mut Cx<'_>, table: &str, instance: &str) -> Result<(), Fault> {
        let (name, t) = self.split(table)?;
        check_item(instance).map_err(|m| Fault::internal(format!("{table} {instance:?}: {m}")))?;
        self.deletes
            .push((name.to_string(), t.to_string(), instance.to_string()));
        Ok(())
    }

    fn apply(&mut self, _cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        self.set_faults.clear();
        for (name, t, k) in std::mem::take(&mut self.deletes) {
            self.change_instance(&name, &["delete", &t, &k])?;
        }
        for (name, pairs) in std::mem::take(&mut self.staged) {
            // The values before, to send back on rollback (read now, not from the snapshot).
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            let wanted = BTreeMap::from([(name.as_str(), keys)]);
            let mut before = HashMap::new();
            for (_, got) in self.get_many(&wanted) {
                before = got?;
            }
            let old: Vec<(String, String)> = pairs
                .iter()
                .filter_map(|(k, _)| {
                    let v = before.get(k).cloned().flatten();
                    if v.is_none() {
                        log::warn!("script {name}: {k} has no value to restore on rollback");
                    }
                    v.map(|v| (k.clone(), v))
                })
                .collect();
            let at = self.undo.len();
            self.undo.push((name.clone(), old));
            let faults = self.set_pairs(&name, &pairs)?;
            if let Some((_, first)) = faults.first() {
                let first = first.clone();
                // The refused values were not changed: only the others are sent back.
                if let Some((_, old)) = self.undo.get_mut(at) {
                    old.retain(|(k, _)| !faults.iter().any(|(f, _)| *f == format!("{name}:{k}")));
                }
                self.set_faults = faults;
                return Err(first);
            }
        }
        if std::mem::take(&mut self.pending_deferred) {
            Ok(Applied::AtSessionEnd)
        } else {
            Ok(Applied::Now)
        }
    }

    fn commit(&mut self, _cx: &mut Cx<'_>) {
        self.undo.clear();
        self.added.clear();
    }

    fn rollback(&mut self, _cx: &mut Cx<'_>) {
        self.staged.clear();
        self.pending_deferred = false;
        for (name, _, k) in self.deletes.drain(..) {
            log::debug!("script {name}: delete of {k} dropped");
        }
        for (name, old) in std::mem::take(&mut self.undo).into_iter().rev() {
            if old.is_empty() {
                continue;
            }
            match self.set_pairs(&name, &old) {
                Ok(faults) => {
                    for (k, f) in faults {
                        log::warn!("script {name}: rollback of {k} refused: {f}");
                    }
                }
                Err(f) => log::warn!("script {name}: rollback failed: {f}"),
            }
        }
        for (name, t, k) in std::mem::take(&mut self.added).into_iter().rev() {
            if let Err(f) = self.change_instance(&name, &["delete", &t, &k]) {
                log::warn!("script {name}: rollback of add {t} {k} failed: {f}");
            }
        }
        // The restoring calls may have said `deferred`: that belongs to no change of the ACS.
        self.pending_deferred = false;
    }

    fn end_session(&mut self, _cx: &mut Cx<'_>) -> Vec<Fault> {
        let mut faults = Vec::new();
        for name in std::mem::take(&mut self.deferred) {
            let args = ["end-session"];
            let r = self.call(&name, &args, b"").and_then(|reply| {
                let def = self.def(&name)?;
                for line in &reply.lines {
                    match line {
                        Line::Fault(k, code, msg) => faults.push(call_fault(
                            &name,
                            def,
                            &args,
                            &format!("{k}: fault {code}: {msg}"),
                        )),
                        other => log::debug!("script {name}: end-session: {other:?} ignored"),
                    }
                }
                reply.check_status(&name, def, &args)
            });
            if let Err(f) = r {
                faults.push(f);
            }
        }
        self.invalidate();
        faults
    }

    fn invalidate(&mut self) {
        self.values.clear();
        self.lists.clear();
        self.broken.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("acme:led_brightness").is_ok());
        assert!(check_key("my-vendor_2:profile.{i}.name").is_ok());
        assert_eq!(
            split_key("acme:a:b").unwrap(),
            ("acme", "a:b"),
            "only the first `:` separates"
        );
        for bad in [
            "acme",
            ":key",
            "acme:",
            "ac me:key",
            "acme.sh:key",
            "acme:a\tb",
            "acme:a\nb",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        let v = "a\\b\nc\td \\n";
        assert_eq!(escape(v), "a\\\\b\\nc\\td \\\\n");
        assert_eq!(unescape(&escape(v)), v);
        // Other backslashes are kept as written (a Windows-style path, a trailing one).
        assert_eq!(unescape("C:\\dir\\"), "C:\\dir\\");
    }

    #[test]
    fn output_lines() {
        let text = "ok\ta\tx\\ty\n\nfault\tb\t9007\tout of range\ninstance\t3\ndeferred\nok\tc\t\n";
        assert_eq!(
            parse_output(text).unwrap(),
            [
                Line::Ok("a".into(), "x\ty".into()),
                Line::Fault("b".into(), 9007, "out of range".into()),
                Line::Instance("3".into()),
                Line::Deferred,
                Line::Ok("c".into(), String::new()),
            ]
        );
        assert_eq!(
            parse_output("fault\tb\t9001").unwrap(),
            [Line::Fault("b".into(), 9001, String::new())]
        );
        for bad in [
            "hello",
            "ok\tonlykey",
            "ok\t\tvalue",
            "fault\tb\tnotanumber\tm",
            "instance\t",
            "deferred\tnow",
            "OK\ta\tb",
        ] {
            let e = parse_output(bad).unwrap_err();
            assert!(e.contains("line 1"), "{bad:?}: {e}");
        }
        let e = parse_output("ok\ta\t1\nbad line\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
