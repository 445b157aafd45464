//! ACS discovery by DHCP (TR-069 §3.1) with the real parts: two network namespaces the test
//! made (as root; skipped elsewhere), dnsmasq (Debian's `dnsmasq-base`) serving option 43 to
//! clients of vendor class `dslforum.org`, busybox's udhcpc asking for it as OpenWrt's netifd
//! does (`-V dslforum.org -O 43`, option 125 from `cwmpd dhcp-option125`) and running the
//! shipped hook `openwrt/files/cwmpd.udhcpc` the way OpenWrt's `/lib/netifd/dhcp.script` runs
//! the files of `/etc/udhcpc.user.d/` (in a subshell, with udhcpc's action), and the real
//! daemon with no ACS URL: it Informs the discovered ACS with `0 BOOTSTRAP`, the
//! ProvisioningCode DHCP gave in the Inform.

use std::time::Duration;

use support::acs::{Acs, AcsOptions};
use support::cpe::*;
use support::netns::pair;

#[test]
fn the_acs_from_dhcp_option_43_is_informed_with_bootstrap() {
    let Some((srv, cli)) = pair() else { return };
    if std::process::Command::new("busybox")
        .arg("udhcpc")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "busybox is needed");
        return;
    }
    let acs = srv.run(|| {
        Acs::start(AcsOptions::default().bind("10.77.1.1:0".parse().unwrap())).expect("ACS")
    });
    let url = acs.url();
    let cpe = Cpe::with_config("dhcp-acs", "", None, 3600, |_| String::new());
    let dir = cpe.cfg.parent().unwrap().to_path_buf();
    let Some(dnsmasq) = support::servers::Dnsmasq::dhcp(
        &srv,
        "a0",
        "10.77.1.100,10.77.1.150,1h",
        &[
            format!("vendor:dslforum.org,1,{url}"),
            "vendor:dslforum.org,2,ZT-1".into(),
            "vendor:dslforum.org,3,7".into(),
        ],
        &dir,
    ) else {
        return;
    };
    let daemon = cpe.spawn_run_in(cli.name());
    // OpenWrt's dhcp.script, for what it does with the user hooks.
    let script = dir.join("dhcp.script");
    let hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt/files/cwmpd.udhcpc");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n( . {:?} \"$@\" )\nexit 0\n",
            hook.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let o125 = cpe.cli(&["dhcp-option125"]);
    o125.assert_code(0, "dhcp-option125");
    let o125 = o125.stdout.trim().to_string();
    assert!(o125.starts_with("00000de9"), "{o125}");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", cli.name(), "busybox", "udhcpc"])
        .args(["-i", "b0", "-f", "-q", "-n", "-t", "5", "-T", "1"])
        .args(["-V", "dslforum.org", "-O", "43"])
        .arg("-x")
        .arg(format!("0x7d:{o125}"))
        .arg("-s")
        .arg(&script)
        .env("CWMPD_BIN", bin())
        .env("CWMPD_CONFIG", &cpe.cfg)
        .output()
        .expect("udhcpc");
    drop(dnsmasq);
    assert!(
        out.status.success(),
        "udhcpc: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = poll(Duration::from_secs(30), || {
        acs.completed().into_iter().next()
    })
    .unwrap_or_else(|| panic!("no session with the discovered ACS\n{}", daemon.log()));
    assert!(s.has_event("0 BOOTSTRAP"), "{:?}", s.event_codes());
    assert_eq!(s.param("Device.DeviceInfo.ProvisioningCode"), Some("ZT-1"));
    let v = cpe
        .cli(&[
            "get",
            "Device.ManagementServer.URL",
            "Device.ManagementServer.CWMPRetryMinimumWaitInterval",
        ])
        .values();
    assert_eq!(v["Device.ManagementServer.URL"], url);
    assert_eq!(
        v["Device.ManagementServer.CWMPRetryMinimumWaitInterval"],
        "7"
    );
    assert!(
        daemon.log().contains("DHCPv4: the ACS is"),
        "{}",
        daemon.log()
    );
    // The same lease renewed: nothing new, nothing written.
    let option = |url: &str| -> String {
        let mut o = vec![1u8, url.len() as u8];
        o.extend_from_slice(url.as_bytes());
        o.extend_from_slice(&[2, 4]);
        o.extend_from_slice(b"ZT-1");
        o.extend_from_slice(&[3, 1, 7, 255]);
        o.iter().map(|b| format!("{b:02x}")).collect()
    };
    let same = cpe.cli(&["dhcp-acs", "v4", &option(&url)]);
    same.assert_code(0, "dhcp-acs");
    assert_eq!(same.stdout.trim(), "nothing new", "{}", same.stderr);
    // Another ACS within ten minutes of the change: not used (no flapping).
    let other = cpe.cli(&["dhcp-acs", "v4", &option("http://10.77.1.9:7547/other")]);
    other.assert_code(0, "dhcp-acs");
    assert_eq!(other.stdout.trim(), "queued: Device.ManagementServer.URL");
    poll(Duration::from_secs(20), || {
        daemon
            .log()
            .contains("within 600 s of the last change")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the second URL was not held back\n{}", daemon.log()));
    let v = cpe.cli(&["get", "Device.ManagementServer.URL"]).values();
    assert_eq!(v["Device.ManagementServer.URL"], url);
    // Malformed hex: exit 1; a usage error: exit 2.
    cpe.cli(&["dhcp-acs", "v4", "zz"])
        .assert_code(1, "malformed");
    cpe.cli(&["dhcp-acs", "v5", "00"]).assert_code(2, "usage");
}
