//! The data model engine against the embedded definitions (TR-069 Annex A parameter RPCs), the
//! generated files against the BBF XML, and the generator against the committed files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::value::{SetAttributes, SetValue, XsiType};
use cwmpd::datamodel::backend::registry::Backends;
use cwmpd::datamodel::backend::Applied;
use cwmpd::datamodel::schema::{parse_definitions, Access, ActiveNotify, Model, Schema, Source};
use cwmpd::datamodel::{generate, DmState, Engine};

fn defaults() -> BTreeMap<String, String> {
    [
        ("acs.url", "https://acs.example.net/cwmp"),
        ("acs.username", "cpe"),
        ("acs.password", "s3cret"),
        ("acs.periodic_inform_enable", "1"),
        ("acs.periodic_inform_interval", "3600"),
        ("acs.periodic_inform_time", ""),
        ("connection_request.url", "http://192.0.2.1:7547/cr"),
        ("connection_request.username", "acs"),
        ("connection_request.password", "crpass"),
        ("connection_request.methods", "HTTP,STUN"),
        ("device.manufacturer", "Acme"),
        ("device.oui", "00AABB"),
        ("device.product_class", "Router"),
        ("device.serial_number", "SN123"),
        ("device.software_version", "1.0.0"),
        ("device.hardware_version", "rev1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn engine_with(model: Model, state: DmState) -> Engine {
    let schema = Schema::load(model, None).expect("embedded definitions load");
    Engine::new(schema, Backends::new(defaults()), state)
}

fn engine(model: Model) -> Engine {
    engine_with(model, DmState::default())
}

fn set(name: &str, value: &str) -> SetValue {
    SetValue {
        name: name.to_string(),
        value: value.to_string(),
        xsi_type: None,
    }
}

fn typed(name: &str, value: &str, ty: BaseType) -> SetValue {
    SetValue {
        xsi_type: Some(XsiType::Known(ty)),
        ..set(name, value)
    }
}

fn attr(name: &str, notification: u8) -> SetAttributes {
    SetAttributes {
        name: name.to_string(),
        notification_change: true,
        notification,
        access_list_change: false,
        access_list: Vec::new(),
    }
}

fn value(e: &mut Engine, path: &str) -> String {
    e.values(&[path.to_string()]).unwrap().to_vec()[0]
        .value
        .clone()
}

fn names(e: &mut Engine, path: &str, next_level: bool) -> Vec<(String, bool)> {
    e.names(path, next_level)
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.writable))
        .collect()
}

fn bbf_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bbf");
    if d.join("tr-181-2-19-1-cwmp-full.xml").is_file() {
        Some(d)
    } else {
        eprintln!("skipped: the BBF XML is not in {}", d.display());
        None
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cwmpd-dm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---- the files -------------------------------------------------------------------------------

#[test]
fn embedded_files_load_for_both_models() {
    for model in [Model::Tr181, Model::Tr098] {
        let s = Schema::load(model, None).unwrap();
        assert_eq!(s.root(), model.root());
        let root = model.root();
        for p in [
            "ManagementServer.URL",
            "ManagementServer.ParameterKey",
            "DeviceInfo.UpTime",
        ] {
            assert!(s.param(&format!("{root}{p}")).is_some(), "{root}{p}");
        }
        // Unbound parameters are not exposed.
        assert!(s
            .param(&format!(
                "{root}ManagementServer.ManageableDeviceNotificationLimit"
            ))
            .is_none());
        assert!(s
            .object(&format!("{root}ManagementServer.StandbyPolicy."))
            .is_none());
        let count = s.param(&format!(
            "{root}ManagementServer.InformParameterNumberOfEntries"
        ));
        assert!(matches!(count.map(|p| &p.source), Some(Source::Count(_))));
        for file in model.embedded() {
            parse_definitions(file, &text_of(file)).unwrap();
        }
    }
    let s = Schema::load(Model::Tr181, None).unwrap();
    assert_eq!(s.model_name(), "Device:2.19");
    assert_eq!(
        Schema::load(Model::Tr098, None).unwrap().model_name(),
        "InternetGatewayDevice:1.14"
    );
}

#[test]
fn definitions_are_those_of_the_bbf_xml() {
    let s = Schema::load(Model::Tr181, None).unwrap();
    let pii = &s
        .param("Device.ManagementServer.PeriodicInformInterval")
        .unwrap()
        .def;
    assert_eq!(pii.ty.base, BaseType::UnsignedInt);
    assert_eq!(pii.ty.ranges.len(), 1);
    assert_eq!(
        (pii.ty.ranges[0].min, pii.ty.ranges[0].max),
        (Some(1), None)
    );
    assert_eq!(pii.access, Access::ReadWrite);
    let cru = &s
        .param("Device.ManagementServer.ConnectionRequestURL")
        .unwrap()
        .def;
    assert!(cru.forced_inform);
    assert_eq!(cru.active_notify, ActiveNotify::ForceDefaultEnabled);
    assert_eq!(cru.access, Access::ReadOnly);
    assert_eq!(cru.ty.max_length, Some(2048));
    assert_eq!(cru.ty.named.as_deref(), Some("URL"));
    let sw = &s.param("Device.DeviceInfo.SoftwareVersion").unwrap().def;
    assert_eq!(sw.active_notify, ActiveNotify::ForceEnabled);
    assert!(
        s.param("Device.ManagementServer.Password")
            .unwrap()
            .def
            .hidden
    );
    let ip = s
        .object("Device.ManagementServer.InformParameter.{i}.")
        .unwrap();
    let t = ip.table.as_ref().unwrap();
    assert_eq!((t.min_entries, t.max_entries), (0, None));
    assert!(ip.writable);
    let igd = Schema::load(Model::Tr098, None).unwrap();
    let ds = &igd
        .param("InternetGatewayDevice.DeviceSummary")
        .unwrap()
        .def;
    assert!(ds.forced_inform);
    assert_eq!(ds.status(), Some("deprecated"));

    // Against the XML itself: every non-deleted object and parameter of the selection, with
    // its access, forcedInform and activeNotify.
    let Some(bbf) = bbf_dir() else { return };
    for (xml, file, prefixes) in [
        (
            "tr-181-2-19-1-cwmp-full.xml",
            Model::Tr181.embedded()[0],
            ["Device.DeviceInfo.", "Device.ManagementServer."],
        ),
        (
            "tr-098-1-8-0-full.xml",
            Model::Tr098.embedded()[0],
            [
                "InternetGatewayDevice.DeviceInfo.",
                "InternetGatewayDevice.ManagementServer.",
            ],
        ),
    ] {
        let xml = std::fs::read_to_string(bbf.join(xml)).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let defs = parse_definitions(file, &text_of(file)).unwrap();
        let model = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name("model"))
            .unwrap();
        let mut objects = 0;
        let mut params = 0;
        for o in model.children().filter(|n| n.has_tag_name("object")) {
            let name = o.attribute("name").unwrap();
            let wanted = if name == prefixes[0] {
                true
            } else {
                name.starts_with(prefixes[1])
            };
            if !wanted || o.attribute("status") == Some("deleted") {
                continue;
            }
            objects += 1;
            let d = defs
                .objects
                .iter()
                .find(|d| d.path == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(
                d.access == Access::ReadWrite,
                o.attribute("access") == Some("readWrite"),
                "{name}"
            );
            let max = o.attribute("maxEntries").unwrap_or("1");
            assert_eq!(
                d.max_entries
                    .map(|m| m.to_string())
                    .unwrap_or("unbounded".into()),
                max,
                "{name}"
            );
            for p in o.children().filter(|n| n.has_tag_name("parameter")) {
                if p.attribute("status") == Some("deleted") {
                    continue;
                }
                params += 1;
                let pname = p.attribute("name").unwrap();
                let pd = d
                    .params
                    .iter()
                    .find(|x| x.name == pname)
                    .unwrap_or_else(|| panic!("{name}{pname} missing"));
                let access = match p.attribute("access").unwrap_or("readOnly") {
                    "readWrite" => Access::ReadWrite,
                    "writeOnceReadOnly" => Access::WriteOnceReadOnly,
                    _ => Access::ReadOnly,
                };
                assert_eq!(pd.access, access, "{name}{pname}");
                assert_eq!(
                    pd.forced_inform,
                    p.attribute("forcedInform") == Some("true"),
                    "{name}{pname}"
                );
                let an = match p.attribute("activeNotify").unwrap_or("normal") {
                    "canDeny" => ActiveNotify::CanDeny,
                    "forceEnabled" => ActiveNotify::ForceEnabled,
                    "forceDefaultEnabled" => ActiveNotify::ForceDefaultEnabled,
                    _ => ActiveNotify::Normal,
                };
                assert_eq!(pd.active_notify, an, "{name}{pname}");
            }
        }
        let def_objects = defs
            .objects
            .iter()
            .filter(|d| d.path == prefixes[0] || d.path.starts_with(prefixes[1]))
            .count();
        let def_params: usize = defs
            .objects
            .iter()
            .filter(|d| d.path == prefixes[0] || d.path.starts_with(prefixes[1]))
            .map(|d| d.params.len())
            .sum();
        assert_eq!(def_objects, objects, "{file}");
        assert_eq!(def_params, params, "{file}");
        assert!(params > 50, "{file}: {params}");
    }
}

#[test]
fn generator_output_is_committed() {
    let Some(bbf) = bbf_dir() else { return };
    let dm = Path::new(env!("CARGO_MANIFEST_DIR")).join("datamodel");
    let sel =
        generate::parse_selection(&std::fs::read_to_string(dm.join("selection.toml")).unwrap())
            .unwrap();
    assert_eq!(sel.model.len(), 2);
    for m in &sel.model {
        let xml = std::fs::read_to_string(bbf.join(&m.xml)).unwrap();
        let out = generate::generate(&xml, &m.xml, &m.select).unwrap();
        let committed = std::fs::read_to_string(dm.join(&m.output)).unwrap();
        assert!(
            out == committed,
            "datamodel/{} is not what cwmpd-dmgen writes: run `cargo run --features dmgen --bin cwmpd-dmgen`",
            m.output
        );
    }
}

#[test]
fn the_generator_handles_the_whole_trees() {
    // The whole home-gateway tree: every object must come out right.
    // The counts are those the BBF publishes for these files.
    let Some(bbf) = bbf_dir() else { return };
    for (xml, model, objects, tables, params, writable) in [
        (
            "tr-181-2-19-1-cwmp-full.xml",
            Model::Tr181,
            860,
            439,
            7210,
            2644,
        ),
        ("tr-098-1-8-0-full.xml", Model::Tr098, 192, 91, 1800, 756),
    ] {
        let text = std::fs::read_to_string(bbf.join(xml)).unwrap();
        let all = format!("{}**", model.root());
        let out = generate::generate(&text, xml, &[all]).unwrap();
        let defs = parse_definitions(xml, &out).unwrap();
        assert_eq!(defs.objects.len(), objects, "{xml}");
        assert_eq!(
            defs.objects.iter().filter(|o| o.is_table()).count(),
            tables,
            "{xml}"
        );
        let ps = defs.objects.iter().flat_map(|o| o.params.iter());
        assert_eq!(ps.clone().count(), params, "{xml}");
        assert_eq!(
            ps.clone().filter(|p| p.access == Access::ReadWrite).count(),
            writable,
            "{xml}"
        );
        for o in &defs.objects {
            for p in &o.params {
                if let Some(d) = &p.default {
                    let mut ty = p.ty.clone();
                    ty.enumeration.extend(p.enum_read_only().iter().cloned());
                    if d.is_empty() {
                        // Some models write "" for "no value yet" whatever the type (the engine
                        // then uses the type's null value).
                        continue;
                    }
                    assert!(ty.check(d).is_ok(), "{}{} default {d:?}", o.path, p.name);
                }
            }
        }
        // Our bindings load against the whole tree too.
        let mut files = vec![(xml.to_string(), out, false)];
        files.extend(
            model.embedded()[1..]
                .iter()
                .map(|n| (n.to_string(), text_of(n), false)),
        );
        let schema = Schema::from_files(model, &files).unwrap();
        assert!(schema
            .param(&format!("{}ManagementServer.URL", model.root()))
            .is_some());
    }
}

#[test]
fn every_default_of_the_generated_files_is_valid() {
    for model in [Model::Tr181, Model::Tr098] {
        let file = model.embedded()[0];
        for o in parse_definitions(file, &text_of(file)).unwrap().objects {
            for p in o.params {
                if let Some(d) = &p.default {
                    let mut ty = p.ty.clone();
                    ty.enumeration.extend(p.enum_read_only().iter().cloned());
                    assert!(ty.check(d).is_ok(), "{}{} default {d:?}", o.path, p.name);
                }
            }
        }
    }
}

#[test]
fn vendor_extension_dir() {
    let dir = scratch_dir("vendor");
    std::fs::write(
        dir.join("acme.toml"),
        r#"
[[object]]
name = "Device.X_ACME_Tweaks."
params = [
  { name = "Turbo", type = "boolean", access = "readWrite", default = "false" },
  { name = "Build", type = "string" },
]

[bind."Device.X_ACME_Tweaks."]
Turbo = "agent:acme.turbo"
Build = "const:2025-11"

# A standard parameter we did not bind.
[bind."Device.DeviceInfo."]
ModelNumber = "const:R-1000"
"#,
    )
    .unwrap();
    // A file for the other root model is skipped.
    std::fs::write(
        dir.join("igd.toml"),
        "[bind.\"InternetGatewayDevice.DeviceInfo.\"]\nModelNumber = \"const:X\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a data model file").unwrap();
    let schema = Schema::load(Model::Tr181, Some(&dir)).unwrap();
    let mut e = Engine::new(schema, Backends::new(defaults()), DmState::default());
    assert_eq!(value(&mut e, "Device.X_ACME_Tweaks.Turbo"), "false");
    assert_eq!(value(&mut e, "Device.X_ACME_Tweaks.Build"), "2025-11");
    assert_eq!(value(&mut e, "Device.DeviceInfo.ModelNumber"), "R-1000");
    e.set_values(&[set("Device.X_ACME_Tweaks.Turbo", "1")], "k")
        .unwrap();
    assert_eq!(value(&mut e, "Device.X_ACME_Tweaks.Turbo"), "true");
    let top = names(&mut e, "Device.", true);
    assert_eq!(top.last().unwrap().0, "Device.X_ACME_Tweaks.");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_errors_name_the_file_and_line() {
    let dir = scratch_dir("bad");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "# comment\n[bind.\"Device.DeviceInfo.\"]\nModelNumber = \"const:x\"\nNoSuchThing = \"agent:x\"\n",
    )
    .unwrap();
    let e = Schema::load(Model::Tr181, Some(&dir)).unwrap_err();
    assert_eq!(e.file, bad.display().to_string());
    assert_eq!(e.line, Some(4));
    assert!(e.to_string().contains(":4: "), "{e}");
    std::fs::write(
        &bad,
        "[[object]]\nname = \"Device.Y.\"\nparams = [ { name = \"A\" } ]\n",
    )
    .unwrap();
    let e = Schema::load(Model::Tr181, Some(&dir)).unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("type"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
    // The vendor directory is optional (a router without vendor files has none).
    let missing = dir.join("nope");
    let plain = Schema::load(Model::Tr181, None).unwrap();
    let s = Schema::load(Model::Tr181, Some(&missing)).unwrap();
    assert_eq!(s.objects().len(), plain.objects().len());
}

// ---- GetParameterNames / GetParameterValues -----------------------------------------------------

#[test]
fn get_parameter_names() {
    let mut e = engine(Model::Tr181);
    assert_eq!(names(&mut e, "", true), [("Device.".to_string(), false)]);
    let top = names(&mut e, "Device.", true);
    assert_eq!(
        top,
        [
            ("Device.RootDataModelVersion".to_string(), false),
            ("Device.DeviceInfo.".to_string(), false),
            ("Device.ManagementServer.".to_string(), false),
            // The diagnostics, on every platform.
            ("Device.IP.".to_string(), false),
            ("Device.DNS.".to_string(), false),
            // The XMPP connections of connection requests (TR-069 Annex K).
            ("Device.XMPP.".to_string(), false),
        ]
    );
    let ms = names(&mut e, "Device.ManagementServer.", true);
    assert!(ms.contains(&("Device.ManagementServer.URL".to_string(), true)));
    assert!(ms.contains(&("Device.ManagementServer.ParameterKey".to_string(), false)));
    assert!(ms.contains(&(
        "Device.ManagementServer.AliasBasedAddressing".to_string(),
        false
    )));
    assert!(ms.contains(&("Device.ManagementServer.InformParameter.".to_string(), true)));
    assert!(!ms.iter().any(|(n, _)| n.contains("ManageableDevice")));
    assert!(ms.contains(&("Device.ManagementServer.STUNEnable".to_string(), true)));
    assert!(ms.contains(&(
        "Device.ManagementServer.UDPConnectionRequestAddress".to_string(),
        false
    )));
    // The definition order of the model: EnableCWMP, URL, Username, Password, …
    let order: Vec<&str> = ms.iter().take(4).map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        order,
        [
            "Device.ManagementServer.EnableCWMP",
            "Device.ManagementServer.URL",
            "Device.ManagementServer.Username",
            "Device.ManagementServer.Password"
        ]
    );
    let all = names(&mut e, "", false);
    assert_eq!(all[0], ("Device.".to_string(), false));
    assert!(all.contains(&("Device.DeviceInfo.UpTime".to_string(), false)));
    assert!(all.contains(&("Device.DeviceInfo.ProvisioningCode".to_string(), true)));
    let sub = names(&mut e, "Device.DeviceInfo.", false);
    assert_eq!(sub[0].0, "Device.DeviceInfo.");
    assert_eq!(sub.len(), 11, "{sub:?}");
    assert_eq!(
        names(&mut e, "Device.DeviceInfo.Manufacturer", false),
        [("Device.DeviceInfo.Manufacturer".to_string(), false)]
    );
    assert_eq!(
        e.names("Device.DeviceInfo.Manufacturer", true)
            .unwrap_err()
            .code(),
        9003
    );
    for bad in [
        "Device",
        "Device.ManagementServer",
        "Device.ManagementServer.URL.",
        "Device.NoSuch.",
        "Device..",
        "InternetGatewayDevice.",
        "Device.ManagementServer.ManageableDeviceNotificationLimit",
        "Device.ManagementServer.InformParameter.1.",
        "Device.ManagementServer.InformParameter.x.",
    ] {
        assert_eq!(e.names(bad, false).unwrap_err().code(), 9005, "{bad}");
    }
    assert!(e.take_dirty().is_none());
}

#[test]
fn get_parameter_values() {
    let mut e = engine(Model::Tr181);
    let got = e
        .values(&[
            "Device.ManagementServer.URL".to_string(),
            "Device.RootDataModelVersion".to_string(),
            "Device.DeviceInfo.".to_string(),
        ])
        .unwrap()
        .to_vec();
    assert_eq!(got[0].value, "https://acs.example.net/cwmp");
    assert_eq!(got[0].ty, BaseType::String);
    assert_eq!(got[1].value, "2.19");
    assert_eq!(got[2].name, "Device.DeviceInfo.Manufacturer");
    assert_eq!(got.len(), 2 + 10);
    let up = got
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.UpTime")
        .unwrap();
    assert_eq!(up.ty, BaseType::UnsignedInt);
    assert!(up.value.parse::<u32>().is_ok(), "{}", up.value);
    // Passwords read back empty; the agent still reads the real value.
    assert_eq!(value(&mut e, "Device.ManagementServer.Password"), "");
    assert_eq!(
        value(&mut e, "Device.ManagementServer.ConnectionRequestPassword"),
        ""
    );
    assert_eq!(
        e.value("Device.ManagementServer.Password").unwrap(),
        "s3cret"
    );
    // Config values come back in canonical form; defaults fill the gaps.
    assert_eq!(
        value(&mut e, "Device.ManagementServer.PeriodicInformEnable"),
        "true"
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.EnableCWMP"), "true");
    assert_eq!(
        value(
            &mut e,
            "Device.ManagementServer.CWMPRetryIntervalMultiplier"
        ),
        "2000"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.InstanceMode"),
        "InstanceNumber"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.AliasBasedAddressing"),
        "false"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.SupportedConnReqMethods"),
        "HTTP,STUN"
    );
    assert_eq!(
        value(
            &mut e,
            "Device.ManagementServer.InformParameterNumberOfEntries"
        ),
        "0"
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "");
    assert_eq!(
        value(&mut e, "Device.ManagementServer.PeriodicInformTime"),
        "0001-01-01T00:00:00Z"
    );
    let all = e.values(&[String::new()]).unwrap();
    assert!(all.len() > 30);
    assert_eq!(
        e.values(&["Device.Nope".to_string()]).unwrap_err().code(),
        9005
    );
    assert_eq!(e.value("Device.DeviceInfo.").unwrap_err().code(), 9005);
    // The run time can change agent defaults (ConnectionRequestURL).
    e.backends_mut()
        .set_runtime("connection_request.url", "http://198.51.100.7:7547/x");
    assert_eq!(
        value(&mut e, "Device.ManagementServer.ConnectionRequestURL"),
        "http://198.51.100.7:7547/x"
    );
    assert!(e.take_dirty().is_none());
}

// ---- SetParameterValues ------------------------------------------------------------------------

#[test]
fn set_parameter_values() {
    let mut e = engine(Model::Tr181);
    let r = e
        .set_values(
            &[
                typed(
                    "Device.ManagementServer.URL",
                    "https://new.example.net/",
                    BaseType::String,
                ),
                typed(
                    "Device.ManagementServer.PeriodicInformInterval",
                    "+0600",
                    BaseType::UnsignedInt,
                ),
                // Many ACSes send xsd:string whatever the type.
                typed(
                    "Device.ManagementServer.PeriodicInformEnable",
                    "0",
                    BaseType::String,
                ),
                set("Device.ManagementServer.Password", "newpass"),
                set("Device.DeviceInfo.ProvisioningCode", "ABC"),
            ],
            "key-1",
        )
        .unwrap();
    assert_eq!(r, Applied::Now);
    assert_eq!(
        value(&mut e, "Device.ManagementServer.URL"),
        "https://new.example.net/"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.PeriodicInformInterval"),
        "600"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.PeriodicInformEnable"),
        "false"
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.Password"), "");
    assert_eq!(
        e.value("Device.ManagementServer.Password").unwrap(),
        "newpass"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.ParameterKey"),
        "key-1"
    );
    let state = e.take_dirty().expect("state changed").clone();
    assert_eq!(
        state.values.get("acs.url").map(String::as_str),
        Some("https://new.example.net/")
    );
    assert!(e.take_dirty().is_none());

    // Setting the same values again changes nothing.
    e.set_values(
        &[set(
            "Device.ManagementServer.URL",
            "https://new.example.net/",
        )],
        "key-1",
    )
    .unwrap();
    assert!(e.take_dirty().is_none());

    // Values set by the ACS survive a restart and override the config file.
    let mut e2 = engine_with(Model::Tr181, state);
    assert_eq!(
        value(&mut e2, "Device.ManagementServer.URL"),
        "https://new.example.net/"
    );
    e2.factory_reset();
    assert_eq!(
        value(&mut e2, "Device.ManagementServer.URL"),
        "https://acs.example.net/cwmp"
    );
    assert_eq!(value(&mut e2, "Device.ManagementServer.ParameterKey"), "");
    assert!(e2.take_dirty().is_some());
}

#[test]
fn set_parameter_values_faults() {
    let mut e = engine(Model::Tr181);
    let before = e.state().clone();
    let err = e
        .set_values(
            &[
                set("Device.ManagementServer.URL", "https://ok.example/"),
                set("Device.ManagementServer.NoSuch", "x"),
                set("Device.DeviceInfo.", "x"),
                set("Device.DeviceInfo.Manufacturer", "Evil"),
                set("Device.ManagementServer.ParameterKey", "x"),
                set(
                    "Device.ManagementServer.InformParameterNumberOfEntries",
                    "3",
                ),
                typed(
                    "Device.ManagementServer.PeriodicInformEnable",
                    "true",
                    BaseType::Int,
                ),
                SetValue {
                    xsi_type: Some(XsiType::Unknown("xsd:float".into())),
                    ..set("Device.ManagementServer.ConnectionRequestUsername", "u")
                },
                set("Device.ManagementServer.PeriodicInformInterval", "0"),
                set("Device.ManagementServer.CWMPRetryIntervalMultiplier", "999"),
                set("Device.ManagementServer.InstanceMode", "Other"),
                set("Device.ManagementServer.PeriodicInformTime", "yesterday"),
                set("Device.ManagementServer.Username", &"u".repeat(257)),
            ],
            "bad",
        )
        .unwrap_err();
    assert_eq!(err.code(), 9003);
    let codes: Vec<(String, u32)> = err
        .param_faults()
        .iter()
        .map(|f| (f.name.clone(), f.fault.code()))
        .collect();
    let expect = [
        ("Device.ManagementServer.NoSuch", 9005),
        ("Device.DeviceInfo.", 9005),
        ("Device.DeviceInfo.Manufacturer", 9008),
        ("Device.ManagementServer.ParameterKey", 9008),
        (
            "Device.ManagementServer.InformParameterNumberOfEntries",
            9008,
        ),
        ("Device.ManagementServer.PeriodicInformEnable", 9006),
        ("Device.ManagementServer.ConnectionRequestUsername", 9006),
        ("Device.ManagementServer.PeriodicInformInterval", 9007),
        ("Device.ManagementServer.CWMPRetryIntervalMultiplier", 9007),
        ("Device.ManagementServer.InstanceMode", 9007),
        ("Device.ManagementServer.PeriodicInformTime", 9007),
        ("Device.ManagementServer.Username", 9007),
    ];
    let expect: Vec<(String, u32)> = expect.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(codes, expect);
    // Nothing was applied, not even the good one; ParameterKey unchanged.
    assert_eq!(
        value(&mut e, "Device.ManagementServer.URL"),
        "https://acs.example.net/cwmp"
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "");
    assert_eq!(e.state(), &before);
    assert!(e.take_dirty().is_none());

    // The same parameter twice is 9003 (§A.3.2.1).
    let dup = e
        .set_values(
            &[
                set("Device.ManagementServer.URL", "a"),
                set("Device.ManagementServer.URL", "b"),
            ],
            "k",
        )
        .unwrap_err();
    assert_eq!(dup.code(), 9003);
    assert!(dup.param_faults().is_empty());
    // A ParameterKey longer than 32 characters is refused before anything happens.
    assert_eq!(
        e.set_values(&[set("Device.ManagementServer.URL", "a")], &"k".repeat(33))
            .unwrap_err()
            .code(),
        9003
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.URL"),
        "https://acs.example.net/cwmp"
    );
    // Local changes (cwmpd set) validate the same way and leave ParameterKey alone.
    assert_eq!(
        e.set_local(&[set("Device.DeviceInfo.SerialNumber", "x")])
            .unwrap_err()
            .param_faults()[0]
            .fault
            .code(),
        9008
    );
    e.set_local(&[set("Device.ManagementServer.Username", "local")])
        .unwrap();
    assert_eq!(value(&mut e, "Device.ManagementServer.Username"), "local");
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "");
}

#[test]
fn set_parameter_values_rolls_back_a_failed_apply() {
    let mut e = engine(Model::Tr181);
    let mut list = Vec::new();
    for i in 1..=260u32 {
        let (n, _) = e
            .add_object("Device.ManagementServer.InformParameter.", "add")
            .unwrap();
        assert_eq!(n, i);
        list.push(set(
            &format!("Device.ManagementServer.InformParameter.{n}.ParameterName"),
            &format!("Device.DeviceInfo.X{}", "y".repeat(230)),
        ));
    }
    list.insert(
        0,
        set("Device.ManagementServer.URL", "https://other.example/"),
    );
    let before = e.state().clone();
    let _ = e.take_dirty();
    // The agent store is bounded: the apply fails part-way and everything is rolled back.
    let err = e.set_values(&list, "too-much").unwrap_err();
    assert_eq!(err.code(), 9004);
    assert_eq!(e.state(), &before);
    assert!(e.take_dirty().is_none());
    assert_eq!(
        value(&mut e, "Device.ManagementServer.URL"),
        "https://acs.example.net/cwmp"
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "add");
    assert_eq!(
        value(
            &mut e,
            "Device.ManagementServer.InformParameter.7.ParameterName"
        ),
        ""
    );
    // A smaller change still goes through.
    e.set_values(&list[..5], "ok").unwrap();
    assert_eq!(
        value(&mut e, "Device.ManagementServer.URL"),
        "https://other.example/"
    );
}

// ---- attributes and notifications --------------------------------------------------------------

#[test]
fn parameter_attributes() {
    let mut e = engine(Model::Tr181);
    let got = e
        .attributes(&[
            "Device.ManagementServer.URL".to_string(),
            "Device.ManagementServer.ConnectionRequestURL".to_string(),
            "Device.DeviceInfo.SoftwareVersion".to_string(),
        ])
        .unwrap();
    let n: Vec<u8> = got.iter().map(|a| a.notification).collect();
    assert_eq!(n, [0, 2, 2]);
    assert!(e.take_dirty().is_none());

    let mut with_access = attr("Device.ManagementServer.URL", 1);
    with_access.access_list_change = true;
    with_access.access_list = vec!["Subscriber".into()];
    e.set_attributes(&[
        with_access,
        attr("Device.ManagementServer.ConnectionRequestURL", 0),
    ])
    .unwrap();
    let got = e
        .attributes(&[
            "Device.ManagementServer.URL".to_string(),
            "Device.ManagementServer.ConnectionRequestURL".to_string(),
        ])
        .unwrap();
    assert_eq!(
        (got[0].notification, got[0].access_list.clone()),
        (1, vec!["Subscriber".to_string()])
    );
    assert_eq!(got[1].notification, 0);
    assert!(e.take_dirty().is_some());

    // Refused requests change nothing (all or nothing).
    let before = e.state().clone();
    for (bad, code) in [
        (attr("Device.DeviceInfo.UpTime", 2), 9009),
        (attr("Device.DeviceInfo.SoftwareVersion", 0), 9009),
        (attr("Device.ManagementServer.ParameterKey", 2), 9009),
        (attr("Device.ManagementServer.URL", 4), 9009),
        (attr("Device.ManagementServer.URL", 7), 9003),
        (attr("Device.Nope", 1), 9005),
    ] {
        let err = e
            .set_attributes(&[attr("Device.ManagementServer.Username", 2), bad])
            .unwrap_err();
        assert_eq!(err.code(), code);
    }
    let mut bad_access = attr("Device.ManagementServer.Username", 1);
    bad_access.access_list_change = true;
    bad_access.access_list = vec!["Everybody".into()];
    assert_eq!(e.set_attributes(&[bad_access]).unwrap_err().code(), 9003);
    assert_eq!(e.state(), &before);

    // A partial path applies to the subtree, except where the model refuses it.
    e.set_attributes(&[attr("Device.DeviceInfo.", 1)]).unwrap();
    let got = e.attributes(&["Device.DeviceInfo.".to_string()]).unwrap();
    for a in &got {
        let expect = if a.name.ends_with("SoftwareVersion") || a.name.ends_with("ProvisioningCode")
        {
            2
        } else {
            1
        };
        assert_eq!(a.notification, expect, "{}", a.name);
    }
    e.set_attributes(&[attr("Device.DeviceInfo.", 2)]).unwrap();
    assert_eq!(
        e.attributes(&["Device.DeviceInfo.UpTime".to_string()])
            .unwrap()[0]
            .notification,
        1
    );
    assert_eq!(
        e.attributes(&["Device.DeviceInfo.Manufacturer".to_string()])
            .unwrap()[0]
            .notification,
        2
    );
    // Back to the default removes the entry.
    e.set_attributes(&[attr("Device.DeviceInfo.", 0)]).unwrap();
    assert!(!e
        .state()
        .attributes
        .keys()
        .any(|k| k.starts_with("Device.DeviceInfo.")));
}

#[test]
fn notifications() {
    let mut e = engine(Model::Tr181);
    // The first look records default-active values without reporting them.
    let (changed, _) = e.notifications();
    assert!(changed.is_empty());
    assert!(e
        .last_reported("Device.ManagementServer.ConnectionRequestURL")
        .is_some());
    // Last-seen values live in RAM: looking for changes writes nothing to the store.
    assert!(e.take_dirty().is_none());
    let (changed, _) = e.notifications();
    assert!(changed.is_empty());
    assert!(e.take_dirty().is_none());

    e.set_attributes(&[
        attr("Device.ManagementServer.Username", 1),
        attr("Device.ManagementServer.PeriodicInformInterval", 2),
    ])
    .unwrap();
    assert!(e.notifications().0.is_empty());
    // A local change is notified (passive: no session of its own).
    e.set_local(&[set("Device.ManagementServer.Username", "changed")])
        .unwrap();
    let (changed, active) = e.notifications();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].name.as_str(), changed[0].value.as_str()),
        ("Device.ManagementServer.Username", "changed")
    );
    assert!(!active);
    e.mark_reported(&changed);
    assert!(e.notifications().0.is_empty());
    // A change made by the ACS is not notified back.
    e.set_values(
        &[set("Device.ManagementServer.PeriodicInformInterval", "120")],
        "k",
    )
    .unwrap();
    assert!(e.notifications().0.is_empty());
    e.set_local(&[set("Device.ManagementServer.PeriodicInformInterval", "60")])
        .unwrap();
    let (changed, active) = e.notifications();
    assert_eq!(changed.len(), 1);
    assert!(active);
    // The connection request URL is active by default (forceDefaultEnabled).
    e.mark_reported(&changed);
    e.backends_mut()
        .set_runtime("connection_request.url", "http://203.0.113.9:7547/");
    let (changed, active) = e.notifications();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].name,
        "Device.ManagementServer.ConnectionRequestURL"
    );
    assert!(active);
    // Turning notification off forgets the reported value.
    e.set_attributes(&[attr("Device.ManagementServer.Username", 0)])
        .unwrap();
    assert!(e
        .last_reported("Device.ManagementServer.Username")
        .is_none());
}

// ---- AddObject / DeleteObject ------------------------------------------------------------------

#[test]
fn add_and_delete_objects_across_a_restart() {
    let table = "Device.ManagementServer.InformParameter.";
    let mut e = engine(Model::Tr181);
    assert_eq!(e.add_object(table, "a1").unwrap(), (1, Applied::Now));
    assert_eq!(e.add_object(table, "a2").unwrap(), (2, Applied::Now));
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "a2");
    assert_eq!(
        value(
            &mut e,
            "Device.ManagementServer.InformParameterNumberOfEntries"
        ),
        "2"
    );
    assert_eq!(
        value(&mut e, "Device.ManagementServer.InformParameter.2.Enable"),
        "false"
    );
    e.set_values(
        &[
            set(
                "Device.ManagementServer.InformParameter.1.ParameterName",
                "Device.DeviceInfo.UpTime",
            ),
            set("Device.ManagementServer.InformParameter.1.Enable", "true"),
        ],
        "s",
    )
    .unwrap();
    e.set_attributes(&[attr("Device.ManagementServer.InformParameter.1.Enable", 1)])
        .unwrap();
    assert_eq!(
        e.delete_object("Device.ManagementServer.InformParameter.1.", "d1")
            .unwrap(),
        Applied::Now
    );
    assert_eq!(value(&mut e, "Device.ManagementServer.ParameterKey"), "d1");
    assert!(!e
        .state()
        .values
        .keys()
        .any(|k| k.starts_with("acs.inform_parameter.1.")));
    assert!(!e
        .state()
        .attributes
        .keys()
        .any(|k| k.contains("InformParameter.1.")));
    assert_eq!(
        e.values(&["Device.ManagementServer.InformParameter.1.".to_string()])
            .unwrap_err()
            .code(),
        9005
    );
    assert_eq!(e.add_object(table, "a3").unwrap().0, 3);

    // Simulated restart: the state goes through TOML and back.
    let text = cwmpd::toml_write::to_string(e.take_dirty().unwrap());
    let state: DmState = cwmpd::toml_read::from_str(&text).unwrap();
    let mut e = engine_with(Model::Tr181, state);
    assert_eq!(
        names(&mut e, table, true),
        [
            (
                "Device.ManagementServer.InformParameter.2.".to_string(),
                true
            ),
            (
                "Device.ManagementServer.InformParameter.3.".to_string(),
                true
            ),
        ]
    );
    e.delete_object("Device.ManagementServer.InformParameter.3.", "d3")
        .unwrap();
    assert_eq!(e.add_object(table, "a4").unwrap().0, 4);
    let sub = names(&mut e, table, false);
    assert_eq!(sub[0], (table.to_string(), true));
    assert_eq!(
        sub[1],
        (
            "Device.ManagementServer.InformParameter.2.".to_string(),
            true
        )
    );
    assert_eq!(sub[2].0, "Device.ManagementServer.InformParameter.2.Enable");
    assert_eq!(sub.len(), 2 * 5 + 1);

    // Faults: not a table, not creatable, not an instance, unknown instance.
    let key_before = value(&mut e, "Device.ManagementServer.ParameterKey");
    for bad in [
        "Device.ManagementServer.",
        "Device.DeviceInfo.",
        "Device.ManagementServer.InformParameter.2.",
        "Device.ManagementServer.InformParameter",
        "Device.ManagementServer.URL",
        "Device.Nope.",
    ] {
        assert_eq!(e.add_object(bad, "x").unwrap_err().code(), 9005, "{bad}");
    }
    for bad in [
        "Device.ManagementServer.InformParameter.",
        "Device.ManagementServer.InformParameter.9.",
        "Device.ManagementServer.InformParameter.2",
        "Device.ManagementServer.",
    ] {
        assert_eq!(e.delete_object(bad, "x").unwrap_err().code(), 9005, "{bad}");
    }
    assert_eq!(
        value(&mut e, "Device.ManagementServer.ParameterKey"),
        key_before
    );
}

#[test]
fn inform_parameters() {
    let mut e = engine(Model::Tr181);
    let forced: Vec<String> = e.forced_inform().into_iter().map(|p| p.name).collect();
    for p in [
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.HardwareVersion",
        "Device.DeviceInfo.SoftwareVersion",
        "Device.DeviceInfo.ProvisioningCode",
        "Device.ManagementServer.ParameterKey",
        "Device.ManagementServer.ConnectionRequestURL",
        "Device.ManagementServer.AliasBasedAddressing",
    ] {
        assert!(forced.iter().any(|f| f == p), "{p} in {forced:?}");
    }
    assert_eq!(forced.len(), 7, "{forced:?}");
    let (n, _) = e
        .add_object("Device.ManagementServer.InformParameter.", "k")
        .unwrap();
    let base = format!("Device.ManagementServer.InformParameter.{n}.");
    // Forced parameters may not be added, nor "4 VALUE CHANGE" (9007).
    let err = e
        .set_values(
            &[
                set(
                    &format!("{base}ParameterName"),
                    "Device.DeviceInfo.SoftwareVersion",
                ),
                set(&format!("{base}EventList"), "1 BOOT,4 VALUE CHANGE"),
            ],
            "k",
        )
        .unwrap_err();
    let codes: Vec<u32> = err.param_faults().iter().map(|f| f.fault.code()).collect();
    assert_eq!(codes, [9007, 9007]);
    e.set_values(
        &[
            set(&format!("{base}ParameterName"), "Device.DeviceInfo.UpTime"),
            set(&format!("{base}Enable"), "true"),
            set(&format!("{base}EventList"), "1 BOOT"),
        ],
        "k",
    )
    .unwrap();
    let names = |v: Vec<cwmpd::cwmp::value::ParameterValue>| -> Vec<String> {
        v.into_iter().map(|p| p.name).collect()
    };
    assert!(
        names(e.inform_parameters(&["1 BOOT"])).contains(&"Device.DeviceInfo.UpTime".to_string())
    );
    assert!(!names(e.inform_parameters(&["2 PERIODIC"]))
        .contains(&"Device.DeviceInfo.UpTime".to_string()));
    assert!(!names(e.forced_inform()).contains(&"Device.DeviceInfo.UpTime".to_string()));
    // An empty EventList means every event but 4 VALUE CHANGE; `*` stands for instances.
    e.set_values(
        &[
            set(&format!("{base}EventList"), ""),
            set(
                &format!("{base}ParameterName"),
                "Device.ManagementServer.InformParameter.*.Enable",
            ),
        ],
        "k",
    )
    .unwrap();
    let got = names(e.inform_parameters(&["2 PERIODIC"]));
    assert!(got.contains(&format!("{base}Enable")), "{got:?}");
    assert!(!names(e.inform_parameters(&["4 VALUE CHANGE"])).contains(&format!("{base}Enable")));
    assert!(names(e.forced_inform()).contains(&format!("{base}Enable")));
    for bad in [
        "Device.Management*.URL",
        "Device.*.URL",
        "Device.ManagementServer.*",
        "Device.ManagementServer.InformParameter.*x.Enable",
    ] {
        let err = e
            .set_values(&[set(&format!("{base}ParameterName"), bad)], "k")
            .unwrap_err();
        assert_eq!(err.param_faults()[0].fault.code(), 9007, "{bad}");
    }
    // Names this CPE does not have are accepted (they match nothing, TR-181).
    e.set_values(
        &[set(
            &format!("{base}ParameterName"),
            "Device.WiFi.Radio.*.Channel",
        )],
        "k",
    )
    .unwrap();
}

#[test]
fn tr098_model() {
    let mut e = engine(Model::Tr098);
    assert_eq!(e.root(), "InternetGatewayDevice.");
    assert_eq!(
        value(&mut e, "InternetGatewayDevice.DeviceSummary"),
        "InternetGatewayDevice:1.14[]()"
    );
    assert_eq!(
        value(&mut e, "InternetGatewayDevice.DeviceInfo.SpecVersion"),
        "1.0"
    );
    assert_eq!(
        value(&mut e, "InternetGatewayDevice.DeviceInfo.ManufacturerOUI"),
        "00AABB"
    );
    let forced: Vec<String> = e.forced_inform().into_iter().map(|p| p.name).collect();
    assert!(forced.contains(&"InternetGatewayDevice.DeviceSummary".to_string()));
    assert!(
        forced.contains(&"InternetGatewayDevice.ManagementServer.ConnectionRequestURL".to_string())
    );
    e.set_values(
        &[set(
            "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
            "300",
        )],
        "k",
    )
    .unwrap();
    assert_eq!(
        e.value("InternetGatewayDevice.ManagementServer.PeriodicInformInterval")
            .unwrap(),
        "300"
    );
    assert_eq!(e.names("Device.", true).unwrap_err().code(), 9005);
    let (n, _) = e
        .add_object(
            "InternetGatewayDevice.ManagementServer.InformParameter.",
            "k",
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// One GPV naming `Device.` thousands of times must not expand the tree without bound: it
/// answers 9004 (Resources exceeded) instead of allocating until the router runs out of memory.
#[test]
fn requests_expanding_too_many_parameters_answer_9004() {
    let mut e = engine(Model::Tr181);
    let per_root = e.values(&["Device.".to_string()]).unwrap().len();
    assert!(per_root > 10);
    let n = cwmpd::datamodel::MAX_PARAMS_PER_REQUEST / per_root + 2;
    let names = vec!["Device.".to_string(); n];
    assert_eq!(e.values(&names).unwrap_err().code(), 9004);
    assert_eq!(e.attributes(&names).unwrap_err().code(), 9004);
    // Just under the cap still works.
    let ok = vec!["Device.".to_string(); cwmpd::datamodel::MAX_PARAMS_PER_REQUEST / per_root];
    assert!(e.values(&ok).is_ok());
}

// ---- binding transforms, maps, references ------------------------------------------------------

const TRANSFORMS: &str = r#"
[[object]]
name = "Device.X_T."
params = [
  { name = "Flag", type = "boolean", access = "readWrite" },
  { name = "Mask", type = "string", access = "readWrite" },
  { name = "Hex", type = "string" },
  { name = "Pick", type = "string", access = "readWrite", list = true },
  { name = "Nested", type = "string" },
  { name = "Missing", type = "string", default = "none" },
  { name = "Mode", type = "string", access = "readWrite", enum = ["Fast", "Slow"] },
  { name = "ItemNumberOfEntries", type = "unsignedInt" },
  { name = "Chan", type = "unsignedInt", ranges = [{ max = 200 }] },
]

[[object]]
name = "Device.X_T.Item.{i}."
access = "readWrite"
min_entries = 0
max_entries = "unbounded"
num_entries = "ItemNumberOfEntries"
params = [{ name = "Name", type = "string" }]

[bind."Device.X_T."]
Flag = { to = "agent:t.disabled", transform = "not", default = "true" }
Mask = { to = "agent:t.prefix", transform = "prefix_mask", default = "255.255.255.0" }
Hex = { to = "const:0101A8C0", transform = "hexip4" }
Pick = { to = "agent:t.pick", ref = "Device.X_T.Item." }
Nested = "const:v-{agent:t.name}"
Missing = "const:{agent:t.nothing}"
Mode = { to = "agent:t.mode", map = { "1" = "Fast", "2" = "Slow" } }
Chan = { to = "const:auto", default = "0" }

[bind."Device.X_T.Item.{i}."]
"{i}" = "agent:t.item"
Name = "const:item-{i}"
"#;

#[test]
fn binding_transforms_maps_and_references() {
    let dir = scratch_dir("transforms");
    std::fs::write(dir.join("t.toml"), TRANSFORMS).unwrap();
    let schema = Schema::load(Model::Tr181, Some(&dir)).unwrap();
    let mut d = defaults();
    d.insert("t.name".into(), "abc".into());
    let mut e = Engine::new(schema, Backends::new(d), DmState::default());
    // Read side: transform, default through the transform, map, nested reference.
    assert_eq!(value(&mut e, "Device.X_T.Hex"), "192.168.1.1");
    assert_eq!(value(&mut e, "Device.X_T.Flag"), "true");
    assert_eq!(value(&mut e, "Device.X_T.Mask"), "255.255.255.0");
    assert_eq!(value(&mut e, "Device.X_T.Nested"), "v-abc");
    assert_eq!(value(&mut e, "Device.X_T.Missing"), "none");
    // A backend value its type does not allow is not shown (uci's `channel 'auto'`).
    assert_eq!(value(&mut e, "Device.X_T.Chan"), "0");
    // Write side: the backend receives the stored form.
    e.set_values(
        &[
            set("Device.X_T.Flag", "false"),
            set("Device.X_T.Mask", "255.255.0.0"),
            set("Device.X_T.Mode", "Slow"),
        ],
        "k1",
    )
    .unwrap();
    let stored = |e: &Engine, k: &str| e.state().values.get(k).cloned();
    assert_eq!(stored(&e, "t.disabled").as_deref(), Some("1"));
    assert_eq!(stored(&e, "t.prefix").as_deref(), Some("16"));
    assert_eq!(stored(&e, "t.mode").as_deref(), Some("2"));
    assert_eq!(value(&mut e, "Device.X_T.Flag"), "false");
    assert_eq!(value(&mut e, "Device.X_T.Mask"), "255.255.0.0");
    assert_eq!(value(&mut e, "Device.X_T.Mode"), "Slow");
    // A map restricts what can be stored.
    let f = e
        .set_values(&[set("Device.X_T.Mode", "Medium")], "k1b")
        .unwrap_err();
    assert_eq!(f.param_faults()[0].fault.code(), 9007);
    // A value the transform cannot store is refused for that parameter, and nothing changes.
    let f = e
        .set_values(
            &[
                set("Device.X_T.Mask", "255.0.255.0"),
                set("Device.X_T.Flag", "true"),
            ],
            "k2",
        )
        .unwrap_err();
    assert_eq!(f.code(), 9003);
    assert_eq!(f.param_faults()[0].fault.code(), 9007);
    assert_eq!(value(&mut e, "Device.X_T.Flag"), "false");
    // A read-only transform makes the parameter read-only.
    let hex = names(&mut e, "Device.X_T.Hex", false);
    assert!(!hex[0].1, "{hex:?}");
    // References: instance keys are shown as instance paths, and back.
    let (n1, _) = e.add_object("Device.X_T.Item.", "k3").unwrap();
    let (n2, _) = e.add_object("Device.X_T.Item.", "k4").unwrap();
    assert_eq!(
        value(&mut e, &format!("Device.X_T.Item.{n2}.Name")),
        format!("item-{n2}")
    );
    let both = format!("Device.X_T.Item.{n1},Device.X_T.Item.{n2}.");
    e.set_values(&[set("Device.X_T.Pick", &both)], "k5")
        .unwrap();
    assert_eq!(
        stored(&e, "t.pick").as_deref(),
        Some(format!("{n1},{n2}").as_str())
    );
    assert_eq!(
        value(&mut e, "Device.X_T.Pick"),
        format!("Device.X_T.Item.{n1},Device.X_T.Item.{n2}")
    );
    let f = e
        .set_values(&[set("Device.X_T.Pick", "Device.X_T.Item.99")], "k6")
        .unwrap_err();
    assert_eq!(f.param_faults()[0].fault.code(), 9007);
    // A deleted instance disappears from the reference.
    e.delete_object(&format!("Device.X_T.Item.{n1}."), "k7")
        .unwrap();
    assert_eq!(
        value(&mut e, "Device.X_T.Pick"),
        format!("Device.X_T.Item.{n2}")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_transforms_and_references_name_the_file_and_line() {
    let dir = scratch_dir("bad-transform");
    let f = dir.join("t.toml");
    for (text, line, what) in [
        (
            "[bind.\"Device.DeviceInfo.\"]\n\nModelNumber = { to = \"const:x\", transform = \"rot13\" }\n",
            3,
            "unknown transform",
        ),
        (
            "[bind.\"Device.DeviceInfo.\"]\nModelNumber = { to = \"const:x\", ref = \"Device.DeviceInfo.\" }\n",
            2,
            "not a bound table",
        ),
        (
            "[bind.\"Device.DeviceInfo.\"]\nModelNumber = \"const:{nosuch:x}\"\n",
            2,
            "",
        ),
        ("[script.\"bad name\"]\npath = \"x.sh\"\n", 1, "bad script name"),
        (
            "[bind.\"Device.DeviceInfo.\"]\nModelNumber = \"script:nobody:model\"\n",
            2,
            "no [script.nobody] declares",
        ),
    ] {
        std::fs::write(&f, text).unwrap();
        let e = Schema::load(Model::Tr181, Some(&dir)).unwrap_err();
        assert_eq!(e.file, f.display().to_string(), "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains(what), "{e}");
    }
    // A declared script's path is relative to the file that declares it.
    std::fs::write(&f, "[script.acme]\npath = \"acme.sh\"\ntimeout_ms = 1500\n").unwrap();
    let s = Schema::load(Model::Tr181, Some(&dir)).unwrap();
    let acme = &s.scripts()["acme"];
    assert_eq!(acme.path, dir.join("acme.sh"));
    assert_eq!(acme.timeout, Some(std::time::Duration::from_millis(1500)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_vendor_script_costs_only_its_own_parameters() {
    let dir = scratch_dir("broken-script");
    std::fs::write(
        dir.join("broken.sh"),
        "#!/bin/sh\necho 'not the protocol'\nexit 1\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(dir.join("broken.sh"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(dir.join("broken.sh"), perm).unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        r#"[script.broken]
path = "broken.sh"

[[object]]
name = "Device.X_B."
params = [{ name = "Level", type = "unsignedInt", default = "7" }]

[bind."Device.X_B."]
Level = "script:broken:level"
"#,
    )
    .unwrap();
    let schema = Schema::load(Model::Tr181, Some(&dir)).unwrap();
    let mut e = Engine::new(schema, Backends::new(defaults()), DmState::default());
    // The whole tree still answers; the script's parameter reads as its default.
    let all = e.values(&["Device.".to_string()]).unwrap();
    let level = all.iter().find(|v| v.name == "Device.X_B.Level").unwrap();
    assert_eq!(level.value, "7");
    assert!(all.iter().any(|v| v.name == "Device.ManagementServer.URL"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ManagementServer.URL` "MUST be in the form of a valid HTTP or HTTPS
/// URL" (TR-181, TR-098): any other value would orphan the device. Refused with 9007 for the
/// parameter, inside the SetParameterValues fault (9003), changing nothing; from `cwmpd set`
/// too.
#[test]
fn management_server_url_must_be_http_or_https() {
    for model in [Model::Tr181, Model::Tr098] {
        let mut e = engine(model);
        let url = format!("{}ManagementServer.URL", model.root());
        let before = value(&mut e, &url);
        for bad in [
            "",
            "file:///etc/passwd",
            "ftp://acs.example.net/",
            "acs.example.net/cwmp",
            "https://",
            "http:///cwmp",
            "https://acs.example.net/\n",
            "https://acs.example.net/cwmp\r\nX: y",
            " https://acs.example.net/",
            "https://acs.example.net/a b",
            "https://user:secret@acs.example.net/",
        ] {
            let f = e.set_values(&[set(&url, bad)], "bad-url").unwrap_err();
            assert_eq!(f.code(), 9003, "{model:?} {bad:?}: {f}");
            let p = f.param_faults();
            assert_eq!(p.len(), 1, "{model:?} {bad:?}: {f:?}");
            assert_eq!(p[0].name, url);
            assert_eq!(p[0].fault.code(), 9007, "{model:?} {bad:?}: {f:?}");
            assert!(!p[0].fault.to_string().contains("secret"), "{}", p[0].fault);
            assert_eq!(e.set_local(&[set(&url, bad)]).unwrap_err().code(), 9003);
            assert_eq!(value(&mut e, &url), before, "{model:?} {bad:?}");
        }
        assert_eq!(
            value(
                &mut e,
                &format!("{}ManagementServer.ParameterKey", model.root())
            ),
            ""
        );
        for good in [
            "https://acs.example.net:7548/cwmp",
            "http://192.0.2.10/acs?id=1",
            "HTTPS://[2001:db8::1]:8443/",
        ] {
            e.set_values(&[set(&url, good)], "good-url")
                .unwrap_or_else(|f| panic!("{model:?} {good:?}: {f:?}"));
            assert_eq!(value(&mut e, &url), good);
        }
    }
}

/// The text of an embedded data model file (`datamodel/tr181.toml`), from the source tree: the
/// binary holds it compiled.
fn text_of(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
