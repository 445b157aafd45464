//! The uci backend (`src/datamodel/backend/uci/mod.rs`) against the REAL OpenWrt `uci` command on
//! temporary config directories (no fake uci: `tests/support/uci.rs` builds the real one).
//!
//! Covered: `uci show` parsing of tricky values written by uci itself (quotes, newlines,
//! lists); one `uci show` per package per snapshot and snapshot consistency until
//! `invalidate` (within one session, reads come from one consistent snapshot);
//! SetParameterValues as ONE `uci batch` that lands in the file (TR-069 §A.3.2.1); exact
//! rollback of values, deleted named and anonymous sections, lists and order (§A.3.2.1 all or
//! nothing); AddObject/DeleteObject on filtered tables (§A.3.2.6, §A.3.2.7); the dnsmasq pool
//! pseudo options with 9007 on a bad pool; anonymous section renames; service reloads once per
//! package at the end of the session (SPV Status 1); a missing or failing uci as 9002.

use support::{tempdir, uci as uci_support};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cwmpd::cwmp::fault::Fault;
use cwmpd::datamodel::backend::uci::UciBackend;
use cwmpd::datamodel::backend::Applied;
use cwmpd::datamodel::backend::{Backend, Cx, Platform};
use uci_support::{uci_bin, TempDir, UciDir};

fn platform(u: &UciDir, bin: &Path, reload: &[(&str, &str)]) -> Platform {
    Platform {
        uci_bin: bin.to_path_buf(),
        uci_config: u.config.clone(),
        uci_savedir: u.savedir.clone(),
        reload: reload
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Platform::default()
    }
}

fn backend(u: &UciDir) -> UciBackend {
    UciBackend::new(&platform(u, &uci_bin(), &[]))
}

/// A uci wrapper that logs each call's arguments to `log`, then runs the real uci.
fn logging_uci(dir: &TempDir, log: &Path) -> PathBuf {
    let p = dir.path().join("uci-logged");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        uci_bin().display()
    );
    std::fs::write(&p, script).unwrap();
    tempdir::make_executable(&p);
    p
}

/// The uci commands the logging wrapper saw (`show`, `batch`, …), in order.
fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            // "-c DIR -t DIR -n export pkg" → "export pkg"
            let words: Vec<&str> = l.split(' ').skip(4).filter(|w| *w != "-n").collect();
            words.join(" ")
        })
        .collect()
}

struct Store(BTreeMap<String, String>);

impl Store {
    fn cx(&mut self) -> Cx<'_> {
        Cx {
            values: &mut self.0,
            changed: false,
        }
    }
}

fn store() -> Store {
    Store(BTreeMap::new())
}

fn read(b: &mut UciBackend, keys: &[&str]) -> Vec<Option<String>> {
    let mut s = store();
    b.read(&mut s.cx(), keys).expect("read")
}

fn instances(b: &mut UciBackend, table: &str) -> Vec<String> {
    let mut s = store();
    b.instances(&mut s.cx(), table)
        .expect("instances")
        .expect("uci lists its instances")
}

fn set_all(b: &mut UciBackend, sets: &[(&str, &str)]) -> Result<Applied, Fault> {
    let mut s = store();
    for (k, v) in sets {
        if let Err(e) = b.stage_set(&mut s.cx(), k, v) {
            b.rollback(&mut s.cx());
            return Err(e);
        }
    }
    match b.apply(&mut s.cx()) {
        Ok(a) => {
            b.commit(&mut s.cx());
            Ok(a)
        }
        Err(e) => {
            b.rollback(&mut s.cx());
            Err(e)
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn opt(v: &str) -> Option<String> {
    Some(v.to_string())
}

const TRICKY: &[&str] = &[
    "it's",
    "two\nlines",
    "'''",
    "a=b.c d",
    "back\\slash \\'' end",
    "tab\there",
    "  spaces  ",
    "ünïcödé ✓",
    "\"double\" $HOME `x`",
    "ends with quote'",
    "'starts with quote",
    "x' 'y",
];

#[test]
fn tricky_values_written_by_uci_read_back_equal() {
    let u = UciDir::new("uci-tricky");
    u.write("t", "config thing 's'\n\nconfig other\n");
    let mut script = String::new();
    for (i, v) in TRICKY.iter().enumerate() {
        script.push_str(&format!("set t.s.v{i}={}\n", quote(v)));
        script.push_str(&format!("add_list t.s.l={}\n", quote(v)));
    }
    script.push_str("set t.@other[0].solo='one'\nadd_list t.@other[0].one='only'\ncommit t\n");
    u.uci(&["batch"], &script);

    let mut b = backend(&u);
    let keys: Vec<String> = (0..TRICKY.len()).map(|i| format!("t.s.v{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = read(&mut b, &refs);
    for (v, g) in TRICKY.iter().zip(&got) {
        assert_eq!(g.as_deref(), Some(*v));
    }
    // List items, one by one and joined.
    let items: Vec<String> = (0..TRICKY.len()).map(|i| format!("t.s.l[{i}]")).collect();
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    let got = read(&mut b, &refs);
    for (v, g) in TRICKY.iter().zip(&got) {
        assert_eq!(g.as_deref(), Some(*v));
    }
    assert_eq!(
        read(
            &mut b,
            &[
                "t.s.l[]",
                "t.s.l",
                "t.@other[-1].solo",
                "t.@other[0].one[0]"
            ]
        ),
        vec![
            opt(&TRICKY.join(",")),
            opt(&TRICKY.join(",")),
            opt("one"),
            opt("only")
        ]
    );
    assert_eq!(
        read(
            &mut b,
            &[
                "t.s.nope",
                "t.s.l[99]",
                "t.nope.v0",
                "t.@other[1].solo",
                "zz.a.b"
            ]
        ),
        vec![None, None, None, None, None]
    );
    assert_eq!(instances(&mut b, "t.s.l[]").len(), TRICKY.len());

    // The same values written by the backend land as uci reads them.
    let mut b = backend(&u);
    let sets: Vec<(String, &str)> = TRICKY
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("t.@other[0].w{i}"), *v))
        .collect();
    let sets_ref: Vec<(&str, &str)> = sets.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(set_all(&mut b, &sets_ref), Ok(Applied::Now));
    let name = &instances(&mut b, "t.@other")[0];
    for (i, v) in TRICKY.iter().enumerate() {
        assert_eq!(u.get(&format!("t.{name}.w{i}")).as_deref(), Some(*v));
    }
    b.invalidate();
    let got = read(
        &mut b,
        &sets_ref.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
    );
    for (v, g) in TRICKY.iter().zip(&got) {
        assert_eq!(g.as_deref(), Some(*v));
    }
}

#[test]
fn one_read_per_snapshot_and_one_snapshot_until_invalidate() {
    let u = UciDir::new("uci-snapshot");
    u.write("a", "config x 'one'\n\toption v '1'\n\toption w '2'\n");
    u.write("b", "config y 'two'\n\toption v '3'\n");
    u.write("c", "config z 'three'\n\toption v '4'\n");
    let tmp = TempDir::new("uci-snapshot-log");
    let log = tmp.path().join("log");
    let bin = logging_uci(&tmp, &log);
    let mut b = UciBackend::new(&platform(&u, &bin, &[]));
    let keys = [
        "a.one.v",
        "a.one.w",
        "b.two.v",
        "c.three.v",
        "a.one.v",
        "b.two.x",
        "d.none.v",
    ];
    assert_eq!(
        read(&mut b, &keys),
        vec![opt("1"), opt("2"), opt("3"), opt("4"), opt("1"), None, None]
    );
    // Files in the form uci writes are read in the process; the package with no file is
    // empty, as uci says.
    assert_eq!(calls(&log), Vec::<String>::new());
    assert_eq!(instances(&mut b, "a.@x"), ["one"]);

    // An edit from outside is not seen until the snapshot is dropped.
    u.uci(
        &["batch"],
        "set a.one.v='changed'\nset a.extra=x\ncommit a\n",
    );
    assert_eq!(read(&mut b, &["a.one.v"]), vec![opt("1")]);
    assert_eq!(instances(&mut b, "a.@x"), ["one"]);
    b.invalidate();
    assert_eq!(read(&mut b, &["a.one.v"]), vec![opt("changed")]);
    assert_eq!(instances(&mut b, "a.@x"), ["one", "extra"]);
    assert_eq!(calls(&log), Vec::<String>::new());
    assert_eq!(b.watch_paths(), vec![u.config.clone()]);

    // What the process does not read is uci's: a file in a form with rules of its own (a
    // trailing comment, `;`), and changes saved but not committed (in the save directory).
    // The first such read exports the whole directory; what it did not give, alone.
    u.write(
        "e",
        "config q 'n'\n\toption v 'x' # a comment\n\toption w 1;\n",
    );
    u.uci(&["set", "a.one.v=staged"], "");
    b.invalidate();
    assert_eq!(
        read(&mut b, &["a.one.v", "e.n.v", "e.n.w", "b.two.v"]),
        vec![opt("staged"), opt("x"), opt("1"), opt("3")]
    );
    assert_eq!(calls(&log), ["export"]);
}

/// A small deterministic generator (xorshift64*), for the generated files below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// A value written the way a person or a script might: unquoted, in either quotes, in parts
/// joined, with escapes; sometimes in a form libuci reads by rules of its own.
fn written(r: &mut Rng, v: &str) -> String {
    let safe = !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || "'\"\\#;".contains(c));
    match r.below(6) {
        0 if safe => v.to_string(),
        1 => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        2 if v.len() > 1 => {
            let cut = v
                .char_indices()
                .nth(v.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            format!("{}{}", quote(&v[..cut]), quote(&v[cut..]))
        }
        3 => v
            .chars()
            .map(|c| match c {
                '\n' => "'\n'".to_string(),
                c if c.is_alphanumeric() => c.to_string(),
                c => format!("\\{c}"),
            })
            .collect(),
        _ => quote(v),
    }
}

/// A generated package file: sections of options and lists in the forms of [`written`], with
/// comments, blanks, tabs, and now and then what libuci reads by rules of its own (a repeated
/// name, an empty value, `;`, a trailing comment, an abbreviation, a bad name, a line break
/// inside double quotes, CRLF).
fn generated_package(r: &mut Rng) -> String {
    const TYPES: &[&str] = &["rule", "zone", "wifi-iface", "a.b", "x"];
    // Types libuci takes that uci prints as they are: one reads back, two do not.
    const ODD_TYPES: &[&str] = &["a$b", "t#x", "q'"];
    // cfg0192bd and cfg0292bd: what libuci names a first and second anonymous `rule`.
    const NAMES: &[&str] = &[
        "lan",
        "wan",
        "cfg0192bd",
        "cfg0292bd",
        "x_1",
        "bad-name",
        "Up9",
    ];
    const OPTIONS: &[&str] = &["ip", "name", "a_b", "dns", "Ports9"];
    const VALUES: &[&str] = &[
        "1",
        "192.168.1.1",
        "it's",
        "two\nlines",
        "a b",
        "#hash",
        "semi;colon",
        "back\\slash",
        "\"dq\"",
        "ünï ✓",
        "tab\there",
        "",
        "x'y",
        "$HOME",
        "  lead",
    ];
    const SEP: &[&str] = &[" ", "\t", "  ", " \t "];
    let mut text = String::new();
    for _ in 0..r.below(8) {
        match r.below(20) {
            0 => text.push_str("# comment 'with quote\n"),
            1 => text.push_str("  \t\n"),
            2 => text.push_str("package difftest\n"),
            _ => {}
        }
        let sep = r.pick(SEP);
        let ty = if r.below(12) == 0 {
            r.pick(ODD_TYPES)
        } else {
            r.pick(TYPES)
        };
        match r.below(4) {
            0 => text.push_str(&format!("config{sep}{ty}\n")),
            1 => text.push_str(&format!("config{sep}{}\n", quote(ty))),
            _ => {
                let name = r.pick(NAMES);
                text.push_str(&format!("config{sep}{ty}{sep}{}\n", written(r, name)));
            }
        }
        for _ in 0..r.below(5) {
            let indent = r.pick(&["\t", "", "    "]);
            let kind = if r.below(3) == 0 { "list" } else { "option" };
            let name = r.pick(OPTIONS);
            let value = r.pick(VALUES);
            let tail = match r.below(40) {
                0 => " # trailing",
                1 => "; option z 1",
                2 => "\r",
                _ => "",
            };
            let kind = if r.below(50) == 0 { &kind[..1] } else { kind };
            text.push_str(&format!(
                "{indent}{kind}{sep}{name}{sep}{}{tail}\n",
                written(r, value)
            ));
        }
    }
    text
}

/// `uci -c CONFIG -t SAVEDIR [-n] export difftest` on `u`, whatever its exit (`named`: with
/// `-n`, anonymous sections named).
fn uci_export(u: &UciDir, named: bool) -> std::process::Output {
    Command::new(uci_bin())
        .arg("-c")
        .arg(&u.config)
        .arg("-t")
        .arg(&u.savedir)
        .args(if named { &["-n"][..] } else { &[][..] })
        .args(["export", "difftest"])
        .output()
        .unwrap()
}

/// The in-process reading of a package (what a GPV's snapshot takes without starting uci)
/// against the real uci on generated files, now and then with a change file in the save
/// directory (empty, as `uci commit` leaves it, or a change): where it reads a package, it
/// reads what `uci -n export` gives; where uci refuses a file, it leaves the file to uci too.
/// And every file uci writes (its `export`, anonymous sections unnamed) is read in the process,
/// unless a type of it is one uci prints into a line that reads otherwise (`t#x`).
#[test]
fn files_read_in_the_process_read_as_uci_reads_them() {
    use cwmpd::datamodel::backend::uci::checking::direct_read_matches;
    let u = UciDir::new("uci-direct");
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut read_here, mut refused) = (0, 0);
    std::fs::create_dir_all(&u.savedir).unwrap();
    let change = u.savedir.join("difftest");
    for i in 0..600 {
        let text = generated_package(&mut r);
        u.write("difftest", &text);
        let _ = std::fs::remove_file(&change);
        match r.below(8) {
            0 => std::fs::write(&change, "").unwrap(),
            1 => std::fs::write(&change, "difftest.lan.added='1'\n").unwrap(),
            _ => {}
        }
        let out = uci_export(&u, true);
        let export = String::from_utf8_lossy(&out.stdout).into_owned();
        let direct = direct_read_matches(&u.config, &u.savedir, "difftest", &export);
        if !out.status.success() {
            refused += 1;
            assert_eq!(
                direct, None,
                "file {i}, which uci refuses, was read:\n{text}"
            );
            continue;
        }
        assert_ne!(
            direct,
            Some(false),
            "file {i} read apart from uci:\n{text}\n---\n{export}"
        );
        read_here += usize::from(direct.is_some());
        let _ = std::fs::remove_file(&change);
        // What uci writes of it, read back.
        let plain = uci_export(&u, false);
        let plain = String::from_utf8_lossy(&plain.stdout);
        if ["t#x", "q'"]
            .iter()
            .any(|t| plain.contains(&format!("config {t}")))
        {
            continue;
        }
        u.write("difftest", &plain);
        let again = uci_export(&u, true);
        assert!(again.status.success());
        let export = String::from_utf8_lossy(&again.stdout);
        assert_eq!(
            direct_read_matches(&u.config, &u.savedir, "difftest", &export),
            Some(true),
            "uci's own export of file {i} is not read in the process:\n{plain}"
        );
    }
    // The generator reaches both sides.
    assert!(
        read_here >= 120 && refused >= 50,
        "{read_here} read, {refused} refused"
    );
}

#[test]
fn one_batch_lands_in_the_file() {
    let u = UciDir::new("uci-apply");
    u.write(
        "net",
        "config interface 'lan'\n\toption proto 'static'\n\tlist dns '1.1.1.1'\n\tlist dns '8.8.8.8'\n\n\
         config route\n\toption target '10.0.0.0'\n\nconfig route\n\toption target '10.1.0.0'\n",
    );
    let tmp = TempDir::new("uci-apply-log");
    let log = tmp.path().join("log");
    let bin = logging_uci(&tmp, &log);
    let mut b = UciBackend::new(&platform(&u, &bin, &[]));
    let applied = set_all(
        &mut b,
        &[
            ("net.lan.proto", "dhcp"),
            ("net.lan.hostname", "it's me"),
            ("net.lan.dns[1]", "9.9.9.9"),
            ("net.lan.dns[5]", "4.4.4.4"),
            ("net.lan.ntp[]", "a.pool, b.pool"),
            ("net.@route[-1].target", "10.2.0.0"),
            ("net.@route[0].gateway", ""),
        ],
    );
    assert_eq!(applied, Ok(Applied::Now));
    assert_eq!(calls(&log), ["batch"], "read in the process, one batch");
    assert_eq!(u.get("net.lan.proto").as_deref(), Some("dhcp"));
    assert_eq!(u.get("net.lan.hostname").as_deref(), Some("it's me"));
    assert_eq!(
        u.get("net.lan.dns").as_deref(),
        Some("1.1.1.1 9.9.9.9 4.4.4.4")
    );
    assert_eq!(u.get("net.@route[1].target").as_deref(), Some("10.2.0.0"));
    let text = u.read("net");
    assert!(
        text.contains("\tlist ntp 'a.pool'\n\tlist ntp 'b.pool'\n"),
        "{text}"
    );
    assert!(text.contains("\toption hostname 'it'\\''s me'\n"), "{text}");
    // Nothing is left uncommitted in the agent's save directory.
    assert_eq!(u.uci(&["changes"], ""), "");
    // The next read sees the new state (the touched package is read again).
    assert_eq!(
        read(&mut b, &["net.lan.dns", "net.lan.ntp[1]"]),
        vec![opt("1.1.1.1,9.9.9.9,4.4.4.4"), opt("b.pool")]
    );
    // Removing list items and options.
    assert_eq!(
        set_all(
            &mut b,
            &[
                ("net.lan.dns[0]", ""),
                ("net.lan.ntp[]", ""),
                ("net.lan.hostname", "")
            ]
        ),
        Ok(Applied::Now)
    );
    assert_eq!(u.get("net.lan.dns").as_deref(), Some("9.9.9.9 4.4.4.4"));
    assert_eq!(u.get("net.lan.ntp"), None);
    assert_eq!(u.get("net.lan.hostname"), None);
    // A control character is refused for this parameter (9007), nothing runs.
    let before = calls(&log).len();
    let e = set_all(&mut b, &[("net.lan.proto", "a\u{1}b")]).unwrap_err();
    assert_eq!(e.code(), 9007, "{e}");
    assert_eq!(calls(&log).len(), before);
}

const ROLLBACK_FW: &str = "config defaults\n\toption input 'ACCEPT'\n\n\
config zone 'lan'\n\toption name 'lan'\n\tlist network 'lan'\n\tlist network 'guest'\n\n\
config rule\n\toption name 'Allow-DHCP'\n\tlist proto 'udp'\n\toption dest_port '68'\n\n\
config zone 'wan'\n\toption name 'wan'\n\toption masq '1'\n\n\
config rule\n\toption name 'Allow-Ping'\n\tlist icmp_type 'echo-request'\n\toption target 'ACCEPT'\n\n\
config redirect\n\toption name 'web'\n\toption src_dport '8080'\n";

#[test]
fn rollback_restores_exactly() {
    let u = UciDir::new("uci-rollback");
    u.write("fw", ROLLBACK_FW);
    // The file in the form uci commits write, and its names as uci sees them.
    u.uci(&["batch"], "set fw.wan.masq='2'\ncommit fw\n");
    u.uci(&["batch"], "set fw.wan.masq='1'\ncommit fw\n");
    let export_before = u.uci(&["export", "fw"], "");
    let show_before = u.uci(&["-X", "show", "fw"], "");
    let file_before = u.read("fw");

    let mut b = backend(&u);
    let mut s = store();
    let rules = instances(&mut b, "fw.@rule");
    assert_eq!(rules.len(), 2);
    let zones = instances(&mut b, "fw.@zone");
    assert_eq!(zones, ["lan", "wan"]);
    b.stage_set(&mut s.cx(), "fw.wan.masq", "0").unwrap();
    b.stage_set(&mut s.cx(), "fw.@defaults[0].input", "DROP")
        .unwrap();
    b.stage_set(&mut s.cx(), "fw.@defaults[0].output", "new")
        .unwrap();
    b.stage_set(&mut s.cx(), &format!("fw.{}.proto[]", rules[1]), "tcp,udp")
        .unwrap();
    b.stage_delete(&mut s.cx(), "fw.lan.network[]", "guest")
        .unwrap();
    b.stage_delete(&mut s.cx(), "fw.@zone", "lan").unwrap();
    b.stage_delete(&mut s.cx(), "fw.@rule", &rules[0]).unwrap();
    let added = b.stage_add(&mut s.cx(), "fw.@redirect", 7).unwrap();
    assert!(added.starts_with("cwmp") && added.len() == 12, "{added}");
    b.stage_set(&mut s.cx(), &format!("fw.{added}.name"), "new one")
        .unwrap();
    assert_eq!(b.apply(&mut s.cx()), Ok(Applied::Now));
    let changed = u.read("fw");
    assert_ne!(changed, file_before);
    assert_eq!(u.get("fw.lan"), None);
    assert_eq!(
        u.get(&format!("fw.{added}.name")).as_deref(),
        Some("new one")
    );
    assert_eq!(u.get("fw.@rule[0].proto").as_deref(), Some("tcp udp"));

    b.rollback(&mut s.cx());
    assert_eq!(u.uci(&["export", "fw"], ""), export_before);
    assert_eq!(u.uci(&["-X", "show", "fw"], ""), show_before);
    assert_eq!(u.read("fw"), file_before);
    assert_eq!(u.uci(&["changes"], ""), "");
    // The backend reads the restored state.
    assert_eq!(instances(&mut b, "fw.@rule"), rules);
    assert_eq!(read(&mut b, &["fw.lan.network"]), vec![opt("lan,guest")]);
}

#[test]
fn a_failed_batch_is_rolled_back() {
    let u = UciDir::new("uci-failed");
    u.write(
        "p",
        "config a 'one'\n\toption v '1'\n\nconfig b 'two'\n\toption v '2'\n",
    );
    let file_before = u.read("p");
    let mut b = backend(&u);
    let mut s = store();
    assert_eq!(read(&mut b, &["p.one.v"]), vec![opt("1")]);
    b.stage_set(&mut s.cx(), "p.one.v", "changed").unwrap();
    b.stage_set(&mut s.cx(), "p.two.v", "changed too").unwrap();
    // The section vanishes behind the agent's back: its command fails inside the batch.
    u.uci(&["batch"], "delete p.two\ncommit p\n");
    let e = b.apply(&mut s.cx()).unwrap_err();
    assert_eq!(e.code(), 9002);
    assert!(e.detail().contains("batch"), "{e}");
    b.rollback(&mut s.cx());
    assert_eq!(u.get("p.one.v").as_deref(), Some("1"));
    assert_eq!(
        u.get("p.two"),
        None,
        "not recreated: the agent did not delete it"
    );
    assert!(!u.read("p").contains("changed"), "{}", u.read("p"));
    assert!(file_before.contains("option v '2'"));
}

#[test]
fn add_and_delete_in_filtered_tables() {
    let u = UciDir::new("uci-add");
    u.write(
        "firewall",
        "config redirect 'web'\n\toption target 'DNAT'\n\toption proto 'tcp'\n\n\
         config redirect\n\toption target 'SNAT'\n\n\
         config redirect\n\toption target 'DNAT'\n\toption proto 'udp'\n\toption enabled '0'\n\n\
         config zone 'loopback'\n\toption name 'lo'\n\n\
         config zone\n\toption name 'lan'\n",
    );
    let mut b = backend(&u);
    let table = "firewall.@redirect?target=DNAT&proto=tcp|udp&enabled!=0";
    assert!(b.creatable(table));
    assert!(b.creatable("firewall.@zone"));
    assert!(!b.creatable("firewall.@zone?.name=loopback"));
    assert!(!b.creatable("firewall.web"));
    assert_eq!(instances(&mut b, table), ["web"]);
    let all = instances(&mut b, "firewall.@redirect?target=DNAT");
    assert_eq!(all.len(), 2);
    assert_eq!(instances(&mut b, "firewall.@zone?.name!=loopback").len(), 1);
    let lan_zone = all_zone(&mut b);
    assert_eq!(
        instances(&mut b, "firewall.@zone?name=lo|lan"),
        vec!["loopback".to_string(), lan_zone]
    );
    assert_eq!(instances(&mut b, "firewall.web"), ["web"]);
    assert!(instances(&mut b, "firewall.nope").is_empty());
    assert!(instances(&mut b, "nopkg.@x").is_empty());

    let mut s = store();
    let key = b.stage_add(&mut s.cx(), table, 3).unwrap();
    assert_eq!(b.apply(&mut s.cx()), Ok(Applied::Now));
    b.commit(&mut s.cx());
    assert_eq!(
        u.get(&format!("firewall.{key}")).as_deref(),
        Some("redirect")
    );
    assert_eq!(
        u.get(&format!("firewall.{key}.target")).as_deref(),
        Some("DNAT")
    );
    assert_eq!(
        u.get(&format!("firewall.{key}.proto")).as_deref(),
        Some("tcp")
    );
    assert_eq!(instances(&mut b, table), ["web", key.as_str()]);
    // A second one gets another name.
    let key2 = b.stage_add(&mut s.cx(), table, 4).unwrap();
    assert_ne!(key, key2);
    b.rollback(&mut s.cx());
    assert_eq!(u.get(&format!("firewall.{key2}")), None);

    b.stage_delete(&mut s.cx(), table, &key).unwrap();
    b.stage_delete(&mut s.cx(), table, "web").unwrap();
    assert_eq!(b.apply(&mut s.cx()), Ok(Applied::Now));
    b.commit(&mut s.cx());
    assert!(instances(&mut b, table).is_empty());
    assert_eq!(u.get("firewall.web"), None);
    assert_eq!(instances(&mut b, "firewall.@redirect").len(), 2);
    // A filter no new section can match is refused.
    let e = b
        .stage_add(&mut s.cx(), "firewall.@redirect?proto!=", 5)
        .unwrap_err();
    assert_eq!(e.code(), 9001);
    b.rollback(&mut s.cx());
}

fn all_zone(b: &mut UciBackend) -> String {
    instances(b, "firewall.@zone?.name!=loopback").remove(0)
}

const NETWORK: &str =
    "config interface 'lan'\n\toption proto 'static'\n\toption ipaddr '192.168.1.1'\n\
\toption netmask '255.255.255.0'\n\nconfig interface 'guest'\n\toption ipaddr '10.0.8.1/22'\n";
const DHCP: &str = "config dhcp 'lan'\n\toption interface 'lan'\n\toption start '100'\n\
\toption limit '150'\n\nconfig dhcp 'guest'\n\toption interface 'guest'\n";

#[test]
fn dhcp_pool_range() {
    let u = UciDir::new("uci-range");
    u.write("network", NETWORK);
    u.write("dhcp", DHCP);
    let mut b = backend(&u);
    assert_eq!(
        read(
            &mut b,
            &[
                "dhcp.lan.@min",
                "dhcp.lan.@max",
                "dhcp.guest.@min",
                "dhcp.guest.@max"
            ]
        ),
        vec![
            opt("192.168.1.100"),
            opt("192.168.1.249"),
            opt("10.0.8.100"),
            opt("10.0.8.249")
        ]
    );
    // Min alone keeps Max.
    assert_eq!(
        set_all(&mut b, &[("dhcp.lan.@min", "192.168.1.50")]),
        Ok(Applied::Now)
    );
    assert_eq!(u.get("dhcp.lan.start").as_deref(), Some("50"));
    assert_eq!(u.get("dhcp.lan.limit").as_deref(), Some("200"));
    assert_eq!(
        read(&mut b, &["dhcp.lan.@min", "dhcp.lan.@max"]),
        vec![opt("192.168.1.50"), opt("192.168.1.249")]
    );
    // Both in one apply, in either order, even where Max alone would be below the old Min.
    assert_eq!(
        set_all(
            &mut b,
            &[
                ("dhcp.lan.@max", "192.168.1.20"),
                ("dhcp.lan.@min", "192.168.1.10")
            ]
        ),
        Ok(Applied::Now)
    );
    assert_eq!(u.get("dhcp.lan.start").as_deref(), Some("10"));
    assert_eq!(u.get("dhcp.lan.limit").as_deref(), Some("11"));
    // A /22 written from default start and limit.
    assert_eq!(
        set_all(&mut b, &[("dhcp.guest.@max", "10.0.11.254")]),
        Ok(Applied::Now)
    );
    assert_eq!(u.get("dhcp.guest.start").as_deref(), Some("100"));
    assert_eq!(u.get("dhcp.guest.limit").as_deref(), Some("923"));
    assert_eq!(read(&mut b, &["dhcp.guest.@max"]), vec![opt("10.0.11.254")]);

    let file = u.read("dhcp");
    for bad in [
        vec![("dhcp.lan.@min", "10.0.0.5")],
        vec![("dhcp.lan.@max", "192.168.1.255")],
        vec![("dhcp.lan.@min", "192.168.1.0")],
        vec![("dhcp.lan.@min", "not an address")],
        vec![
            ("dhcp.lan.@min", "192.168.1.30"),
            ("dhcp.lan.@max", "192.168.1.29"),
        ],
        // Max alone below the current Min: found when both ends are known, at apply.
        vec![("dhcp.lan.@max", "192.168.1.5")],
    ] {
        let e = set_all(&mut b, &bad).unwrap_err();
        assert_eq!(e.code(), 9007, "{bad:?}: {e}");
        assert_eq!(u.read("dhcp"), file, "{bad:?} changed the file");
    }
}

#[test]
fn renamed_anonymous_sections() {
    let u = UciDir::new("uci-renamed");
    u.write(
        "fw",
        "config rule\n\toption name 'a'\n\nconfig zone 'z'\n\toption name 'z'\n\n\
         config rule\n\toption name 'b'\n",
    );
    let mut b = backend(&u);
    let before = instances(&mut b, "fw.@rule");
    assert_eq!(before.len(), 2);
    // Edited: libuci names an anonymous section by position and type, so the key holds.
    u.uci(
        &["batch"],
        &format!("set fw.{}.name='edited'\ncommit fw\n", before[1]),
    );
    b.invalidate();
    assert_eq!(instances(&mut b, "fw.@rule"), before);
    assert_eq!(
        read(&mut b, &[&format!("fw.{}.name", before[1])]),
        vec![opt("edited")]
    );
    // Moved: the named zone goes last, the second rule moves up and is renamed.
    u.uci(&["batch"], "reorder fw.z=2\ncommit fw\n");
    b.invalidate();
    let after = instances(&mut b, "fw.@rule");
    let gone: Vec<String> = before
        .iter()
        .filter(|k| !after.contains(k))
        .cloned()
        .collect();
    let new: Vec<String> = after
        .iter()
        .filter(|k| !before.contains(k))
        .cloned()
        .collect();
    assert_eq!((gone.len(), new.len()), (1, 1));
    let pairs = b.renamed("fw.@rule", &strs(&gone), &new);
    assert_eq!(pairs, vec![(gone[0].clone(), new[0].clone())]);
    assert_eq!(
        read(&mut b, &[&format!("fw.{}.name", new[0])]),
        vec![opt("edited")]
    );
    // A name that changed hands is followed too: the first rule is deleted, the other moves
    // into its name, and the name the engine knew for it is gone.
    let all = instances(&mut b, "fw.@rule");
    u.uci(&["batch"], &format!("delete fw.{}\ncommit fw\n", all[0]));
    b.invalidate();
    let now = instances(&mut b, "fw.@rule");
    assert_eq!(now.len(), 1);
    let known = vec![all[1].clone()];
    let pairs = b.renamed("fw.@rule", &strs(&known), &now);
    assert_eq!(
        pairs,
        vec![(all[1].clone(), now[0].clone())],
        "{all:?} {now:?}"
    );
    assert_eq!(
        read(&mut b, &[&format!("fw.{}.name", now[0])]),
        vec![opt("edited")]
    );
    // Told once: the next listing pairs nothing.
    assert!(b.renamed("fw.@rule", &strs(&now), &now).is_empty());
}

/// The `&str`s of `v`.
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The renames the backend's own delete causes are reported with the
/// change (`take_renames`), as the names real uci gives the sections afterwards; a rollback
/// reports none.
#[test]
fn a_delete_reports_the_renames_it_causes() {
    let u = UciDir::new("uci-take-renames");
    u.write(
        "fw",
        "config rule\n\toption name 'a'\n\nconfig zone 'z'\n\toption name 'z'\n\n\
         config rule\n\toption name 'b'\n\nconfig rule\n\toption name 'c'\n",
    );
    let mut b = backend(&u);
    let rules = instances(&mut b, "fw.@rule");
    assert_eq!(rules.len(), 3);
    let name_of = |b: &mut UciBackend, sec: &str| read(b, &[&format!("fw.{sec}.name")]);
    // Deleted and rolled back: nothing to report.
    let mut s = store();
    b.stage_delete(&mut s.cx(), "fw.@rule", &rules[0]).unwrap();
    b.apply(&mut s.cx()).unwrap();
    b.rollback(&mut s.cx());
    assert!(b.take_renames().is_empty());
    b.invalidate();
    assert_eq!(instances(&mut b, "fw.@rule"), rules);
    // Deleted for good: `b` and `c` move up, and uci names them by their new positions.
    b.stage_delete(&mut s.cx(), "fw.@rule", &rules[0]).unwrap();
    b.apply(&mut s.cx()).unwrap();
    let renames = b.take_renames();
    b.commit(&mut s.cx());
    b.invalidate();
    let now = instances(&mut b, "fw.@rule");
    assert_eq!(now.len(), 2);
    assert_eq!(
        renames,
        vec![
            ("fw".to_string(), rules[1].clone(), now[0].clone()),
            ("fw".to_string(), rules[2].clone(), now[1].clone()),
        ]
    );
    assert_eq!(name_of(&mut b, &now[0]), vec![opt("b")]);
    assert_eq!(name_of(&mut b, &now[1]), vec![opt("c")]);
    assert!(b.take_renames().is_empty(), "taken once");
}

#[test]
fn reloads_run_once_per_package_at_session_end() {
    let u = UciDir::new("uci-reload");
    u.write("network", NETWORK);
    u.write("dhcp", DHCP);
    u.write("plain", "config x 's'\n\toption v '1'\n");
    u.write("broken", "config x 's'\n\toption v '1'\n");
    let tmp = TempDir::new("uci-reload-log");
    let log = tmp.path().join("reloads");
    let l = log.display();
    let reload = [
        ("network", format!("echo network >> '{l}'")),
        ("dhcp", format!("echo dhcp >> '{l}'")),
        ("broken", "echo cannot reload >&2; exit 3".to_string()),
    ];
    let reload: Vec<(&str, &str)> = reload.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut b = UciBackend::new(&platform(&u, &uci_bin(), &reload));
    assert_eq!(set_all(&mut b, &[("plain.s.v", "2")]), Ok(Applied::Now));
    assert_eq!(
        set_all(
            &mut b,
            &[
                ("dhcp.lan.@min", "192.168.1.10"),
                ("network.lan.proto", "dhcp")
            ]
        ),
        Ok(Applied::AtSessionEnd)
    );
    assert_eq!(
        set_all(&mut b, &[("dhcp.lan.leasetime", "1h")]),
        Ok(Applied::AtSessionEnd)
    );
    // Rolled back: nothing to reload for it.
    let mut s = store();
    b.stage_set(&mut s.cx(), "broken.s.v", "2").unwrap();
    assert_eq!(b.apply(&mut s.cx()), Ok(Applied::AtSessionEnd));
    b.rollback(&mut s.cx());
    assert_eq!(u.get("broken.s.v").as_deref(), Some("1"));
    assert!(!log.exists(), "reloads wait for the end of the session");
    assert_eq!(
        u.get("dhcp.lan.start").as_deref(),
        Some("10"),
        "applied at once"
    );

    assert!(b.end_session(&mut s.cx()).is_empty());
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(ran, "network\ndhcp\n", "once each, the network first");
    assert!(b.end_session(&mut s.cx()).is_empty());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), ran);

    // A failing reload is a fault of the session's end, not a panic.
    assert_eq!(
        set_all(&mut b, &[("broken.s.v", "3")]),
        Ok(Applied::AtSessionEnd)
    );
    let faults = b.end_session(&mut s.cx());
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].code(), 9002);
    assert!(faults[0].detail().contains("broken") && faults[0].detail().contains("cannot reload"));
}

#[test]
fn missing_or_failing_uci_is_a_9002() {
    let u = UciDir::new("uci-missing");
    u.write("p", "config x 's'\n\toption v '1'\n");
    // A comment after a value: a form libuci reads by a rule of its own, so uci reads it.
    u.write("q", "config x 's'\n\toption v '1' # one\n");
    let mut b = UciBackend::new(&platform(&u, Path::new("/nonexistent/bin/uci"), &[]));
    let mut s = store();
    // A file in the form uci writes is read without it; writing needs it.
    assert_eq!(read(&mut b, &["p.s.v"]), vec![opt("1")]);
    assert_eq!(set_all(&mut b, &[("p.s.v", "2")]).unwrap_err().code(), 9002);
    let e = b.read(&mut s.cx(), &["q.s.v"]).unwrap_err();
    assert_eq!(e.code(), 9002);
    assert!(e.detail().contains("/nonexistent/bin/uci"), "{e}");
    assert_eq!(b.instances(&mut s.cx(), "q.@x").unwrap_err().code(), 9002);
    assert_eq!(
        b.stage_set(&mut s.cx(), "q.s.v", "2").unwrap_err().code(),
        9002
    );
    b.rollback(&mut s.cx());

    // A malformed file: uci's own message.
    u.write("bad", "config x 's'\n\toption v 'unterminated\n");
    let mut b = backend(&u);
    let e = b.read(&mut s.cx(), &["bad.s.v", "p.s.v"]).unwrap_err();
    assert_eq!(e.code(), 9002);
    assert!(e.detail().contains("Parse error"), "{e}");
    // A missing package is empty, not an error.
    assert_eq!(
        read(&mut b, &["nothere.s.v", "p.s.v"]),
        vec![None, opt("1")]
    );
    assert!(instances(&mut b, "nothere.@x").is_empty());
    // An invalid key (a nested reference that read empty) has no value.
    assert_eq!(read(&mut b, &["p..v", "p.s.v"]), vec![None, opt("1")]);
    assert!(!b.writable("p..v") && b.writable("p.s.v"));
}

/// An instance path (`Device.A.3.B.`) is an instance of a generic path (`Device.A.{i}.B.`).
fn generic_matches(generic: &str, path: &str) -> bool {
    let (g, p): (Vec<&str>, Vec<&str>) = (generic.split('.').collect(), path.split('.').collect());
    g.len() == p.len()
        && g.iter().zip(&p).all(|(g, p)| {
            g == p || (*g == "{i}" && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Every uci section appears under exactly one parent. The whole fixture
/// router tree is walked (TR-181 and TR-098, every table listed), and no section that a nested
/// table lists may be listed under two parent instances — by the same table (static leases
/// under every DHCP pool) or by two tables (port forwards under both a WANIPConnection and a
/// WANPPPConnection). A nested table that shows its parent's own section (the IPv4Address of an
/// interface, the WANConnectionDevice of the WAN interface) is a view of that parent, not a
/// second parent.
#[test]
fn no_uci_section_is_listed_under_two_parents() {
    use cwmpd::datamodel::backend::registry::{BackendKind, Backends};
    use cwmpd::datamodel::schema::{Model, PlatformKind, Schema};
    use cwmpd::datamodel::{DmState, Engine};
    use std::collections::BTreeSet;

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/router");
    for model in [Model::Tr181, Model::Tr098] {
        let dir = TempDir::new("two-parents");
        let root = dir.path().join("root");
        tempdir::copy_tree(&fixture, &root);
        let platform = Platform {
            root: root.clone(),
            uci_bin: uci_bin(),
            uci_config: root.join("etc/config"),
            uci_savedir: dir.path().join("save"),
            reload: BTreeMap::new(),
            ..Platform::default()
        };
        let schema =
            Schema::load_for(model, PlatformKind::OpenWrt, None).expect("data model loads");
        let mut engine = Engine::new(
            schema,
            Backends::with_platform(BTreeMap::new(), &platform),
            DmState::default(),
        );
        let names = engine.names("", false).expect("the whole tree");
        assert!(names.len() > 300, "{model:?}: {} names", names.len());
        let tables = engine.state().tables.clone();
        let objects = engine.schema().objects();
        // The uci table (package) a listed table path belongs to.
        let uci_table = |tpath: &str| {
            objects.iter().find_map(|o| {
                let tb = o.table.as_ref()?;
                let generic = o.path.strip_suffix("{i}.")?;
                (generic_matches(generic, tpath) && tb.binding.backend == BackendKind::Uci)
                    .then(|| tb.binding.key.split('.').next().unwrap_or("").to_string())
            })
        };
        // (package, section) → the parent instances of the nested tables that list it.
        let mut parents: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (tpath, ts) in &tables {
            let Some(pkg) = uci_table(tpath) else {
                continue;
            };
            let segs: Vec<&str> = tpath.trim_end_matches('.').split('.').collect();
            let Some(at) = segs
                .iter()
                .rposition(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue; // a top-level table: no parent instance
            };
            let parent = format!("{}.", segs[..=at].join("."));
            let parent_table = format!("{}.", segs[..at].join("."));
            let number: u32 = segs[at].parse().unwrap();
            let parent_section = uci_table(&parent_table).and_then(|p| {
                let key = tables.get(&parent_table)?.instances.get(&number)?;
                Some((p, key.clone()))
            });
            for key in ts.instances.values() {
                let section = (pkg.clone(), key.clone());
                if parent_section.as_ref() == Some(&section) {
                    continue; // a view of its parent
                }
                parents
                    .entry(section)
                    .or_default()
                    .insert(format!("{tpath} (in {parent})"));
            }
        }
        let twice: Vec<String> = parents
            .iter()
            .filter(|(_, p)| p.len() > 1)
            .map(|((pkg, sec), p)| format!("{pkg}.{sec}: {p:?}"))
            .collect();
        assert!(
            twice.is_empty(),
            "{model:?}: sections under two parents:\n{}",
            twice.join("\n")
        );
        // The walk did see the nested tables at stake: the three static leases (and, in
        // TR-098, the three port forwards) are each listed once.
        let hosts = parents.keys().filter(|(pkg, _)| pkg == "dhcp").count();
        assert_eq!(hosts, 3, "{model:?}: {parents:?}");
        let redirects = parents
            .iter()
            .filter(|((pkg, _), p)| {
                pkg == "firewall"
                    && p.iter()
                        .all(|p| p.contains("WANIPConnection.1.PortMapping"))
            })
            .count();
        let expected = if model == Model::Tr098 { 3 } else { 0 };
        assert_eq!(redirects, expected, "{model:?}: {parents:?}");
    }
}
