//! The `uci` backend: values that live in OpenWrt's configuration (`/etc/config`), read from
//! its files or through the system's own `uci` command, and written through `uci` only, never
//! by editing its files (key grammar below and in `datamodel/README.md`).
//!
//! Reads: a package whose file is in the form uci writes and has no changes saved beside it is
//! read in the agent's process, exactly as `uci -n export PKG` would give it ([`direct`]: no
//! process started, what most reads are). For the others, the first read of a snapshot is one
//! `uci -n export` of the whole configuration directory; a package it did not give (missing,
//! or one uci cannot load) is read alone with `uci -n export PKG` (several side by side). Never
//! a process per parameter. (`export` rather than `show`: it tells a one-item list from a plain
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
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

mod batch;
mod direct;
mod export;
mod key;
mod pool;
mod run;

pub use key::check_key;

use super::{Applied, Backend, Cx, Platform};
use crate::cwmp::fault::Fault;
use crate::sys::process;
use batch::emit;
use export::{anonymous_name, fingerprint, is_anonymous, pair_renamed};
use export::{Package, Section, Value};
use key::{
    locate, matches_filter, parse_table_key, parse_value_key, Field, SecRef, TableKey, ValueKey,
};
use pool::{pool_of, Pool, Pools, POOL};

/// Most time one service reload may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The package that holds the interfaces a DHCP pool is computed from.
const NETWORK: &str = "network";

/// The sections of one listing of a table, by name: each as its fingerprint (type and options,
/// [`export::fingerprint`]), not a copy (a copy of every listed section was kept twice, about
/// 100 KB for a router with a hundred port forwards).
type Listing = BTreeMap<String, u64>;

/// The uci backend (see the module documentation).
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
    /// The keys of the fingerprints, random for each run of the agent.
    fingerprints: RandomState,
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
            fingerprints: RandomState::new(),
            staged: BTreeMap::new(),
            ranges: BTreeMap::new(),
            undo: None,
            renames: Vec::new(),
            reloads: BTreeSet::new(),
        }
    }

    /// The value of one key. `names`: each package's sections by name (the first of a name),
    /// built once per read: a request names thousands of keys in packages of hundreds of
    /// sections, and a search of the list for each would be quadratic.
    fn read_one<'s>(
        &'s self,
        k: &ValueKey<'_>,
        names: &mut BTreeMap<&'s str, BTreeMap<&'s str, usize>>,
    ) -> Option<String> {
        let (pkg_name, pkg) = self.snapshot.get_key_value(k.pkg)?;
        let at = match k.sec {
            SecRef::Name(n) => *names
                .entry(pkg_name.as_str())
                .or_insert_with(|| {
                    // Reversed: of two sections with one name, the first is the one kept.
                    let all = pkg.sections.iter().enumerate().rev();
                    all.map(|(i, s)| (s.name.as_str(), i)).collect()
                })
                .get(n)?,
            SecRef::Nth(..) => locate(&pkg.sections, |s| s, &k.sec)?,
        };
        let sec = pkg.sections.get(at)?;
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
        // Each key is parsed twice (for its package, then to read it): a whole tree's parsed
        // keys, held together, were a tenth of a GPV's heap.
        let mut pkgs: BTreeSet<&str> = BTreeSet::new();
        for k in keys.iter().filter_map(|k| parse_value_key(k).ok()) {
            pkgs.insert(k.pkg);
            if matches!(k.field, Field::Min | Field::Max) {
                pkgs.insert(NETWORK);
            }
        }
        self.load(pkgs)?;
        let mut names = BTreeMap::new();
        Ok(keys
            .iter()
            .map(|k| {
                parse_value_key(k)
                    .ok()
                    .and_then(|k| self.read_one(&k, &mut names))
            })
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
            let now: Listing = pkg
                .sections
                .iter()
                .filter(|s| keys.contains(&s.name))
                .map(|s| (s.name.clone(), fingerprint(&self.fingerprints, s)))
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

    fn renamed(&mut self, table: &str, known: &[&str], listed: &[String]) -> Vec<(String, String)> {
        let Some((before, now)) = self.listings.get_mut(table) else {
            return Vec::new();
        };
        let pairs = pair_renamed(before, now, known, listed);
        // Followed once: the engine now knows the new names (a walk asks again and again
        // about listings that did not change: no copy then).
        if before != now {
            before.clone_from(now);
        }
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

// ---- batches ---------------------------------------------------------------------------------

/// The in-process reading of a package's file ([`direct`]) held against the real `uci`, for
/// `tests/uci.rs` and the `config_uci` fuzz target only: not part of the API, hidden from the
/// docs, used nowhere else.
#[doc(hidden)]
pub mod checking {
    use std::path::Path;

    use super::direct;
    use super::export::parse_export;

    /// `pkg` of the config directory `config` read in the process, with the save directory
    /// `savedir` (and libuci's default one), against `export`, what `uci -c CONFIG -t SAVEDIR
    /// -n export PKG` printed for it: `None` when the package is left to uci, else whether the
    /// two are the same packages.
    pub fn direct_read_matches(
        config: &Path,
        savedir: &Path,
        pkg: &str,
        export: &str,
    ) -> Option<bool> {
        let direct = direct::read(config, savedir, pkg)?;
        Some(parse_export(pkg, export).is_ok_and(|p| p == direct))
    }

    /// Whether a file's text is read in the process (what it reads as is not checked here).
    pub fn direct_parses(text: &str) -> bool {
        direct::parse(text).is_some()
    }
}
