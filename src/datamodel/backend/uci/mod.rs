//! The `uci` backend: values that live in OpenWrt's configuration (`/etc/config`), read and
//! written through the system's own `uci` command, never by editing its files (issue 3; key
//! grammar below and in `datamodel/README.md`).
//!
//! Reads: the first read of a snapshot is one `uci -n export` of the whole configuration
//! directory; a package it did not give (missing, or one uci cannot load) and a package the
//! agent changed since are read alone with `uci -n export PKG` (several side by side). Never a
//! process per parameter. (`export` rather than `show`: it tells a one-item list from a plain
//! option, which an exact rollback needs; `-n` names anonymous sections as `uci -X show` does.)
//! The snapshot is
//! kept until [`Backend::invalidate`] or the end of the session, so every read between two
//! invalidations sees one state (no instance appears between a GetParameterNames and the
//! GetParameterValues that follows).
//!
//! Writes are transactions (TR-069 §A.3.2.1: all or nothing): staged changes edit a copy of the
//! package; [`Backend::apply`] runs ONE `uci batch` with every `set`/`delete`/`add_list` and a
//! `commit` per package, and keeps the inverse batch (from the state before) for
//! [`Backend::rollback`], which also recreates deleted sections, anonymous ones included, with
//! their type, options, lists and position (`reorder`). Service reloads wait for the end of the
//! session, once per package (so the session is not cut off by the router reconfiguring its
//! WAN), and SetParameterValues then answers Status 1 (§A.3.2.1, Table A.9).
//!
//! Value keys: `PKG.SEC.OPT`, `PKG.SEC.OPT[]` (a list, read joined with `,`), `PKG.SEC.OPT[N]`
//! (one list item), `PKG.SEC.@min` / `PKG.SEC.@max` (first and last address of an OpenWrt
//! dnsmasq pool, from its `start`/`limit` and the subnet of `network.<interface>`). SEC is a
//! section name (anonymous ones as `uci -X show` prints them, `cfgOOHHHH`) or `@TYPE[N]`.
//! Table keys: `PKG.@TYPE` (every section of TYPE), `PKG.@TYPE?OPT=a|b&OPT!=c&.name!=x`
//! (filtered; AddObject creates a named section that matches; the condition `@pool=P` holds for
//! the sections — static leases — that belong to the dnsmasq pool `P` of the package, by the
//! subnet of their `ip`), `PKG.SEC` (0 or 1 instance), `PKG.SEC.OPT[]` (the items of a list
//! option).
//!
//! Deleting an anonymous section makes libuci rename those after it (names are positions):
//! [`Backend::take_renames`] gives the new names right after the change is applied.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Applied, Backend, Cx, Platform};
use crate::cwmp::fault::Fault;
use crate::sys::process;

/// Most time one `uci` call may take.
const UCI_TIMEOUT: Duration = Duration::from_secs(10);
/// Most time one service reload may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output read from one `uci export` (a whole package).
const MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// Largest list index accepted in a key (`OPT[N]`).
const MAX_INDEX: usize = 4096;
/// Largest section index accepted in a key (`@TYPE[N]`).
const MAX_SECTION_INDEX: i64 = 1_000_000;
/// The defaults of OpenWrt's dnsmasq init script for a pool's `start` and `limit`.
const DEFAULT_START: u64 = 100;
const DEFAULT_LIMIT: u64 = 150;
/// The package that holds the interfaces a DHCP pool is computed from.
const NETWORK: &str = "network";

/// The uci backend (see the module documentation).
/// The sections of one listing of a table, by name.
type Listing = BTreeMap<String, Section>;

pub struct UciBackend {
    bin: PathBuf,
    config: PathBuf,
    savedir: PathBuf,
    reload: BTreeMap<String, String>,
    /// Packages as read since the last invalidation, by name.
    snapshot: BTreeMap<String, Package>,
    /// Whether this snapshot began with one export of the whole directory.
    read_all: bool,
    /// Per table key: the sections of its two last listings that differed (before, now), by
    /// name: what a name held before the sections were renumbered (see [`Backend::renamed`]).
    listings: BTreeMap<String, (Listing, Listing)>,
    /// Tables whose listing is recorded in `listings` for the current snapshot.
    recorded: BTreeSet<String>,
    /// Staged changes, by package.
    staged: BTreeMap<String, Work>,
    /// Staged `@min`/`@max` writes, by (package, section name); resolved at apply.
    ranges: BTreeMap<(String, String), Range>,
    /// What `apply` changed, to undo on rollback.
    undo: Option<Undo>,
    /// The anonymous sections the last `apply` renamed: (package, old name, new name).
    renames: Vec<(String, String, String)>,
    /// Packages changed in this session whose services reload at its end.
    reloads: BTreeSet<String>,
}

/// A staged package: the state before and the state wanted.
struct Work {
    before: Package,
    after: Vec<Entry>,
}

/// A section of the wanted state and where it was in the state before.
struct Entry {
    origin: Option<usize>,
    sec: Section,
}

#[derive(Debug, Default, Clone, Copy)]
struct Range {
    min: Option<u32>,
    max: Option<u32>,
}

/// The inverse of an applied batch.
struct Undo {
    batch: String,
    packages: Vec<String>,
}

impl UciBackend {
    pub fn new(platform: &Platform) -> UciBackend {
        UciBackend {
            bin: platform.uci_bin.clone(),
            config: platform.uci_config.clone(),
            savedir: platform.uci_savedir.clone(),
            reload: platform.reload.clone(),
            snapshot: BTreeMap::new(),
            read_all: false,
            listings: BTreeMap::new(),
            recorded: BTreeSet::new(),
            staged: BTreeMap::new(),
            ranges: BTreeMap::new(),
            undo: None,
            renames: Vec::new(),
            reloads: BTreeSet::new(),
        }
    }

    /// `uci -c CONFIG -t SAVEDIR`: every call names both. The agent's own uncommitted changes
    /// (none outlive a batch) go to SAVEDIR; libuci still reads those other tools keep in its
    /// default save directory (`/tmp/.uci`), as every `uci` call on the router does.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-c").arg(&self.config).arg("-t").arg(&self.savedir);
        c
    }

    fn ensure_savedir(&self) -> Result<(), Fault> {
        std::fs::create_dir_all(&self.savedir).map_err(|e| {
            Fault::internal(format!(
                "cannot create the uci save directory {}: {e}",
                self.savedir.display()
            ))
        })
    }

    /// Reads the packages not in the snapshot yet: one `uci export` each, all started before
    /// the first is waited for.
    fn load<'k>(&mut self, pkgs: impl IntoIterator<Item = &'k str>) -> Result<(), Fault> {
        let missing: BTreeSet<&str> = pkgs
            .into_iter()
            .filter(|p| !self.snapshot.contains_key(*p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.ensure_savedir()?;
        let missing = if !self.read_all {
            // The first read of a snapshot exports the whole directory: one process start
            // instead of one per package as the request walks the tree (a single-core router
            // runs them one after the other anyway). What it did not give (a package that does
            // not exist, or does not load) is asked for on its own below, for the precise
            // answer; packages changed by the agent are read again on their own.
            self.read_all = true;
            self.load_all();
            missing
                .into_iter()
                .filter(|p| !self.snapshot.contains_key(*p))
                .collect()
        } else {
            missing
        };
        let started: Vec<_> = missing
            .iter()
            .map(|p| {
                let run = process::start(
                    self.command().args(["-n", "export", *p]),
                    b"",
                    UCI_TIMEOUT,
                    MAX_OUTPUT,
                );
                (*p, run)
            })
            .collect();
        let mut first_error = None;
        for (p, run) in started {
            let cmd = format!("{} -n export {p}", self.bin.display());
            match run.and_then(process::Running::wait) {
                Err(e) => {
                    first_error.get_or_insert(Fault::internal(format!("`{cmd}`: {e}")));
                }
                Ok(out) if !out.status.success() => {
                    let line = out.stderr_line();
                    if line.ends_with("Entry not found") {
                        // No such package: an empty one.
                        self.snapshot.insert(p.to_string(), Package::default());
                    } else {
                        let why = if line.is_empty() {
                            out.status.to_string()
                        } else {
                            line
                        };
                        first_error.get_or_insert(Fault::internal(format!("`{cmd}`: {why}")));
                    }
                }
                Ok(out) => match parse_export(p, &String::from_utf8_lossy(&out.stdout)) {
                    Ok(pkg) => {
                        self.snapshot.insert(p.to_string(), pkg);
                    }
                    Err(e) => {
                        first_error.get_or_insert(Fault::internal(format!(
                            "`{cmd}`: unreadable output: {e}"
                        )));
                    }
                },
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads every package of the config directory with one `uci -n export` into the snapshot
    /// (those not in it already). uci skips a package it cannot load (and says so on stderr);
    /// output that does not parse is ignored here, so the caller asks per package.
    fn load_all(&mut self) {
        let Ok(out) = process::run(
            self.command().args(["-n", "export"]),
            b"",
            UCI_TIMEOUT,
            MAX_OUTPUT,
        ) else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        for (name, chunk) in split_packages(&text) {
            if self.snapshot.contains_key(name) {
                continue;
            }
            if let Ok(pkg) = parse_export(name, chunk) {
                self.snapshot.insert(name.to_string(), pkg);
            }
        }
    }

    /// Drops the whole snapshot; the next read exports the whole directory again.
    fn forget_all(&mut self) {
        self.snapshot.clear();
        self.recorded.clear();
        self.read_all = false;
    }

    /// Runs one `uci batch`. uci goes on after a failing command and exits 0, so anything on
    /// stderr is a failure.
    fn run_batch(&self, script: &str) -> Result<(), Fault> {
        self.ensure_savedir()?;
        let cmd = format!("{} batch", self.bin.display());
        let out = process::run(
            self.command().arg("batch"),
            script.as_bytes(),
            UCI_TIMEOUT,
            MAX_OUTPUT,
        )
        .map_err(|e| Fault::internal(format!("`{cmd}`: {e}")))?;
        let line = out.stderr_line();
        if !out.status.success() || !line.is_empty() {
            let why = if line.is_empty() {
                out.status.to_string()
            } else {
                line
            };
            return Err(Fault::internal(format!("`{cmd}` failed: {why}")));
        }
        Ok(())
    }

    fn read_one(&self, k: &ValueKey<'_>) -> Option<String> {
        let pkg = self.snapshot.get(k.pkg)?;
        let sec = pkg.sections.get(locate(&pkg.sections, |s| s, &k.sec)?)?;
        match k.field {
            Field::Opt(o) | Field::List(o) => sec.opt(o).map(Value::joined),
            Field::Item(o, n) => sec.opt(o)?.items().get(n).map(|s| s.to_string()),
            Field::Min | Field::Max => {
                let net = self.snapshot.get(NETWORK)?;
                let pool = pool_of(sec, net.sections.iter())?;
                let a = if k.field == Field::Min {
                    pool.min
                } else {
                    pool.max
                };
                Some(Ipv4Addr::from(a).to_string())
            }
        }
    }

    /// The staged copy of a package (made from the snapshot on first use; load it first).
    fn work(&mut self, pkg: &str) -> &mut Work {
        let snapshot = &self.snapshot;
        self.staged.entry(pkg.to_string()).or_insert_with(|| {
            let before = snapshot.get(pkg).cloned().unwrap_or_default();
            let after = before
                .sections
                .iter()
                .enumerate()
                .map(|(i, s)| Entry {
                    origin: Some(i),
                    sec: s.clone(),
                })
                .collect();
            Work { before, after }
        })
    }

    /// The pool of a DHCP section in the staged state (the staged `network` when it is
    /// staged too).
    fn staged_pool(&self, pkg: &str, sec: &str) -> Option<Pool> {
        let s = &self
            .staged
            .get(pkg)?
            .after
            .iter()
            .find(|e| e.sec.name == sec)?
            .sec;
        match self.staged.get(NETWORK) {
            Some(w) => pool_of(s, w.after.iter().map(|e| &e.sec)),
            None => pool_of(s, self.snapshot.get(NETWORK)?.sections.iter()),
        }
    }

    fn stage_range(&mut self, k: &ValueKey<'_>, value: &str) -> Result<(), Fault> {
        let addr: Ipv4Addr = value.trim().parse().map_err(|_| {
            Fault::InvalidParameterValue(format!("{value:?} is not an IPv4 address"))
        })?;
        let addr = u32::from(addr);
        let w = self.work(k.pkg);
        let name = locate(&w.after, |e| &e.sec, &k.sec)
            .and_then(|i| w.after.get(i))
            .map(|e| e.sec.name.clone())
            .ok_or_else(|| no_section(k.pkg, &k.sec))?;
        let pool = self.staged_pool(k.pkg, &name).ok_or_else(|| {
            Fault::InvalidParameterValue(format!(
                "the address pool of {}.{name} cannot be computed (its interface has no IPv4 \
                 address and netmask in {NETWORK})",
                k.pkg
            ))
        })?;
        if addr <= pool.network || addr >= pool.broadcast {
            return Err(Fault::InvalidParameterValue(format!(
                "{value} is outside the subnet {}/{} of {}.{name}",
                Ipv4Addr::from(pool.network),
                pool.prefix,
                k.pkg
            )));
        }
        let r = self.ranges.entry((k.pkg.to_string(), name)).or_default();
        if k.field == Field::Min {
            r.min = Some(addr);
        } else {
            r.max = Some(addr);
        }
        if let (Some(min), Some(max)) = (r.min, r.max) {
            if min > max {
                return Err(Fault::InvalidParameterValue(format!(
                    "the pool's first address {} is above its last {}",
                    Ipv4Addr::from(min),
                    Ipv4Addr::from(max)
                )));
            }
        }
        Ok(())
    }

    /// Turns the staged `@min`/`@max` writes into `start` and `limit` (both ends known now).
    fn resolve_ranges(&mut self) -> Result<(), Fault> {
        let ranges = std::mem::take(&mut self.ranges);
        for ((pkg, name), r) in ranges {
            let pool = self.staged_pool(&pkg, &name).ok_or_else(|| {
                Fault::InvalidParameterValue(format!(
                    "the address pool of {pkg}.{name} cannot be computed"
                ))
            })?;
            let min = r.min.unwrap_or(pool.min);
            let max = r.max.unwrap_or(pool.max);
            if min > max || min <= pool.network || max >= pool.broadcast {
                return Err(Fault::InvalidParameterValue(format!(
                    "the pool {}–{} of {pkg}.{name} is empty or outside {}/{}",
                    Ipv4Addr::from(min),
                    Ipv4Addr::from(max),
                    Ipv4Addr::from(pool.network),
                    pool.prefix
                )));
            }
            let start = (min - pool.network).to_string();
            let limit = (u64::from(max - min) + 1).to_string();
            if let Some(e) = self
                .work(&pkg)
                .after
                .iter_mut()
                .find(|e| e.sec.name == name)
            {
                e.sec.set("start", Some(Value::One(start)));
                e.sec.set("limit", Some(Value::One(limit)));
            }
        }
        Ok(())
    }

    /// A new section name: `cwmp` and 8 random hex digits, unused in the package.
    fn new_name(&mut self, pkg: &str, number: u32) -> String {
        let w = self.work(pkg);
        let mut salt = 0u64;
        loop {
            let mut h = RandomState::new().build_hasher();
            h.write_u32(number);
            h.write_u64(salt);
            let name = format!("cwmp{:08x}", h.finish() & 0xffff_ffff);
            let used = w.after.iter().any(|e| e.sec.name == name)
                || w.before.sections.iter().any(|s| s.name == name);
            if !used || salt > 64 {
                return name;
            }
            salt += 1;
        }
    }

    fn clear_staged(&mut self) {
        self.staged.clear();
        self.ranges.clear();
    }
}

/// Checks a binding key when the definitions are loaded: a value key or a table key of the
/// grammar in the module documentation.
pub fn check_key(key: &str) -> Result<(), String> {
    let value = parse_value_key(key);
    if value.is_ok() {
        return Ok(());
    }
    let table = parse_table_key(key);
    if table.is_ok() {
        return Ok(());
    }
    let head = key.split('?').next().unwrap_or(key);
    let looks_like_table = key.contains('?') || head.split('.').count() == 2;
    let why = if looks_like_table {
        table.err()
    } else {
        value.err()
    };
    Err(format!(
        "bad uci key {key:?}: {}",
        why.unwrap_or_else(|| "unknown form".into())
    ))
}

impl Backend for UciBackend {
    fn writable(&self, key: &str) -> bool {
        parse_value_key(key).is_ok()
    }

    fn creatable(&self, table: &str) -> bool {
        match parse_table_key(table) {
            // A section cannot be made to match a condition on its own name.
            Ok(TableKey::Type { conds, .. }) => {
                !conds.iter().any(|c| c.opt == ".name" && !c.negate)
            }
            _ => false,
        }
    }

    fn read(&mut self, _cx: &mut Cx<'_>, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        // A key made invalid by a substituted value (a nested reference that read empty) has
        // no value; it is not an error of the backend.
        let parsed: Vec<Option<ValueKey<'_>>> =
            keys.iter().map(|k| parse_value_key(k).ok()).collect();
        let mut pkgs: BTreeSet<&str> = BTreeSet::new();
        for k in parsed.iter().flatten() {
            pkgs.insert(k.pkg);
            if matches!(k.field, Field::Min | Field::Max) {
                pkgs.insert(NETWORK);
            }
        }
        self.load(pkgs)?;
        Ok(parsed
            .iter()
            .map(|k| k.as_ref().and_then(|k| self.read_one(k)))
            .collect())
    }

    fn instances(&mut self, _cx: &mut Cx<'_>, table: &str) -> Result<Option<Vec<String>>, Fault> {
        let Ok(t) = parse_table_key(table) else {
            return Ok(Some(Vec::new()));
        };
        let by_pool =
            matches!(&t, TableKey::Type { conds, .. } if conds.iter().any(|c| c.opt == POOL));
        if by_pool {
            self.load([t.pkg(), NETWORK])?;
        } else {
            self.load([t.pkg()])?;
        }
        let Some(pkg) = self.snapshot.get(t.pkg()) else {
            return Ok(Some(Vec::new()));
        };
        let keys = match &t {
            TableKey::Type { ty, conds, .. } => {
                let pools = by_pool.then(|| {
                    let net: Vec<&Section> = self
                        .snapshot
                        .get(NETWORK)
                        .map(|n| n.sections.iter().collect())
                        .unwrap_or_default();
                    Pools::of(pkg.sections.iter(), &net)
                });
                pkg.sections
                    .iter()
                    .filter(|s| {
                        s.ty == *ty
                            && matches_filter(s, conds, pools.as_ref().and_then(|p| p.owner(s)))
                    })
                    .map(|s| s.name.clone())
                    .collect()
            }
            TableKey::Single { sec, .. } => locate(&pkg.sections, |s| s, sec)
                .and_then(|i| pkg.sections.get(i))
                .map(|s| vec![s.name.clone()])
                .unwrap_or_default(),
            TableKey::Items { sec, opt, .. } => {
                let mut items: Vec<String> = Vec::new();
                if let Some(v) = locate(&pkg.sections, |s| s, sec)
                    .and_then(|i| pkg.sections.get(i))
                    .and_then(|s| s.opt(opt))
                {
                    for it in v.items() {
                        if !items.iter().any(|x| x == it) {
                            items.push(it.to_string());
                        }
                    }
                }
                items
            }
        };
        // What each listed section holds, to follow sections whose names change: recorded
        // once per snapshot of the package (a walk lists the same table many times).
        if matches!(t, TableKey::Type { .. }) && self.recorded.insert(table.to_string()) {
            let now: BTreeMap<String, Section> = pkg
                .sections
                .iter()
                .filter(|s| keys.contains(&s.name))
                .map(|s| (s.name.clone(), s.clone()))
                .collect();
            let entry = self.listings.entry(table.to_string()).or_default();
            if entry.1 != now {
                entry.0 = std::mem::replace(&mut entry.1, now);
            }
        }
        Ok(Some(keys))
    }

    fn stage_set(&mut self, _cx: &mut Cx<'_>, key: &str, value: &str) -> Result<(), Fault> {
        let k = parse_value_key(key).map_err(|e| Fault::internal(format!("uci key: {e}")))?;
        if let Some(c) = value
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(Fault::InvalidParameterValue(format!(
                "control character {c:?} cannot be stored in uci"
            )));
        }
        let range = matches!(k.field, Field::Min | Field::Max);
        if range {
            self.load([k.pkg, NETWORK])?;
            return self.stage_range(&k, value);
        }
        self.load([k.pkg])?;
        let w = self.work(k.pkg);
        let entry = locate(&w.after, |e| &e.sec, &k.sec)
            .and_then(|i| w.after.get_mut(i))
            .ok_or_else(|| no_section(k.pkg, &k.sec))?;
        let sec = &mut entry.sec;
        match k.field {
            Field::Opt(o) => {
                sec.set(
                    o,
                    (!value.is_empty()).then(|| Value::One(value.to_string())),
                );
            }
            Field::List(o) => {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                sec.set(o, (!items.is_empty()).then_some(Value::List(items)));
            }
            Field::Item(o, n) => {
                let mut items: Vec<String> = sec
                    .opt(o)
                    .map(|v| v.items().iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default();
                if value.is_empty() {
                    if n < items.len() {
                        items.remove(n);
                    }
                } else if let Some(slot) = items.get_mut(n) {
                    *slot = value.to_string();
                } else {
                    items.push(value.to_string());
                }
                sec.set(o, (!items.is_empty()).then_some(Value::List(items)));
            }
            Field::Min | Field::Max => {}
        }
        Ok(())
    }

    fn stage_add(&mut self, _cx: &mut Cx<'_>, table: &str, number: u32) -> Result<String, Fault> {
        let t = parse_table_key(table).map_err(|e| Fault::internal(format!("uci table: {e}")))?;
        let TableKey::Type { pkg, ty, conds } = t else {
            return Err(Fault::RequestDenied(format!(
                "{table}: instances cannot be added"
            )));
        };
        self.load([pkg])?;
        let name = self.new_name(pkg, number);
        let mut sec = Section {
            name: name.clone(),
            ty: ty.to_string(),
            options: Vec::new(),
        };
        // The new section takes the first value each `OPT=a|b` condition allows, so that it
        // belongs to the table it was added to.
        for c in conds
            .iter()
            .filter(|c| !c.negate && c.opt != ".name" && c.opt != POOL)
        {
            if let Some(v) = c.alts.iter().find(|a| !a.is_empty()) {
                sec.set(c.opt, Some(Value::One(v.to_string())));
            }
        }
        let pool = if conds.iter().any(|c| c.opt == POOL) {
            self.load([NETWORK])?;
            self.work(pkg);
            let net: Vec<&Section> = match self.staged.get(NETWORK) {
                Some(w) => w.after.iter().map(|e| &e.sec).collect(),
                None => self
                    .snapshot
                    .get(NETWORK)
                    .map(|n| n.sections.iter().collect())
                    .unwrap_or_default(),
            };
            self.staged.get(pkg).and_then(|w| {
                Pools::of(w.after.iter().map(|e| &e.sec), &net)
                    .owner(&sec)
                    .map(str::to_string)
            })
        } else {
            None
        };
        if !matches_filter(&sec, &conds, pool.as_deref()) {
            return Err(Fault::RequestDenied(format!(
                "{table}: a new section cannot match this filter"
            )));
        }
        self.work(pkg).after.push(Entry { origin: None, sec });
        Ok(name)
    }

    fn stage_delete(&mut self, _cx: &mut Cx<'_>, table: &str, instance: &str) -> Result<(), Fault> {
        let t = parse_table_key(table).map_err(|e| Fault::internal(format!("uci table: {e}")))?;
        self.load([t.pkg()])?;
        let w = self.work(t.pkg());
        match &t {
            TableKey::Type { .. } | TableKey::Single { .. } => {
                w.after.retain(|e| e.sec.name != instance);
            }
            TableKey::Items { sec, opt, .. } => {
                if let Some(e) = locate(&w.after, |e| &e.sec, sec).and_then(|i| w.after.get_mut(i))
                {
                    let items: Vec<String> = e
                        .sec
                        .opt(opt)
                        .map(|v| v.items().iter().map(|s| s.to_string()).collect())
                        .unwrap_or_default();
                    let kept: Vec<String> = items.into_iter().filter(|i| i != instance).collect();
                    e.sec
                        .set(opt, (!kept.is_empty()).then_some(Value::List(kept)));
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, _cx: &mut Cx<'_>) -> Result<Applied, Fault> {
        self.renames.clear();
        self.resolve_ranges()?;
        let mut forward = String::new();
        let mut inverse = String::new();
        let mut packages = Vec::new();
        let mut renames = Vec::new();
        for (pkg, w) in &self.staged {
            let after: Vec<&Section> = w.after.iter().map(|e| &e.sec).collect();
            let before: Vec<&Section> = w.before.sections.iter().collect();
            if after == before {
                continue;
            }
            // Forward: the sections of the file as uci loads it now (the snapshot's names).
            let pair: Vec<Option<usize>> = w.after.iter().map(|e| e.origin).collect();
            emit(&mut forward, pkg, &before, &after, &pair);
            let _ = writeln!(forward, "commit {pkg}");
            // Inverse: from the file as the commit writes it, where an anonymous section is
            // named by its position and type (libuci `uci_fixup_section`).
            let predicted: Vec<Section> = w
                .after
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut s = e.sec.clone();
                    if is_anonymous(&s.name) {
                        s.name = anonymous_name(i, &s.ty);
                    }
                    s
                })
                .collect();
            // The sections that keep living under another name (those after a deleted or
            // before an added anonymous section).
            for (e, p) in w.after.iter().zip(&predicted) {
                if let Some(old) = e.origin.and_then(|j| w.before.sections.get(j)) {
                    if old.name != p.name {
                        renames.push((pkg.clone(), old.name.clone(), p.name.clone()));
                    }
                }
            }
            let from: Vec<&Section> = predicted.iter().collect();
            let back: Vec<Option<usize>> = (0..before.len())
                .map(|j| w.after.iter().position(|e| e.origin == Some(j)))
                .collect();
            emit(&mut inverse, pkg, &from, &before, &back);
            let _ = writeln!(inverse, "commit {pkg}");
            packages.push(pkg.clone());
        }
        self.clear_staged();
        if packages.is_empty() {
            return Ok(Applied::Now);
        }
        for p in &packages {
            self.snapshot.remove(p);
            self.recorded.clear();
        }
        self.undo = Some(Undo {
            batch: inverse,
            packages: packages.clone(),
        });
        // On failure the engine calls rollback, which runs the inverse batch (uci goes on
        // after a failed command, so part of the batch may have landed).
        self.run_batch(&forward)?;
        if !renames.is_empty() {
            // The engine learns the new names from `take_renames`: what the listings of these
            // packages recorded under the old names must not be followed a second time.
            let renamed: BTreeSet<&str> = renames.iter().map(|(p, _, _)| p.as_str()).collect();
            self.listings.retain(|table, _| {
                parse_table_key(table).map_or(true, |t| !renamed.contains(t.pkg()))
            });
            self.renames = renames;
        }
        if packages.iter().any(|p| self.reload.contains_key(p)) {
            Ok(Applied::AtSessionEnd)
        } else {
            Ok(Applied::Now)
        }
    }

    fn commit(&mut self, _cx: &mut Cx<'_>) {
        if let Some(u) = self.undo.take() {
            self.reloads.extend(
                u.packages
                    .into_iter()
                    .filter(|p| self.reload.contains_key(p)),
            );
        }
        self.clear_staged();
    }

    fn rollback(&mut self, _cx: &mut Cx<'_>) {
        self.clear_staged();
        self.renames.clear();
        if let Some(u) = self.undo.take() {
            for p in &u.packages {
                self.snapshot.remove(p);
                self.recorded.clear();
            }
            if let Err(e) = self.run_batch(&u.batch) {
                log::error!(
                    "uci: rollback of {} failed: {}",
                    u.packages.join(", "),
                    e.detail()
                );
            }
        }
    }

    fn end_session(&mut self, _cx: &mut Cx<'_>) -> Vec<Fault> {
        let mut faults = Vec::new();
        let pending = std::mem::take(&mut self.reloads);
        // The network first: the other services follow its interfaces.
        let order = pending
            .iter()
            .filter(|p| *p == NETWORK)
            .chain(pending.iter().filter(|p| *p != NETWORK));
        for pkg in order {
            let Some(cmd) = self.reload.get(pkg) else {
                continue;
            };
            let failed = match process::service_shell(cmd, RELOAD_TIMEOUT) {
                Ok(o) if o.status.success() => None,
                Ok(o) => {
                    let line = o.stderr_line();
                    Some(if line.is_empty() {
                        o.status.to_string()
                    } else {
                        format!("{}: {line}", o.status)
                    })
                }
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failed {
                let msg = format!("reload of uci package {pkg} (`{cmd}`) failed: {why}");
                log::warn!("{msg}");
                faults.push(Fault::internal(msg));
            }
        }
        self.clear_staged();
        self.forget_all();
        faults
    }

    fn invalidate(&mut self) {
        self.forget_all();
    }

    fn renamed(
        &mut self,
        table: &str,
        known: &[String],
        listed: &[String],
    ) -> Vec<(String, String)> {
        let Some((before, now)) = self.listings.get_mut(table) else {
            return Vec::new();
        };
        let pairs = pair_renamed(before, now, known, listed);
        // Followed once: the engine now knows the new names.
        before.clone_from(now);
        pairs
    }

    fn take_renames(&mut self) -> Vec<(String, String, String)> {
        std::mem::take(&mut self.renames)
    }

    fn watch_paths(&self) -> Vec<PathBuf> {
        vec![self.config.clone()]
    }
}

fn no_section(pkg: &str, sec: &SecRef<'_>) -> Fault {
    Fault::internal(format!("uci: package {pkg} has no section {sec}"))
}

// ---- the configuration as `uci export` prints it -------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Package {
    sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    name: String,
    ty: String,
    options: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    One(String),
    List(Vec<String>),
}

impl Section {
    fn opt(&self, name: &str) -> Option<&Value> {
        self.options.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets (in place, or appended as uci does) or removes an option.
    fn set(&mut self, name: &str, value: Option<Value>) {
        let at = self.options.iter().position(|(n, _)| n == name);
        match (at, value) {
            (Some(i), Some(v)) => {
                if let Some(slot) = self.options.get_mut(i) {
                    slot.1 = v;
                }
            }
            (None, Some(v)) => self.options.push((name.to_string(), v)),
            (Some(i), None) => {
                self.options.remove(i);
            }
            (None, None) => {}
        }
    }
}

impl Value {
    /// The value as a parameter reads it: list items joined with `,`.
    fn joined(&self) -> String {
        match self {
            Value::One(s) => s.clone(),
            Value::List(items) => items.join(","),
        }
    }

    fn items(&self) -> Vec<&str> {
        match self {
            Value::One(s) => vec![s.as_str()],
            Value::List(items) => items.iter().map(String::as_str).collect(),
        }
    }
}

/// The index of the section a key names among `items` (each holding a section).
fn locate<T>(items: &[T], sec: impl Fn(&T) -> &Section, r: &SecRef<'_>) -> Option<usize> {
    match r {
        SecRef::Name(n) => items.iter().position(|i| sec(i).name == *n),
        SecRef::Nth(ty, n) => {
            let of_type: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, i)| sec(i).ty == *ty)
                .map(|(k, _)| k)
                .collect();
            let at = if *n < 0 {
                of_type
                    .len()
                    .checked_sub(usize::try_from(n.unsigned_abs()).ok()?)?
            } else {
                usize::try_from(*n).ok()?
            };
            of_type.get(at).copied()
        }
    }
}

/// Whether a section name is one uci made up for an anonymous section (`cfg` + a position
/// in hex + 4 hex digits of a hash).
fn is_anonymous(name: &str) -> bool {
    name.strip_prefix("cfg").is_some_and(|rest| {
        rest.len() >= 6
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The name libuci gives the anonymous section at position `index` (0-based) of a package it
/// loads from a file: `cfg%02x%04x` of the 1-based position and a djb hash of the type
/// (libuci `uci_fixup_section`; the options are not hashed, as the section has none yet when
/// the parser creates it).
fn anonymous_name(index: usize, ty: &str) -> String {
    let mut h: u32 = 5381;
    for b in ty.bytes() {
        // C `char` is signed on the hosts that matter here (types are printable ASCII anyway).
        let c = i32::from(b as i8) as u32;
        h = (h << 5).wrapping_add(h).wrapping_add(c);
    }
    format!("cfg{:02x}{:04x}", index.saturating_add(1), h & 0xffff)
}

/// Splits the export of several packages at its `package NAME` lines: `(name, text)` with
/// the text starting at that line. A value spanning lines that holds such a line would split
/// wrongly; the parts then fail to parse and are read on their own.
fn split_packages(text: &str) -> Vec<(&str, &str)> {
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end_matches('\n').strip_prefix("package ") {
            starts.push((pos, name));
        }
        pos += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, (at, name))| {
            let end = starts.get(i + 1).map_or(text.len(), |(e, _)| *e);
            (*name, text.get(*at..end).unwrap_or(""))
        })
        .collect()
}

/// Parses `uci -n export PKG`: `package PKG`, then per section `config TYPE 'NAME'` (`-n`
/// names anonymous sections as `uci -X show` does) and its `\toption NAME 'VALUE'` and
/// `\tlist NAME 'ITEM'` lines; quotes inside values as `'\''`, values may span lines. Unlike
/// `uci show`, this tells a one-item list from a plain option, which an exact rollback needs.
fn parse_export(pkg: &str, text: &str) -> Result<Package, String> {
    let mut p = Package::default();
    let mut pos = 0;
    let mut line = 1usize;
    while let Some(rest) = text.get(pos..).filter(|r| !r.is_empty()) {
        let eol = rest.find('\n').unwrap_or(rest.len());
        let whole = rest.get(..eol).unwrap_or("");
        let at = move |what: &str| format!("line {line}: {what}");
        if whole.is_empty() || whole.starts_with("\t#") {
            // A blank line, or uci's comment on an option of unknown type.
        } else if let Some(name) = whole.strip_prefix("package ") {
            if name != pkg {
                return Err(at(&format!("package {name:?}, not {pkg:?}")));
            }
        } else if let Some(decl) = whole.strip_prefix("config ") {
            let (ty, name) = match decl.split_once(' ') {
                Some((ty, quoted)) => {
                    let (name, used) = parse_quoted(quoted).map_err(|e| at(&e))?;
                    if used != quoted.len() || name.is_empty() {
                        return Err(at(&format!("bad section name in {whole:?}")));
                    }
                    (ty, name)
                }
                // Not named by uci (no `-n`): the name uci gives it.
                None => (decl, anonymous_name(p.sections.len(), decl)),
            };
            if ty.is_empty() {
                return Err(at("empty section type"));
            }
            p.sections.push(Section {
                name,
                ty: ty.replace("'\\''", "'"),
                options: Vec::new(),
            });
        } else {
            let (list, decl) = match (
                whole.strip_prefix("\toption "),
                whole.strip_prefix("\tlist "),
            ) {
                (Some(d), _) => (false, d),
                (None, Some(d)) => (true, d),
                (None, None) => return Err(at(&format!("unexpected {whole:?}"))),
            };
            let (name, _) = decl
                .split_once(' ')
                .filter(|(n, _)| is_name(n))
                .ok_or_else(|| at(&format!("bad option in {whole:?}")))?;
            // The value starts on this line and may end on a later one.
            let vstart = pos + (whole.len() - decl.len()) + name.len() + 1;
            let (value, used) =
                parse_quoted(text.get(vstart..).unwrap_or("")).map_err(|e| at(&e))?;
            let vend = vstart + used;
            match text.get(vend..).and_then(|t| t.chars().next()) {
                None | Some('\n') => {}
                Some(c) => return Err(at(&format!("unexpected {c:?} after a value"))),
            }
            line += text
                .get(vstart..vend)
                .map_or(0, |v| v.matches('\n').count());
            let s = p
                .sections
                .last_mut()
                .ok_or_else(|| at("an option before any section"))?;
            match (list, s.options.iter_mut().find(|(n, _)| n == name)) {
                (true, Some((_, Value::List(items)))) => items.push(value),
                (true, None) => s.options.push((name.to_string(), Value::List(vec![value]))),
                (false, None) => s.options.push((name.to_string(), Value::One(value))),
                (_, Some(_)) => return Err(at(&format!("option {name:?} given twice"))),
            }
            pos = vend;
            continue;
        }
        pos += eol + 1;
        line += 1;
    }
    Ok(p)
}

/// Reads a single-quoted string at the start of `s` (a quote inside as `'\''`): returns it and
/// the bytes used.
fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let tail = |at: usize| s.get(at..).unwrap_or("");
    if !s.starts_with('\'') {
        return Err("a value does not start with a quote".into());
    }
    let mut pos = 1;
    let mut out = String::new();
    loop {
        let close = tail(pos)
            .find('\'')
            .ok_or_else(|| "unterminated quote".to_string())?;
        out.push_str(tail(pos).get(..close).unwrap_or(""));
        pos += close + 1;
        if tail(pos).starts_with("\\''") {
            out.push('\'');
            pos += 3;
        } else {
            return Ok((out, pos));
        }
    }
}

// ---- keys --------------------------------------------------------------------------------

/// A section in a key: by name, or the N-th of a type (`@TYPE[N]`, negative from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecRef<'a> {
    Name(&'a str),
    Nth(&'a str, i64),
}

impl fmt::Display for SecRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecRef::Name(n) => f.write_str(n),
            SecRef::Nth(t, n) => write!(f, "@{t}[{n}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    Opt(&'a str),
    List(&'a str),
    Item(&'a str, usize),
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueKey<'a> {
    pkg: &'a str,
    sec: SecRef<'a>,
    field: Field<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TableKey<'a> {
    Type {
        pkg: &'a str,
        ty: &'a str,
        conds: Vec<Cond<'a>>,
    },
    Single {
        pkg: &'a str,
        sec: SecRef<'a>,
    },
    Items {
        pkg: &'a str,
        sec: SecRef<'a>,
        opt: &'a str,
    },
}

impl<'a> TableKey<'a> {
    fn pkg(&self) -> &'a str {
        match self {
            TableKey::Type { pkg, .. }
            | TableKey::Single { pkg, .. }
            | TableKey::Items { pkg, .. } => pkg,
        }
    }
}

/// `OPT=a|b` or `OPT!=a|b` (`.name` is the section name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cond<'a> {
    opt: &'a str,
    negate: bool,
    alts: Vec<&'a str>,
}

/// A section or option name: what libuci accepts (`uci_validate_name`).
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A package or section type name as keys may use them.
fn is_type(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_sec(s: &str) -> Result<SecRef<'_>, String> {
    if let Some(rest) = s.strip_prefix('@') {
        let (ty, n) = rest
            .strip_suffix(']')
            .and_then(|r| r.split_once('['))
            .ok_or_else(|| format!("section {s:?} is not `@TYPE[N]`"))?;
        if !is_type(ty) {
            return Err(format!("bad section type {ty:?}"));
        }
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n: &i64| n.unsigned_abs() <= MAX_SECTION_INDEX.unsigned_abs())
            .ok_or_else(|| format!("bad section index {n:?} in {s:?}"))?;
        Ok(SecRef::Nth(ty, n))
    } else if is_name(s) {
        Ok(SecRef::Name(s))
    } else {
        Err(format!(
            "bad section name {s:?} (letters, digits, `_`; or `@TYPE[N]`)"
        ))
    }
}

fn parse_value_key(key: &str) -> Result<ValueKey<'_>, String> {
    let mut parts = key.splitn(3, '.');
    let (Some(pkg), Some(sec), Some(field)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a value key is `PKG.SEC.OPT`".into());
    };
    if !is_type(pkg) {
        return Err(format!("bad package name {pkg:?}"));
    }
    let sec = parse_sec(sec)?;
    let field = match field {
        "@min" => Field::Min,
        "@max" => Field::Max,
        f => match f.split_once('[') {
            Some((opt, idx)) => {
                let idx = idx
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{f:?}: `[` without `]`"))?;
                if !is_name(opt) {
                    return Err(format!("bad option name {opt:?}"));
                }
                if idx.is_empty() {
                    Field::List(opt)
                } else {
                    let n = idx
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_INDEX && idx.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| format!("bad list index {idx:?} (0…{MAX_INDEX})"))?;
                    Field::Item(opt, n)
                }
            }
            None if is_name(f) => Field::Opt(f),
            None => {
                return Err(format!(
                    "bad option {f:?} (a name, `NAME[]`, `NAME[N]`, `@min` or `@max`)"
                ))
            }
        },
    };
    Ok(ValueKey { pkg, sec, field })
}

fn parse_table_key(key: &str) -> Result<TableKey<'_>, String> {
    let (head, filter) = match key.split_once('?') {
        Some((h, f)) => (h, Some(f)),
        None => (key, None),
    };
    let parts: Vec<&str> = head.split('.').collect();
    match parts.as_slice() {
        [pkg, sec] => {
            if !is_type(pkg) {
                return Err(format!("bad package name {pkg:?}"));
            }
            match sec.strip_prefix('@').filter(|t| !t.contains('[')) {
                Some(ty) => {
                    if !is_type(ty) {
                        return Err(format!("bad section type {ty:?}"));
                    }
                    let conds = match filter {
                        Some(f) => parse_conds(f)?,
                        None => Vec::new(),
                    };
                    Ok(TableKey::Type { pkg, ty, conds })
                }
                None if filter.is_some() => {
                    Err("a filter (`?…`) needs a table of a type: `PKG.@TYPE?…`".into())
                }
                None => Ok(TableKey::Single {
                    pkg,
                    sec: parse_sec(sec)?,
                }),
            }
        }
        [pkg, sec, opt] if filter.is_none() => {
            if !is_type(pkg) {
                return Err(format!("bad package name {pkg:?}"));
            }
            let opt = opt
                .strip_suffix("[]")
                .filter(|o| is_name(o))
                .ok_or_else(|| format!("a list table ends with `OPT[]`, not {opt:?}"))?;
            Ok(TableKey::Items {
                pkg,
                sec: parse_sec(sec)?,
                opt,
            })
        }
        _ => Err("a table key is `PKG.@TYPE[?FILTER]`, `PKG.SEC` or `PKG.SEC.OPT[]`".into()),
    }
}

fn parse_conds(f: &str) -> Result<Vec<Cond<'_>>, String> {
    let mut conds = Vec::new();
    for c in f.split('&') {
        let (lhs, alts) = c
            .split_once('=')
            .ok_or_else(|| format!("condition {c:?} is not `OPT=V|…` or `OPT!=V|…`"))?;
        let (opt, negate) = match lhs.strip_suffix('!') {
            Some(o) => (o, true),
            None => (lhs, false),
        };
        if opt != ".name" && opt != POOL && !is_name(opt) {
            return Err(format!("bad option {opt:?} in condition {c:?}"));
        }
        conds.push(Cond {
            opt,
            negate,
            alts: alts.split('|').collect(),
        });
    }
    Ok(conds)
}

/// Whether a section passes every condition of a filter (an absent option equals ``). `pool`
/// is what the section's [`POOL`] pseudo option reads (computed by the caller when a condition
/// names it).
fn matches_filter(s: &Section, conds: &[Cond<'_>], pool: Option<&str>) -> bool {
    conds.iter().all(|c| {
        let hit = c.alts.iter().any(|a| {
            if c.opt == ".name" {
                return s.name == *a;
            }
            if c.opt == POOL {
                return pool.unwrap_or("") == *a;
            }
            match s.opt(c.opt) {
                None => a.is_empty(),
                Some(Value::One(v)) => v == a,
                Some(Value::List(items)) => {
                    items.iter().any(|i| i == a) || (a.is_empty() && items.is_empty())
                }
            }
        });
        hit != c.negate
    })
}

// ---- the DHCP pool pseudo options ----------------------------------------------------------

/// The filter pseudo option naming the dnsmasq pool (`config dhcp` section) a section with an
/// `ip` option (a static lease, `config host`) belongs to: see [`Pools::owner`].
const POOL: &str = "@pool";

/// The `config dhcp` sections of a package, in order: name, subnet (network and broadcast
/// address, when its interface has one) and whether it serves (`ignore` is not set).
struct Pools(Vec<PoolEntry>);

/// One pool of [`Pools`]: section name, subnet (network, broadcast), whether it serves.
type PoolEntry = (String, Option<(u32, u32)>, bool);

impl Pools {
    fn of<'s>(sections: impl Iterator<Item = &'s Section>, network: &[&Section]) -> Pools {
        Pools(
            sections
                .filter(|s| s.ty == "dhcp")
                .map(|s| {
                    let subnet =
                        pool_of(s, network.iter().copied()).map(|p| (p.network, p.broadcast));
                    let ignored = s.opt("ignore").and_then(|v| v.items().first().copied());
                    let serves = !matches!(ignored, Some("1" | "yes" | "on" | "true" | "enabled"));
                    (s.name.clone(), subnet, serves)
                })
                .collect(),
        )
    }

    /// The pool of a section: the first whose subnet holds its `ip` (dnsmasq picks the pool of a
    /// static lease by subnet); one with no address there (or none of any pool) belongs to the
    /// first pool that serves, else to the first pool. So each section belongs to exactly one.
    fn owner(&self, s: &Section) -> Option<&str> {
        let ip = s
            .opt("ip")
            .and_then(|v| {
                v.items()
                    .first()
                    .and_then(|i| i.trim().parse::<Ipv4Addr>().ok())
            })
            .map(u32::from);
        let by_subnet = ip.and_then(|ip| {
            self.0
                .iter()
                .find(|(_, subnet, _)| subnet.is_some_and(|(net, bcast)| ip > net && ip < bcast))
        });
        by_subnet
            .or_else(|| self.0.iter().find(|(_, _, serves)| *serves))
            .or_else(|| self.0.first())
            .map(|(name, _, _)| name.as_str())
    }
}

/// A dnsmasq pool and its subnet, as host-order IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pool {
    network: u32,
    broadcast: u32,
    prefix: u32,
    min: u32,
    max: u32,
}

/// The pool of a DHCP section, from its `start` and `limit` (OpenWrt defaults 100 and 150)
/// and the `ipaddr` (maybe `a.b.c.d/nn`) and `netmask` of its interface (option
/// `interface`, else the section's own name) among `network`, as OpenWrt's dnsmasq init
/// script computes it (`ipcalc.sh`: the last address is kept below the broadcast address).
fn pool_of<'s>(dhcp: &Section, mut network: impl Iterator<Item = &'s Section>) -> Option<Pool> {
    let iface_name = match dhcp.opt("interface") {
        Some(v) => v.items().first().map(|s| s.to_string())?,
        None => dhcp.name.clone(),
    };
    let iface = network.find(|s| s.name == iface_name)?;
    let ipaddr = iface.opt("ipaddr")?.items().first()?.trim().to_string();
    let (addr, prefix) = match ipaddr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (ipaddr.as_str(), None),
    };
    let ip = u32::from(addr.parse::<Ipv4Addr>().ok()?);
    let prefix = match prefix {
        Some(p) => p.parse::<u32>().ok().filter(|p| *p <= 32)?,
        None => {
            let m = u32::from(
                iface
                    .opt("netmask")?
                    .items()
                    .first()?
                    .trim()
                    .parse::<Ipv4Addr>()
                    .ok()?,
            );
            // Only contiguous masks are netmasks.
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return None;
            }
            m.leading_ones()
        }
    };
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let net = ip & mask;
    let broadcast = net | !mask;
    let number = |name: &str, default: u64| match dhcp.opt(name) {
        None => Some(default),
        Some(v) => v.items().first()?.trim().parse::<u64>().ok(),
    };
    let start = number("start", DEFAULT_START)?;
    let limit = number("limit", DEFAULT_LIMIT)?.max(1);
    let min = u64::from(net).checked_add(start)?;
    let max = min
        .saturating_add(limit - 1)
        .min(u64::from(broadcast).saturating_sub(1));
    Some(Pool {
        network: net,
        broadcast,
        prefix,
        min: u32::try_from(min).ok()?,
        max: u32::try_from(max).ok()?,
    })
}

// ---- batches ---------------------------------------------------------------------------------

/// A value quoted for `uci batch` (single quotes; a quote inside as `'\''`).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes the commands that turn the sections `from` (as uci will load them when the batch
/// starts) into `to`. `pair[i]` is the index in `from` of `to[i]`, or `None` for a section
/// to create; unpaired sections of `from` are deleted. Order: option edits (while every name
/// is valid), deletions, then creations at their position with `reorder`.
fn emit(out: &mut String, pkg: &str, from: &[&Section], to: &[&Section], pair: &[Option<usize>]) {
    for (t, p) in to.iter().zip(pair) {
        if let Some(f) = p.and_then(|j| from.get(j)) {
            let r = format!("{pkg}.{}", f.name);
            emit_options(out, &r, &f.options, &t.options);
        }
    }
    let used: BTreeSet<usize> = pair.iter().flatten().copied().collect();
    for (j, f) in from.iter().enumerate().rev() {
        if !used.contains(&j) {
            let _ = writeln!(out, "delete {pkg}.{}", f.name);
        }
    }
    let mut len = used.len();
    for (i, (t, p)) in to.iter().zip(pair).enumerate() {
        if p.is_some() {
            continue;
        }
        let r = if is_anonymous(&t.name) {
            let _ = writeln!(out, "add {pkg} {}", quote(&t.ty));
            format!("{pkg}.@{}[-1]", t.ty)
        } else {
            let _ = writeln!(out, "set {pkg}.{}={}", t.name, quote(&t.ty));
            format!("{pkg}.{}", t.name)
        };
        emit_options(out, &r, &[], &t.options);
        if i != len {
            let _ = writeln!(out, "reorder {r}={i}");
        }
        len += 1;
    }
}

/// Writes the commands that turn the options `from` of the section `r` into `to`, keeping
/// their order. libuci appends an option it sets, also one that exists (`uci_set` frees the old
/// option and allocates a new one at the end), so after the batch the section holds the
/// options it did not touch, in their order, then the written ones in write order. The
/// options of `to` after its longest prefix of untouched ones are therefore all written again.
fn emit_options(out: &mut String, r: &str, from: &[(String, Value)], to: &[(String, Value)]) {
    let old = |n: &str| from.iter().find(|(o, _)| o == n).map(|(_, v)| v);
    let new = |n: &str| to.iter().find(|(o, _)| o == n).map(|(_, v)| v);
    // Options kept as they are, in their present order.
    let untouched: Vec<&str> = from
        .iter()
        .filter(|(n, v)| new(n) == Some(v))
        .map(|(n, _)| n.as_str())
        .collect();
    let keep = untouched
        .iter()
        .zip(to)
        .take_while(|(u, (n, _))| **u == n.as_str())
        .count();
    for (n, _) in from {
        let rewritten = to[keep..].iter().any(|(t, _)| t == n);
        if new(n).is_none() || (rewritten && untouched.contains(&n.as_str())) {
            let _ = writeln!(out, "delete {r}.{n}");
        }
    }
    for (n, v) in &to[keep..] {
        // Deleted above when it was untouched; a changed one is replaced (and so appended).
        let exists = old(n).is_some() && !untouched.contains(&n.as_str());
        write_option(out, r, n, v, exists);
    }
}

fn write_option(out: &mut String, r: &str, n: &str, v: &Value, exists: bool) {
    match v {
        // uci deletes an option set to the empty string.
        Value::One(s) if s.is_empty() => {
            if exists {
                let _ = writeln!(out, "delete {r}.{n}");
            }
        }
        Value::One(s) => {
            let _ = writeln!(out, "set {r}.{n}={}", quote(s));
        }
        Value::List(items) => {
            if exists {
                let _ = writeln!(out, "delete {r}.{n}");
            }
            for it in items {
                let _ = writeln!(out, "add_list {r}.{n}={}", quote(it));
            }
        }
    }
}

// ---- anonymous section identity -------------------------------------------------------------

/// Which sections the engine knows by name (`known`) now go by another name. libuci names an
/// anonymous section `cfg` + its position + a hash of its TYPE only: deleting a section
/// renames every anonymous one after it, and a name may then belong to another section. The
/// content tells them apart: a known name whose section (as `before` had it) is not what it
/// holds now follows the listed section that holds exactly that content and whose own name
/// changed hands too. A section edited in place keeps its name; anything ambiguous stays as it
/// is. Returns `(old name, new name)` pairs, to apply all at once (they may form a cycle).
fn pair_renamed(
    before: &BTreeMap<String, Section>,
    now: &BTreeMap<String, Section>,
    known: &[String],
    listed: &[String],
) -> Vec<(String, String)> {
    let same = |a: &Section, b: &Section| a.ty == b.ty && a.options == b.options;
    // A name is free to receive a section when it is new, or its section is not the one the
    // engine knew by it.
    let free = |name: &str| match (before.get(name), now.get(name)) {
        (Some(b), Some(n)) => !same(b, n),
        _ => true,
    };
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut pairs = Vec::new();
    for k in known {
        let Some(was) = before.get(k) else { continue };
        if now.get(k).is_some_and(|n| same(was, n)) {
            continue;
        }
        let target = listed.iter().find(|m| {
            *m != k
                && !taken.contains(m.as_str())
                && free(m)
                && now.get(*m).is_some_and(|n| same(was, n))
        });
        if let Some(m) = target {
            taken.insert(m);
            pairs.push((k.clone(), m.clone()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(name: &str, ty: &str, opts: &[(&str, Value)]) -> Section {
        Section {
            name: name.into(),
            ty: ty.into(),
            options: opts
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        }
    }

    fn one(s: &str) -> Value {
        Value::One(s.into())
    }

    #[test]
    fn export_output_with_quotes_lists_and_lines() {
        let text = "package t\n\
                    \n\
                    config interface 'lan'\n\
                    \toption proto 'static'\n\
                    \tlist dns '1.1.1.1'\n\
                    \tlist dns '8.8.8.8'\n\
                    \tlist one 'only'\n\
                    \n\
                    config rule 'cfg0292bd'\n\
                    \toption name 'it'\\''s'\n\
                    \toption desc 'multi\n\tlist x = '\\'''\n\
                    \tlist odd ''\\''a'\\'' '\\'''\n\
                    \tlist odd 'b c'\n\
                    \n\
                    config empty\n\
                    \n";
        let p = parse_export("t", text).unwrap();
        assert_eq!(p.sections.len(), 3);
        let lan = &p.sections[0];
        assert_eq!((lan.name.as_str(), lan.ty.as_str()), ("lan", "interface"));
        assert_eq!(lan.opt("proto"), Some(&one("static")));
        assert_eq!(
            lan.opt("dns"),
            Some(&Value::List(vec!["1.1.1.1".into(), "8.8.8.8".into()]))
        );
        assert_eq!(lan.opt("one"), Some(&Value::List(vec!["only".into()])));
        let r = &p.sections[1];
        assert_eq!(r.name, "cfg0292bd");
        assert_eq!(r.opt("name"), Some(&one("it's")));
        assert_eq!(r.opt("desc"), Some(&one("multi\n\tlist x = '")));
        assert_eq!(
            r.opt("odd"),
            Some(&Value::List(vec!["'a' '".into(), "b c".into()]))
        );
        assert_eq!(r.opt("x"), None);
        // Without `-n`, an anonymous section gets the name uci would give it.
        assert_eq!(p.sections[2].name, "cfg035c34");
        assert!(p.sections[2].options.is_empty());
        // Garbage is an error, never a panic.
        for bad in [
            "package u\n",
            "\toption o 'a'\n",
            "config x 's'\n\toption o 'a\n",
            "config x 's'\n\toption o a\n",
            "config x 's'\n\toption o 'a'b\n",
            "config x 's'\n\toption o 'a'\n\tlist o 'b'\n",
            "config x 's'\n\toption b-d 'a'\n",
            "config x s\n",
            "config  's'\n",
            "config x 's\n",
            "t.x=y\n",
            "config x 's'\n\toption\n",
        ] {
            assert!(parse_export("t", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_export("t", "").unwrap(), Package::default());
        assert_eq!(
            parse_export("t", "package t\n\n").unwrap(),
            Package::default()
        );
    }

    #[test]
    fn keys() {
        let k = parse_value_key("dhcp.@dhcp[-1].dhcp_option[2]").unwrap();
        assert_eq!(k.pkg, "dhcp");
        assert_eq!(k.sec, SecRef::Nth("dhcp", -1));
        assert_eq!(k.field, Field::Item("dhcp_option", 2));
        assert_eq!(
            parse_value_key("system.ntp.server[]").unwrap().field,
            Field::List("server")
        );
        assert_eq!(parse_value_key("dhcp.lan.@max").unwrap().field, Field::Max);
        for good in [
            "network.lan.ipaddr",
            "network.@interface",
            "firewall.@redirect?target=DNAT&proto=tcp|udp|&.name!=x0",
            "network.lan",
            "system.@system[0]",
            "system.ntp.server[]",
            "wireless.@wifi-iface?device=x0",
        ] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        for bad in [
            "network",
            "network.lan.",
            "network.lan.ip-addr",
            "network.@interface.proto",
            "network.lan.dns[x]",
            "network.lan.dns[1",
            "network.la n.proto",
            "net work.lan.proto",
            "network.lan?proto=static",
            "network.@interface?proto",
            "network.@interface?pro-to=x",
            "network.lan.dns",
            "-x.lan.proto",
        ] {
            // `network.lan.dns` is a value key: valid; the others are not keys at all.
            if bad == "network.lan.dns" {
                assert_eq!(check_key(bad), Ok(()));
                continue;
            }
            let e = check_key(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        let TableKey::Type { conds, .. } = parse_table_key("f.@r?a=x|&b!=y&.name!=lo").unwrap()
        else {
            panic!("not a type table");
        };
        assert_eq!(conds.len(), 3);
        assert!(conds[1].negate && conds[2].negate && !conds[0].negate);
        let s = sec("cwmp1", "r", &[("a", one("x"))]);
        assert!(matches_filter(&s, &conds, None));
        // `a` absent matches the empty alternative; `b` must not be `y`.
        let s = sec("cwmp1", "r", &[("c", one("z"))]);
        assert!(matches_filter(&s, &conds, None));
        let s = sec("cwmp1", "r", &[("b", one("y"))]);
        assert!(!matches_filter(&s, &conds, None));
        let s = sec("lo", "r", &[]);
        assert!(!matches_filter(&s, &conds, None));
    }

    #[test]
    fn anonymous_names_follow_libuci() {
        // Names printed by the real uci for these types (see tests/uci.rs).
        assert_eq!(anonymous_name(1, "rule"), "cfg0292bd");
        assert_eq!(anonymous_name(3, "empty"), "cfg045c34");
        assert_eq!(anonymous_name(299, "rule"), "cfg12c92bd");
        assert!(is_anonymous("cfg0292bd") && is_anonymous("cfg12c92bd"));
        assert!(!is_anonymous("cfg0292") && !is_anonymous("lan") && !is_anonymous("cfgXX92bd"));
    }

    #[test]
    fn batches_keep_order_and_lists() {
        let before = [
            sec(
                "a",
                "t",
                &[("x", one("1")), ("y", one("2")), ("z", one("3"))],
            ),
            sec(
                "cfg0292bd",
                "rule",
                &[("l", Value::List(vec!["p".into(), "q".into()]))],
            ),
            sec("b", "t", &[]),
        ];
        let after = [
            sec("a", "t", &[("x", one("1")), ("z", one("it's"))]),
            sec("b", "t", &[("n", Value::List(vec!["only".into()]))]),
            sec("cwmp00000001", "t", &[("k", one("v"))]),
        ];
        let b: Vec<&Section> = before.iter().collect();
        let a: Vec<&Section> = after.iter().collect();
        let mut fwd = String::new();
        emit(&mut fwd, "p", &b, &a, &[Some(0), Some(2), None]);
        assert_eq!(
            fwd,
            "delete p.a.y\nset p.a.z='it'\\''s'\nadd_list p.b.n='only'\ndelete p.cfg0292bd\n\
             set p.cwmp00000001='t'\nset p.cwmp00000001.k='v'\n"
        );
        // Back: `y` returns before `z` (libuci appends what it sets, so `z`, changed, follows
        // `y`), the anonymous section at its place, `n` goes.
        let mut inv = String::new();
        emit(&mut inv, "p", &a, &b, &[Some(0), None, Some(1)]);
        assert_eq!(
            inv,
            "set p.a.y='2'\nset p.a.z='3'\ndelete p.b.n\ndelete p.cwmp00000001\n\
             add p 'rule'\nadd_list p.@rule[-1].l='p'\nadd_list p.@rule[-1].l='q'\n\
             reorder p.@rule[-1]=1\n"
        );
        // A one-item list stays a list.
        let one_item = [sec("s", "t", &[("l", Value::List(vec!["a".into()]))])];
        let plain = [sec("s", "t", &[("l", one("a"))])];
        let mut out = String::new();
        emit(&mut out, "p", &[&plain[0]], &[&one_item[0]], &[Some(0)]);
        assert_eq!(out, "delete p.s.l\nadd_list p.s.l='a'\n");
    }

    #[test]
    fn pools() {
        let lan = sec(
            "lan",
            "interface",
            &[
                ("ipaddr", one("192.168.1.1")),
                ("netmask", one("255.255.255.0")),
            ],
        );
        let pool = pool_of(&sec("lan", "dhcp", &[]), [&lan].into_iter()).unwrap();
        assert_eq!(Ipv4Addr::from(pool.min), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(Ipv4Addr::from(pool.max), Ipv4Addr::new(192, 168, 1, 249));
        let cidr = sec("guest", "interface", &[("ipaddr", one("10.0.0.1/29"))]);
        let d = sec(
            "g",
            "dhcp",
            &[
                ("interface", one("guest")),
                ("start", one("2")),
                ("limit", one("100")),
            ],
        );
        let pool = pool_of(&d, [&lan, &cidr].into_iter()).unwrap();
        assert_eq!(Ipv4Addr::from(pool.min), Ipv4Addr::new(10, 0, 0, 2));
        // Kept below the broadcast address.
        assert_eq!(Ipv4Addr::from(pool.max), Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(pool.prefix, 29);
        let bad = sec("lan", "dhcp", &[("start", one("x"))]);
        assert_eq!(pool_of(&bad, [&lan].into_iter()), None);
        let holes = sec(
            "lan",
            "interface",
            &[
                ("ipaddr", one("192.168.1.1")),
                ("netmask", one("255.0.255.0")),
            ],
        );
        assert_eq!(
            pool_of(&sec("lan", "dhcp", &[]), [&holes].into_iter()),
            None
        );
    }

    #[test]
    fn renamed_pairs() {
        let sec = |name: &str, v: &str| Section {
            name: name.into(),
            ty: "redirect".into(),
            options: vec![("name".into(), Value::One(v.into()))],
        };
        let map = |v: Vec<Section>| -> BTreeMap<String, Section> {
            v.into_iter().map(|s| (s.name.clone(), s)).collect()
        };
        let names = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let before = map(vec![
            sec("cfg01aaaa", "a"),
            sec("cfg02aaaa", "b"),
            sec("cfg03aaaa", "c"),
        ]);
        // `a` deleted (the engine forgot cfg01): b and c moved up a place.
        let now = map(vec![sec("cfg01aaaa", "b"), sec("cfg02aaaa", "c")]);
        assert_eq!(
            pair_renamed(
                &before,
                &now,
                &names(&["cfg02aaaa", "cfg03aaaa"]),
                &names(&["cfg01aaaa", "cfg02aaaa"])
            ),
            vec![
                pair("cfg02aaaa", "cfg01aaaa"),
                pair("cfg03aaaa", "cfg02aaaa")
            ]
        );
        // Two swapped places.
        let swapped = map(vec![
            sec("cfg01aaaa", "b"),
            sec("cfg02aaaa", "a"),
            sec("cfg03aaaa", "c"),
        ]);
        let all = names(&["cfg01aaaa", "cfg02aaaa", "cfg03aaaa"]);
        assert_eq!(
            pair_renamed(&before, &swapped, &all, &all),
            vec![
                pair("cfg01aaaa", "cfg02aaaa"),
                pair("cfg02aaaa", "cfg01aaaa")
            ]
        );
        // Edited in place: the name holds.
        let edited = map(vec![
            sec("cfg01aaaa", "a2"),
            sec("cfg02aaaa", "b"),
            sec("cfg03aaaa", "c"),
        ]);
        assert!(pair_renamed(&before, &edited, &all, &all).is_empty());
    }
}
