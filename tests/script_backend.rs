//! The `script` backend against real scripts run by `/bin/sh`: the protocol (batched `get`,
//! escapes, per-key faults, `set` with rollback, `add`/`delete`, `deferred` and `end-session`),
//! broken scripts costing 9002 and never a hang, and the worked vendor example
//! (`datamodel/examples/acme/`) through the engine.
//!
//! Every script is written once, before any test starts a process (see [`fixtures`]): writing an
//! executable while another thread forks would make its exec fail with ETXTBSY.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cwmpd::cwmp::fault::Fault;
use cwmpd::cwmp::value::SetValue;
use cwmpd::datamodel::backend::registry::Backends;
use cwmpd::datamodel::backend::script::ScriptBackend;
use cwmpd::datamodel::backend::Applied;
use cwmpd::datamodel::backend::{Backend, Cx, Platform, ScriptDef};
use cwmpd::datamodel::schema::{Model, Schema};
use cwmpd::datamodel::{DmState, Engine};

/// A key/value store script: state in `$0.d`, each call logged in `$0.log`. `get` answers the
/// stored value, else `=KEY`; no answer for keys `absent*`, a fault for keys `refused*`. `set`
/// refuses (and then changes nothing) the value `BAD` (9007) and keys `ro_*` (9008); keys
/// `later_*` make it print `deferred`.
const KV: &str = r#"#!/bin/sh
D="$0.d"; L="$0.log"; TAB=$(printf '\t')
mkdir -p "$D"
case $1 in
get)
	keys=$(cat)
	echo "get $(printf '%s' "$keys" | tr '\n' ' ')" >>"$L"
	printf '%s\n' "$keys" | while IFS= read -r k; do
		case $k in
		'') ;;
		absent*) ;;
		refused*) printf 'fault\t%s\t9005\tno such thing\n' "$k" ;;
		*) if [ -f "$D/$k" ]; then printf 'ok\t%s\t%s\n' "$k" "$(cat "$D/$k")"; else printf 'ok\t%s\t=%s\n' "$k" "$k"; fi ;;
		esac
	done
	;;
set)
	input=$(cat)
	echo "set $(printf '%s' "$input" | tr '\n\t' ' =')" >>"$L"
	bad=0
	while IFS= read -r line; do
		k=${line%%"$TAB"*}; v=${line#*"$TAB"}
		case $k in ro_*) printf 'fault\t%s\t9008\tread only\n' "$k"; bad=1 ;; esac
		if [ "$v" = BAD ]; then printf 'fault\t%s\t9007\tbad value\n' "$k"; bad=1; fi
	done <<EOT
$input
EOT
	[ $bad = 0 ] || exit 0
	later=0
	while IFS= read -r line; do
		k=${line%%"$TAB"*}; v=${line#*"$TAB"}
		printf '%s' "$v" >"$D/$k"
		case $k in later_*) later=1 ;; esac
	done <<EOT
$input
EOT
	[ $later = 0 ] || echo deferred
	;;
*) echo "$*" >>"$L" ;;
esac
"#;

/// Scripts written once for all tests: (file name, body). `acme_*` run the vendor example with
/// its state in `$0.d`, its log in `$0.log` and its temperature in `$0.temp`.
fn scripts() -> Vec<(String, String)> {
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("datamodel/examples/acme/acme.sh");
    let wrapper = format!(
        "#!/bin/sh\nACME_STATE=\"$0.d\" ACME_LOG=\"$0.log\" ACME_THERMAL=\"$0.temp\" exec '{}' \"$@\"\n",
        acme.display()
    );
    let mut all: Vec<(String, String)> = Vec::new();
    for name in [
        "kv_batch_a",
        "kv_batch_b",
        "kv_escape",
        "kv_faults",
        "kv_deferred",
    ] {
        all.push((format!("{name}.sh"), KV.to_string()));
    }
    for name in [
        "acme_rollback",
        "acme_two",
        "acme_tables",
        "acme_deferred",
        "datamodel.d/acme",
    ] {
        all.push((format!("{name}.sh"), wrapper.clone()));
    }
    let plain = [
        ("sleep.sh", "echo called >>\"$0.log\"\nsleep 3\n"),
        ("sleep_default.sh", "sleep 3\n"),
        ("crash.sh", "echo boom >&2\nexit 3\n"),
        (
            "crash_after_output.sh",
            "cat >/dev/null\nprintf 'ok\\ta\\t1\\n'\nexit 1\n",
        ),
        ("garbage.sh", "echo 'hello world'\n"),
        ("huge.sh", "yes 'ok\tk\tv'\n"),
        ("binary.sh", "printf 'ok\\tk\\t\\377\\n'\n"),
        ("wrong_kind.sh", "printf 'instance\\t1\\n'\n"),
        (
            "set_fails.sh",
            "cat >/dev/null\n[ \"$1\" = get ] && exit 0\necho 'no disk' >&2\nexit 1\n",
        ),
    ];
    for (name, body) in plain {
        all.push((name.to_string(), format!("#!/bin/sh\n{body}")));
    }
    all
}

/// The directory of the scripts, written on first use.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("script_backend")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("datamodel.d")).unwrap();
        for (name, body) in scripts() {
            let p = dir.join(&name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(dir.join(format!("{name}.temp")), "47500\n").unwrap();
        }
        let p = dir.join("not_executable.sh");
        std::fs::write(&p, "#!/bin/sh\necho 'ok\tk\tv'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        dir
    })
}

fn def(file: &str, timeout_ms: Option<u64>) -> ScriptDef {
    ScriptDef {
        path: fixtures().join(file),
        timeout: timeout_ms.map(Duration::from_millis),
    }
}

/// What a script logged, one call per line.
fn log(file: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join(format!("{file}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A script backend and the engine's value store it is lent.
struct Harness {
    b: ScriptBackend,
    values: BTreeMap<String, String>,
}

impl Harness {
    fn new(scripts: &[(&str, ScriptDef)]) -> Harness {
        Harness::with_timeout(scripts, Duration::from_secs(10))
    }

    fn with_timeout(scripts: &[(&str, ScriptDef)], timeout: Duration) -> Harness {
        let platform = Platform {
            script_timeout: timeout,
            ..Platform::default()
        };
        let mut b = ScriptBackend::new(&platform);
        b.set_scripts(
            scripts
                .iter()
                .map(|(n, d)| (n.to_string(), d.clone()))
                .collect(),
        );
        Harness {
            b,
            values: BTreeMap::new(),
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut ScriptBackend, &mut Cx<'_>) -> R) -> R {
        let mut cx = Cx {
            values: &mut self.values,
            changed: false,
        };
        f(&mut self.b, &mut cx)
    }

    fn read(&mut self, keys: &[&str]) -> Result<Vec<Option<String>>, Fault> {
        self.with(|b, cx| b.read(cx, keys))
    }

    /// Reads one key from a fresh snapshot.
    fn fresh(&mut self, key: &str) -> Option<String> {
        self.b.invalidate();
        self.read(&[key]).unwrap().pop().flatten()
    }

    fn instances(&mut self, table: &str) -> Result<Vec<String>, Fault> {
        self.with(|b, cx| b.instances(cx, table))
            .map(Option::unwrap_or_default)
    }

    /// Stages the sets and applies them; rolls back on failure, as the engine does.
    fn set(&mut self, pairs: &[(&str, &str)]) -> Result<Applied, Fault> {
        self.with(|b, cx| {
            for (k, v) in pairs {
                b.stage_set(cx, k, v)?;
            }
            b.apply(cx)
        })
    }

    fn commit(&mut self) {
        self.with(|b, cx| b.commit(cx));
    }

    fn rollback(&mut self) {
        self.with(|b, cx| b.rollback(cx));
    }

    fn end_session(&mut self) -> Vec<Fault> {
        self.with(|b, cx| b.end_session(cx))
    }
}

fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Asserts a 9002 whose text names the script.
fn assert_internal(r: Result<impl std::fmt::Debug, Fault>, names: &str) -> Fault {
    let f = r.expect_err("a fault");
    assert_eq!(f.code(), 9002, "{f}");
    assert!(f.detail().contains(names), "{names:?} not in {f}");
    f
}

#[test]
fn one_get_per_script_per_snapshot() {
    let mut h = Harness::new(&[
        ("a", def("kv_batch_a.sh", None)),
        ("b", def("kv_batch_b.sh", None)),
    ]);
    let got = h
        .read(&["a:x", "b:one", "a:y.1.z", "a:x", "b:two", "a:w"])
        .unwrap();
    assert_eq!(
        got,
        [
            some("=x"),
            some("=one"),
            some("=y.1.z"),
            some("=x"),
            some("=two"),
            some("=w")
        ]
    );
    // One process per script, each with every key it serves, once.
    assert_eq!(log("kv_batch_a.sh"), ["get x y.1.z w"]);
    assert_eq!(log("kv_batch_b.sh"), ["get one two"]);
    // The same snapshot: known keys are not asked again; a new key alone is.
    assert_eq!(
        h.read(&["a:w", "b:one"]).unwrap(),
        [some("=w"), some("=one")]
    );
    assert_eq!(
        h.read(&["a:x", "a:new"]).unwrap(),
        [some("=x"), some("=new")]
    );
    assert_eq!(log("kv_batch_a.sh"), ["get x y.1.z w", "get new"]);
    assert_eq!(log("kv_batch_b.sh").len(), 1);
    // A new snapshot asks again.
    h.b.invalidate();
    h.read(&["a:x", "b:one"]).unwrap();
    assert_eq!(log("kv_batch_a.sh").len(), 3);
    assert_eq!(log("kv_batch_b.sh").len(), 2);
}

#[test]
fn values_are_escaped_both_ways() {
    let mut h = Harness::new(&[("e", def("kv_escape.sh", None))]);
    let value = "line 1\nline 2\twith tab \\ and \\n literally";
    assert_eq!(h.set(&[("e:v", value)]).unwrap(), Applied::Now);
    h.commit();
    // The script got (and stored) one escaped line.
    let stored = std::fs::read_to_string(fixtures().join("kv_escape.sh.d/v")).unwrap();
    assert_eq!(
        stored,
        "line 1\\nline 2\\twith tab \\\\ and \\\\n literally"
    );
    assert_eq!(h.fresh("e:v"), some(value));
}

#[test]
fn per_key_faults() {
    let mut h = Harness::new(&[("f", def("kv_faults.sh", None))]);
    // A refused or unanswered key has no value; the others are read.
    assert_eq!(
        h.read(&["f:here", "f:refused_x", "f:absent_y"]).unwrap(),
        [some("=here"), None, None]
    );
    // A refused value fails with that key's fault; the script changed nothing.
    let f = h.set(&[("f:good", "1"), ("f:bad", "BAD")]).unwrap_err();
    assert_eq!(f.code(), 9007, "{f}");
    assert!(f.detail().contains("f:bad"), "{f}");
    assert_eq!(
        h.b.set_faults()
            .iter()
            .map(|(k, f)| (k.as_str(), f.code()))
            .collect::<Vec<_>>(),
        [("f:bad", 9007)]
    );
    h.rollback();
    assert_eq!(h.fresh("f:good"), some("=good"));
    let f = h.set(&[("f:ro_x", "1"), ("f:bad", "BAD")]).unwrap_err();
    assert_eq!(f.code(), 9008, "{f}");
    assert_eq!(h.b.set_faults().len(), 2);
    h.rollback();
}

#[test]
fn hung_script_costs_9002_within_timeout() {
    let mut h = Harness::new(&[("slow", def("sleep.sh", Some(300)))]);
    let t = Instant::now();
    let f = assert_internal(h.read(&["slow:x"]), "sleep.sh");
    let took = t.elapsed();
    assert!(f.detail().contains("300 ms"), "{f}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    // In the same snapshot the script is not called again: the fault comes at once.
    assert_internal(h.instances("slow:t"), "sleep.sh");
    assert_internal(h.read(&["slow:y"]), "sleep.sh");
    assert_eq!(log("sleep.sh").len(), 1);
    h.b.invalidate();
    assert_internal(h.read(&["slow:x"]), "sleep.sh");
    assert_eq!(log("sleep.sh").len(), 2);

    // Without its own timeout, the platform's applies.
    let mut h = Harness::with_timeout(
        &[("slow", def("sleep_default.sh", None))],
        Duration::from_millis(200),
    );
    let t = Instant::now();
    assert_internal(h.read(&["slow:x"]), "sleep_default.sh");
    assert!(t.elapsed() < Duration::from_millis(2500));
}

#[test]
fn broken_scripts_cost_9002() {
    let missing = ScriptDef {
        path: fixtures().join("no_such_script.sh"),
        timeout: None,
    };
    let mut h = Harness::new(&[
        ("crash", def("crash.sh", None)),
        ("late", def("crash_after_output.sh", None)),
        ("garbage", def("garbage.sh", None)),
        ("huge", def("huge.sh", None)),
        ("binary", def("binary.sh", None)),
        ("kind", def("wrong_kind.sh", None)),
        ("noexec", def("not_executable.sh", None)),
        ("missing", missing),
    ]);
    let f = assert_internal(h.read(&["crash:k"]), "crash.sh");
    assert!(f.detail().contains("status 3: boom"), "{f}");
    assert_internal(h.read(&["late:a"]), "crash_after_output.sh");
    let f = assert_internal(h.read(&["garbage:k"]), "garbage.sh");
    assert!(f.detail().contains("hello world"), "{f}");
    let f = assert_internal(h.read(&["huge:k"]), "huge.sh");
    assert!(f.detail().contains("bytes"), "{f}");
    assert_internal(h.read(&["binary:k"]), "binary.sh");
    assert_internal(h.read(&["kind:k"]), "wrong_kind.sh");
    assert_internal(h.read(&["noexec:k"]), "not_executable.sh");
    assert_internal(h.read(&["missing:k"]), "no_such_script.sh");
    // Lists and changes fail the same way.
    h.b.invalidate();
    assert_internal(h.instances("crash:t"), "crash.sh");
    assert_internal(h.instances("garbage:t"), "garbage.sh");
    assert_internal(h.with(|b, cx| b.stage_add(cx, "crash:t", 1)), "crash.sh");
    assert_internal(h.set(&[("missing:k", "v")]), "no_such_script.sh");
    h.rollback();

    // A script not declared by any data model file.
    let f = assert_internal(h.read(&["nobody:k"]), "nobody");
    assert!(f.detail().contains("[script.nobody]"), "{f}");
    assert!(!h.b.writable("nobody:k"));
    assert!(!h.b.creatable("nobody:t"));
    assert!(h.b.writable("crash:k"));
    assert!(h.b.creatable("crash:t"));
}

#[test]
fn set_and_rollback_restore_the_values() {
    let mut h = Harness::new(&[("acme", def("acme_rollback.sh", None))]);
    assert_eq!(
        h.read(&["acme:led_brightness", "acme:fan_mode"]).unwrap(),
        [some("50"), some("Auto")]
    );
    assert_eq!(
        h.set(&[("acme:led_brightness", "80")]).unwrap(),
        Applied::Now
    );
    // Applied: the next read of the same snapshot sees the new value.
    assert_eq!(h.read(&["acme:led_brightness"]).unwrap(), [some("80")]);
    h.rollback();
    assert_eq!(h.fresh("acme:led_brightness"), some("50"));
    // One set and one get for the apply, one set for the rollback.
    let calls = log("acme_rollback.sh");
    assert_eq!(calls.iter().filter(|c| *c == "set").count(), 2, "{calls:?}");

    // A failure in a second script rolls back the first one's change.
    let mut h = Harness::new(&[
        ("acme", def("acme_two.sh", None)),
        ("other", def("set_fails.sh", None)),
    ]);
    let f = h
        .set(&[("acme:led_brightness", "10"), ("other:k", "v")])
        .unwrap_err();
    assert_eq!(f.code(), 9002);
    assert!(f.detail().contains("no disk"), "{f}");
    h.rollback();
    assert_eq!(h.fresh("acme:led_brightness"), some("50"));

    // A committed change stays.
    assert_eq!(
        h.set(&[("acme:led_brightness", "10")]).unwrap(),
        Applied::Now
    );
    h.commit();
    h.rollback();
    assert_eq!(h.fresh("acme:led_brightness"), some("10"));
}

#[test]
fn add_and_delete_instances() {
    let mut h = Harness::new(&[("acme", def("acme_tables.sh", None))]);
    assert!(h.instances("acme:profile").unwrap().is_empty());
    let k = h.with(|b, cx| b.stage_add(cx, "acme:profile", 1)).unwrap();
    assert_eq!(h.with(|b, cx| b.apply(cx)).unwrap(), Applied::Now);
    h.commit();
    assert_eq!(h.instances("acme:profile").unwrap(), vec![k.clone()]);
    let name = format!("acme:profile.{k}.name");
    assert_eq!(h.read(&[&name]).unwrap(), [Some(format!("Profile {k}"))]);

    // An add rolled back is deleted again.
    let k2 = h.with(|b, cx| b.stage_add(cx, "acme:profile", 2)).unwrap();
    assert_ne!(k, k2);
    assert_eq!(
        h.instances("acme:profile").unwrap(),
        [k.clone(), k2.clone()]
    );
    h.rollback();
    assert_eq!(h.instances("acme:profile").unwrap(), vec![k.clone()]);

    h.with(|b, cx| b.stage_delete(cx, "acme:profile", &k))
        .unwrap();
    // Staged only: nothing happens before apply.
    h.b.invalidate();
    assert_eq!(h.instances("acme:profile").unwrap(), vec![k.clone()]);
    h.with(|b, cx| b.apply(cx)).unwrap();
    h.commit();
    assert!(h.instances("acme:profile").unwrap().is_empty());
    // A refusal of the script is its fault (no such instance).
    h.with(|b, cx| b.stage_delete(cx, "acme:profile", &k))
        .unwrap();
    let f = h.with(|b, cx| b.apply(cx)).unwrap_err();
    assert_eq!(f.code(), 9005, "{f}");
    h.rollback();

    // The script's limit (8 profiles) is its fault too.
    for n in 0..8 {
        h.with(|b, cx| b.stage_add(cx, "acme:profile", 10 + n))
            .unwrap();
    }
    h.commit();
    let f = h
        .with(|b, cx| b.stage_add(cx, "acme:profile", 20))
        .unwrap_err();
    assert_eq!(f.code(), 9004, "{f}");
    let calls = log("acme_tables.sh");
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("add")).count(),
        11,
        "{calls:?}"
    );
}

#[test]
fn deferred_change_runs_end_session_once() {
    let mut h = Harness::new(&[("acme", def("acme_deferred.sh", None))]);
    assert_eq!(
        h.set(&[("acme:fan_mode", "Quiet")]).unwrap(),
        Applied::AtSessionEnd
    );
    h.commit();
    assert_eq!(h.fresh("acme:fan_active"), some("Auto"));
    assert_eq!(
        h.set(&[("acme:fan_mode", "Boost"), ("acme:led_brightness", "5")])
            .unwrap(),
        Applied::AtSessionEnd
    );
    h.commit();
    // A change that is not deferred says so.
    assert_eq!(
        h.set(&[("acme:led_brightness", "6")]).unwrap(),
        Applied::Now
    );
    h.commit();
    assert!(h.end_session().is_empty());
    assert_eq!(h.fresh("acme:fan_active"), some("Boost"));
    assert!(h.end_session().is_empty());
    let calls = log("acme_deferred.sh");
    assert_eq!(
        calls.iter().filter(|c| *c == "end-session").count(),
        1,
        "{calls:?}"
    );

    // The generic script: `deferred` from any set, one end-session per script.
    let mut h = Harness::new(&[("d", def("kv_deferred.sh", None))]);
    assert_eq!(h.set(&[("d:now", "1")]).unwrap(), Applied::Now);
    assert_eq!(h.set(&[("d:later_a", "1")]).unwrap(), Applied::AtSessionEnd);
    assert_eq!(h.set(&[("d:later_b", "1")]).unwrap(), Applied::AtSessionEnd);
    h.commit();
    assert!(h.end_session().is_empty());
    assert_eq!(
        log("kv_deferred.sh")
            .iter()
            .filter(|c| *c == "end-session")
            .count(),
        1
    );
}

#[test]
fn vendor_example_through_the_engine() {
    // Installed as a vendor would: acme.toml beside the script it declares (here a wrapper of
    // acme.sh that keeps its state in the test directory).
    let dir = fixtures().join("datamodel.d");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("datamodel/examples/acme/acme.toml");
    std::fs::copy(src, dir.join("acme.toml")).unwrap();
    let schema = Schema::load(Model::Tr181, Some(&dir)).unwrap();
    assert_eq!(
        schema.scripts().get("acme"),
        Some(&ScriptDef {
            path: dir.join("acme.sh"),
            timeout: Some(Duration::from_millis(5000)),
        })
    );
    let backends = Backends::with_platform(BTreeMap::new(), &Platform::default());
    let mut engine = Engine::new(schema, backends, DmState::default());
    let values = |engine: &mut Engine| -> BTreeMap<String, String> {
        engine
            .values(&["Device.X_ACME_Tweaks.".to_string()])
            .unwrap()
            .iter()
            .map(|v| (v.name.to_string(), v.value.to_string()))
            .collect()
    };
    let v = values(&mut engine);
    let get = |v: &BTreeMap<String, String>, n: &str| {
        v.get(&format!("Device.X_ACME_Tweaks.{n}"))
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing in {v:?}"))
    };
    assert_eq!(get(&v, "LedBrightness"), "50");
    assert_eq!(get(&v, "FanMode"), "Auto");
    assert_eq!(get(&v, "BoardTemperature"), "47");
    assert_eq!(get(&v, "ProfileNumberOfEntries"), "0");
    // The whole object: one `get` for every value.
    let calls = log("datamodel.d/acme.sh");
    assert_eq!(calls.iter().filter(|c| *c == "get").count(), 1, "{calls:?}");

    let sv = |name: &str, value: &str| SetValue {
        name: format!("Device.X_ACME_Tweaks.{name}"),
        value: value.to_string(),
        xsi_type: None,
    };
    // The model's range is checked before the script sees the value.
    let f = engine
        .set_values(&[sv("LedBrightness", "101")], "k1")
        .unwrap_err();
    assert_eq!(f.code(), 9003, "{f}");
    assert_eq!(f.param_faults()[0].fault.code(), 9007);
    assert_eq!(
        engine
            .set_values(&[sv("LedBrightness", "75"), sv("FanMode", "Boost")], "k2")
            .unwrap(),
        Applied::AtSessionEnd
    );
    let (n, _) = engine
        .add_object("Device.X_ACME_Tweaks.Profile.", "k3")
        .unwrap();
    assert_eq!(
        engine
            .set_values(&[sv(&format!("Profile.{n}.Name"), "Night")], "k4")
            .unwrap(),
        Applied::Now
    );
    let v = values(&mut engine);
    assert_eq!(get(&v, "LedBrightness"), "75");
    assert_eq!(get(&v, "FanModeActive"), "Auto");
    assert_eq!(get(&v, "ProfileNumberOfEntries"), "1");
    assert_eq!(get(&v, &format!("Profile.{n}.Name")), "Night");
    assert_eq!(get(&v, &format!("Profile.{n}.Enable")), "false");
    assert!(engine.end_session().is_empty());
    engine.invalidate();
    let v = values(&mut engine);
    assert_eq!(get(&v, "FanModeActive"), "Boost");
    engine
        .delete_object(&format!("Device.X_ACME_Tweaks.Profile.{n}."), "k5")
        .unwrap();
    let v = values(&mut engine);
    assert_eq!(get(&v, "ProfileNumberOfEntries"), "0");
}
