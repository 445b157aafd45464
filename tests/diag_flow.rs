//! The diagnostics through whole CWMP flows: the real `cwmpd` on the `linux` platform in a
//! network namespace the test made (as root; skipped elsewhere), the test ACS beside it. The
//! ACS sets a test's inputs and `DiagnosticsState = Requested` in one SetParameterValues; the
//! test runs after that session; the CPE opens a session with `8 DIAGNOSTICS COMPLETE`, in
//! which the ACS reads the results (TR-069 §A.3.3.1, TR-181 DiagnosticsState):
//!
//! - IPPing of a neighbour bound to its interface (the `Interface` path of the IP interface),
//!   and values the CPE refuses (9007 per parameter: an interface that is not one, a request
//!   without a Host, more repetitions than it runs);
//! - TraceRoute over three routed hops (RouteHops with each router's address);
//! - the UDP echo server (UDPEchoConfig) answering a client in the other namespace, with its
//!   counters, and UDPEchoDiagnostics towards a server there, with individual packet results;
//! - NSLookup against dnsmasq (Debian's `dnsmasq-base`) serving a test zone: a CNAME to an
//!   IPv4 and an IPv6 address, authoritative; then a name that does not exist;
//! - TR-143: a time-based download on two connections from Python's `http.server` with
//!   per-connection and incremental results that add up, then an upload of a file length to
//!   a PUT server that counts what it read;
//! - ServerSelection over ICMP among a host that answers, one that does not and a name that
//!   does not resolve;
//! - TR-098's IPPingDiagnostics (no `Canceled` there: 9007);
//! - a test cancelled by a later SetParameterValues of one of its inputs: None, and no
//!   `8 DIAGNOSTICS COMPLETE` ever.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cwmpd::cwmp::value::BaseType;
use cwmpd::soap::{AcsRequest, CpeResponse};
use support::acs::{Acs, AcsOptions, SessionRecord};
use support::cpe::*;
use support::netns::{pair, three_hops, Netns};

const WAIT: Duration = Duration::from_secs(60);
const COMPLETE: &str = "8 DIAGNOSTICS COMPLETE";

/// A CPE on the linux platform with the test ACS, both in `ns`.
fn cpe_in(ns: &Netns, tag: &str) -> (Acs, Cpe) {
    let acs = ns.run(|| Acs::start(AcsOptions::default()).expect("start ACS"));
    let cpe = Cpe::with_config(tag, &acs.url(), None, 3600, |dir| {
        format!(
            "\n[datamodel]\nplatform = \"linux\"\ndir = {:?}\npoll_interval = 3600\n",
            dir.join("datamodel.d").display().to_string()
        )
    });
    (acs, cpe)
}

/// The path of the IP interface named `dev` (`Device.IP.Interface.3`).
fn interface(cpe: &Cpe, ns: &Netns, dev: &str) -> String {
    let v = cpe
        .cli_in(ns.name(), &["get", "Device.IP.Interface."])
        .values();
    v.iter()
        .find(|(k, val)| k.ends_with(".Name") && *val == dev)
        .map(|(k, _)| k.trim_end_matches(".Name").to_string())
        .unwrap_or_else(|| panic!("no interface {dev}: {v:#?}"))
}

fn s(v: &str) -> (&str, BaseType) {
    (v, BaseType::String)
}

fn u(v: &str) -> (&str, BaseType) {
    (v, BaseType::UnsignedInt)
}

/// An SPV of `(name, (value, type))` pairs.
fn spv(list: &[(&str, (&str, BaseType))]) -> support::acs::Call {
    let l: Vec<(&str, &str, BaseType)> = list.iter().map(|(n, (v, t))| (*n, *v, *t)).collect();
    spv_req(&l, "diag")
}

/// The values of the session's GetParameterValues.
fn values(s: &SessionRecord) -> BTreeMap<String, String> {
    gpv_values(s)
}

/// The status of the session's SetParameterValues, or its fault code (and the per-parameter
/// codes).
fn spv_result(s: &SessionRecord, n: usize) -> Result<u8, (u32, Vec<(String, u32)>)> {
    let e = s.calls("SetParameterValues")[n];
    match &e.response {
        Ok(CpeResponse::SetParameterValues { status }) => Ok(*status),
        _ => {
            let f = e.fault().expect("a response or a fault");
            let per = match f {
                cwmpd::cwmp::fault::Fault::InvalidArguments(_, list) => list
                    .iter()
                    .map(|p| (p.name.clone(), p.fault.code()))
                    .collect(),
                _ => Vec::new(),
            };
            Err((f.code(), per))
        }
    }
}

/// Waits for the first `n` sessions with `8 DIAGNOSTICS COMPLETE`.
fn completed_n(acs: &Acs, n: usize, log: impl Fn() -> String) -> Vec<SessionRecord> {
    poll(WAIT, || {
        let done: Vec<SessionRecord> = acs
            .completed()
            .into_iter()
            .filter(|s| s.has_event(COMPLETE))
            .collect();
        (done.len() >= n).then_some(done)
    })
    .unwrap_or_else(|| panic!("fewer than {n} {COMPLETE} sessions\n{}", log()))
}

/// Waits for the session with `8 DIAGNOSTICS COMPLETE`.
fn completed(acs: &Acs, log: impl Fn() -> String) -> SessionRecord {
    completed_n(acs, 1, log).swap_remove(0)
}

#[test]
fn ipping_of_a_neighbour_on_its_interface_and_values_the_cpe_refuses() {
    let Some((a, _b)) = pair() else { return };
    let (acs, cpe) = cpe_in(&a, "diag-ping");
    let a0 = interface(&cpe, &a, "a0");
    let p = "Device.IP.Diagnostics.IPPing.";
    let name = |f: &str| format!("{p}{f}");
    let (state, host, iface, reps, timeout, size, dscp) = (
        name("DiagnosticsState"),
        name("Host"),
        name("Interface"),
        name("NumberOfRepetitions"),
        name("Timeout"),
        name("DataBlockSize"),
        name("DSCP"),
    );
    acs.push_script([
        // Refused, each parameter with its 9007: not an interface, too many repetitions.
        spv(&[
            (&iface, s("Device.DeviceInfo.")),
            (&reps, u("5000")),
            (&host, s("10.77.1.2")),
        ]),
        // Requested without a Host: refused on DiagnosticsState.
        spv(&[(&state, s("Requested"))]),
        spv(&[
            (&host, s("10.77.1.2")),
            (&iface, s(&a0)),
            (&reps, u("2")),
            (&timeout, u("1000")),
            (&size, u("100")),
            (&dscp, u("10")),
            (&state, s("Requested")),
        ]),
        gpv_req(&[&state]),
    ]);
    acs.push_script([gpv_req(&[p])]);
    let daemon = cpe.spawn_run_in(a.name());
    let done = completed(&acs, || daemon.log());
    let first = &acs.completed()[0];
    let (code, per) = spv_result(first, 0).unwrap_err();
    assert_eq!(code, 9003);
    assert!(per.contains(&(iface.clone(), 9007)), "{per:?}");
    assert!(per.contains(&(reps.clone(), 9007)), "{per:?}");
    assert_eq!(
        spv_result(first, 1).unwrap_err().1,
        vec![(state.clone(), 9007)]
    );
    assert_eq!(spv_result(first, 2), Ok(0));
    assert_eq!(values(first)[&state], "Requested");
    assert!(!first.has_event(COMPLETE));
    let v = values(&done);
    assert_eq!(v[&state], "Complete", "{v:#?}");
    assert_eq!(v[&name("SuccessCount")], "2");
    assert_eq!(v[&name("FailureCount")], "0");
    assert_eq!(v[&name("IPAddressUsed")], "10.77.1.1");
    assert_eq!(v[&iface], a0, "the Interface reads as set");
    let avg: u64 = v[&name("AverageResponseTimeDetailed")].parse().unwrap();
    let min: u64 = v[&name("MinimumResponseTimeDetailed")].parse().unwrap();
    let max: u64 = v[&name("MaximumResponseTimeDetailed")].parse().unwrap();
    assert!(min > 0 && min <= avg && avg <= max, "{v:#?}");
    assert!(
        max < 1_000_000,
        "a neighbour answers within the timeout: {v:#?}"
    );
    assert_eq!(
        v[&name("MaximumResponseTime")],
        max.div_ceil(1000).to_string()
    );
}

#[test]
fn traceroute_of_three_hops_through_the_cwmp_flow() {
    let Some([ns, _r1, _r2, _b]) = three_hops() else {
        return;
    };
    let (acs, cpe) = cpe_in(&ns, "diag-trace");
    let t = "Device.IP.Diagnostics.TraceRoute.";
    let name = |f: &str| format!("{t}{f}");
    acs.push_script([spv(&[
        (&name("Host"), s("10.77.4.2")),
        (&name("NumberOfTries"), u("2")),
        (&name("Timeout"), u("1000")),
        (&name("MaxHopCount"), u("8")),
        (&name("DiagnosticsState"), s("Requested")),
    ])]);
    acs.push_script([gpv_req(&[t])]);
    let daemon = cpe.spawn_run_in(ns.name());
    let done = completed(&acs, || daemon.log());
    let v = values(&done);
    assert_eq!(v[&name("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&name("RouteHopsNumberOfEntries")], "3");
    for (i, host) in ["10.77.2.2", "10.77.3.2", "10.77.4.2"].iter().enumerate() {
        let hop = |f: &str| v[&format!("{t}RouteHops.{}.{f}", i + 1)].clone();
        assert_eq!(hop("Host"), *host);
        assert_eq!(hop("HostAddress"), *host);
        assert_eq!(hop("ErrorCode"), "0");
        let times: Vec<u64> = hop("RTTimes")
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(times.len(), 2);
        assert!(times.iter().all(|t| (1..1000).contains(t)), "{times:?}");
    }
    assert_eq!(v[&name("IPAddressUsed")], "10.77.2.1");
    assert!(v[&name("ResponseTime")].parse::<u64>().unwrap() >= 1);
}

#[test]
fn the_udp_echo_server_and_udp_echo_diagnostics_both_ways() {
    use cwmpd::diag::echo;
    let Some((a, b)) = pair() else { return };
    // A TR-143 echo server in b for the CPE's UDPEchoDiagnostics.
    let server = b.run(|| {
        echo::Server::start(echo::ServerConfig {
            listen: "10.77.1.2:7000".parse().unwrap(),
            interface: None,
            source: None,
            plus: true,
        })
        .expect("echo server")
    });
    let (acs, cpe) = cpe_in(&a, "diag-echo");
    let c = "Device.IP.Diagnostics.UDPEchoConfig.";
    let d = "Device.IP.Diagnostics.UDPEchoDiagnostics.";
    let cn = |f: &str| format!("{c}{f}");
    let dn = |f: &str| format!("{d}{f}");
    acs.push_script([spv(&[
        (&cn("Enable"), ("true", BaseType::Boolean)),
        (&cn("UDPPort"), u("7001")),
        (&cn("EchoPlusEnabled"), ("true", BaseType::Boolean)),
        (&cn("SourceIPAddress"), s("10.77.1.2")),
        (&dn("Host"), s("10.77.1.2")),
        (&dn("Port"), u("7000")),
        (&dn("NumberOfRepetitions"), u("3")),
        (&dn("Timeout"), u("1000")),
        (&dn("InterTransmissionTime"), u("50")),
        (&dn("DataBlockSize"), u("64")),
        (
            &dn("EnableIndividualPacketResults"),
            ("true", BaseType::Boolean),
        ),
        (&dn("DiagnosticsState"), s("Requested")),
    ])]);
    // The results, then a session 2 s later for the server's counters.
    acs.push_script([
        gpv_req(&[d]),
        AcsRequest::ScheduleInform {
            delay_seconds: 2,
            command_key: "counters".into(),
        }
        .into(),
    ]);
    acs.push_script([gpv_req(&[c])]);
    let daemon = cpe.spawn_run_in(a.name());
    let done = completed(&acs, || daemon.log());
    let v = values(&done);
    assert_eq!(v[&dn("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&dn("SuccessCount")], "3");
    assert_eq!(v[&dn("FailureCount")], "0");
    assert_eq!(v[&dn("IPAddressUsed")], "10.77.1.1");
    assert_eq!(v[&dn("IndividualPacketResultNumberOfEntries")], "3");
    let row = |f: &str| v[&format!("{d}IndividualPacketResult.3.{f}")].clone();
    assert_eq!(row("TestGenSN"), "3");
    assert_eq!(row("PacketSuccess"), "true");
    // The server in b numbered its answers (Echo Plus).
    assert_eq!(row("TestRespSN"), "3");
    assert!(row("PacketSendTime") <= row("PacketReceiveTime"), "{v:#?}");
    assert_eq!(server.stats().packets_responded, 3);
    // The CPE's server answers b's client with Echo Plus, and counts.
    let client = echo::Client {
        server: "10.77.1.1:7001".parse().unwrap(),
        interface: None,
        count: 2,
        timeout: Duration::from_millis(1000),
        size: 40,
        dscp: 0,
        interval: Duration::from_millis(10),
    };
    let got = b
        .run(move || echo::measure(&client, &AtomicBool::new(false)))
        .unwrap();
    assert!(
        got.iter().all(|p| p.rtt.is_some()),
        "{got:?}\n{}",
        daemon.log()
    );
    assert_eq!(got[1].reply.map(|p| p.resp_sn), Some(2));
    let later = poll(WAIT, || {
        acs.completed()
            .into_iter()
            .find(|s| s.has_event("3 SCHEDULED"))
    })
    .unwrap_or_else(|| panic!("no scheduled session\n{}", daemon.log()));
    let v = values(&later);
    assert_eq!(v[&cn("PacketsReceived")], "2", "{v:#?}");
    assert_eq!(v[&cn("PacketsResponded")], "2");
    assert_eq!(v[&cn("BytesReceived")], "80");
    assert_eq!(v[&cn("BytesResponded")], "80");
    assert!(v[&cn("TimeFirstPacketReceived")] <= v[&cn("TimeLastPacketReceived")]);
    assert!(
        v[&cn("TimeFirstPacketReceived")].starts_with("20"),
        "{v:#?}"
    );
}

#[test]
fn an_input_written_while_the_test_runs_cancels_it() {
    let Some((a, _b)) = pair() else { return };
    let (acs, cpe) = cpe_in(&a, "diag-cancel");
    let p = "Device.IP.Diagnostics.IPPing.";
    let name = |f: &str| format!("{p}{f}");
    // Nobody answers 10.77.1.99: the test would take 20 s. A scheduled inform a second later
    // comes while it runs, and changes its Timeout.
    acs.push_script([
        spv(&[
            (&name("Host"), s("10.77.1.99")),
            (&name("NumberOfRepetitions"), u("20")),
            (&name("DiagnosticsState"), s("Requested")),
        ]),
        AcsRequest::ScheduleInform {
            delay_seconds: 1,
            command_key: "during".into(),
        }
        .into(),
    ]);
    acs.push_script([
        gpv_req(&[&name("DiagnosticsState")]),
        spv(&[(&name("Timeout"), u("2000"))]),
        gpv_req(&[&name("DiagnosticsState")]),
    ]);
    let daemon = cpe.spawn_run_in(a.name());
    let during = poll(WAIT, || {
        acs.completed()
            .into_iter()
            .find(|s| s.has_event("3 SCHEDULED"))
    })
    .unwrap_or_else(|| panic!("no scheduled session\n{}", daemon.log()));
    let states: Vec<String> = during
        .calls("GetParameterValues")
        .iter()
        .map(|e| gpv(e)[0].value.clone())
        .collect();
    assert_eq!(states, ["Requested", "None"], "{}", daemon.log());
    assert_eq!(spv_result(&during, 0), Ok(0));
    // The stopped test's result never comes, nor its event.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        acs.completed().iter().all(|s| !s.has_event(COMPLETE)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("the result of a stopped"),
        "{}",
        daemon.log()
    );
}

#[test]
fn nslookup_against_dnsmasq_through_the_cwmp_flow() {
    let Some((a, b)) = pair() else { return };
    let Some(_dns) = support::servers::Dnsmasq::start(&b, "10.77.1.2") else {
        return;
    };
    // dnsmasq takes a moment to listen.
    poll(WAIT, || {
        let got = a.run(|| {
            cwmpd::diag::lookup::lookup(
                "10.77.1.2:53".parse().unwrap(),
                "www.example.test",
                cwmpd::diag::dns::TYPE_A,
                Duration::from_millis(200),
                None,
                &AtomicBool::new(false),
            )
        });
        matches!(got, Ok(cwmpd::diag::lookup::Lookup::Answered(..))).then_some(())
    })
    .expect("dnsmasq answers");
    let (acs, cpe) = cpe_in(&a, "diag-dns");
    let n = "Device.DNS.Diagnostics.NSLookupDiagnostics.";
    let name = |f: &str| format!("{n}{f}");
    acs.push_script([spv(&[
        (&name("HostName"), s("alias.example.test")),
        (&name("DNSServer"), s("10.77.1.2")),
        (&name("NumberOfRepetitions"), u("2")),
        (&name("Timeout"), u("2000")),
        (&name("DiagnosticsState"), s("Requested")),
    ])]);
    // Then a name that does not exist, on the same server.
    acs.push_script([
        gpv_req(&[n]),
        spv(&[
            (&name("HostName"), s("nope.example.test")),
            (&name("NumberOfRepetitions"), u("1")),
            (&name("DiagnosticsState"), s("Requested")),
        ]),
    ]);
    acs.push_script([gpv_req(&[n])]);
    let daemon = cpe.spawn_run_in(a.name());
    let runs = completed_n(&acs, 2, || daemon.log());
    let v = values(&runs[0]);
    assert_eq!(v[&name("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&name("ResultNumberOfEntries")], "2");
    assert_eq!(v[&name("SuccessCount")], "2", "{v:#?}");
    let row = |v: &BTreeMap<String, String>, f: &str| v[&format!("{n}Result.1.{f}")].clone();
    assert_eq!(row(&v, "Status"), "Success");
    assert_eq!(row(&v, "AnswerType"), "Authoritative");
    assert_eq!(row(&v, "HostNameReturned"), "www.example.test");
    assert_eq!(row(&v, "IPAddresses"), "10.77.5.80,fd77:5::80");
    assert_eq!(row(&v, "DNSServerIP"), "10.77.1.2");
    assert!(row(&v, "ResponseTime").parse::<u64>().unwrap() >= 1);
    let v = values(&runs[1]);
    assert_eq!(v[&name("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&name("SuccessCount")], "0");
    assert_eq!(row(&v, "Status"), "Error_HostNameNotResolved");
    assert_eq!(row(&v, "AnswerType"), "None");
}

#[test]
fn tr143_download_and_upload_through_the_cwmp_flow() {
    use support::servers::{put_log, HttpServer};
    let Some((a, b)) = pair() else { return };
    let dir = support::tempdir::TempDir::new("diag-tr143");
    std::fs::write(dir.path().join("1m.bin"), vec![7u8; 1 << 20]).unwrap();
    let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    big.set_len(4 << 30).unwrap();
    let _get = HttpServer::start(&b, "10.77.1.2", dir.path());
    let log = dir.path().join("put.log");
    let _put = HttpServer::put(&b, "10.77.1.2", &log);
    // The servers take a moment to listen.
    let up = |port: u16| {
        poll(WAIT, || {
            b.run(move || std::net::TcpStream::connect(("10.77.1.2", port)).ok())
                .map(drop)
        })
        .expect("the server listens")
    };
    up(8080);
    up(8081);
    let (acs, cpe) = cpe_in(&a, "diag-tr143");
    let a0 = interface(&cpe, &a, "a0");
    let d = "Device.IP.Diagnostics.DownloadDiagnostics.";
    let p = "Device.IP.Diagnostics.UploadDiagnostics.";
    let dn = |f: &str| format!("{d}{f}");
    let pn = |f: &str| format!("{p}{f}");
    // A time-based download of 3 s on two connections, a result per second; then an upload
    // of a file length on two connections.
    acs.push_script([spv(&[
        (&dn("DownloadURL"), s("http://10.77.1.2:8080/big.bin")),
        (&dn("Interface"), s(&a0)),
        (&dn("NumberOfConnections"), u("2")),
        (&dn("TimeBasedTestDuration"), u("3")),
        (&dn("TimeBasedTestMeasurementInterval"), u("1")),
        (
            &dn("EnablePerConnectionResults"),
            ("true", BaseType::Boolean),
        ),
        (&dn("ProtocolVersion"), s("IPv4")),
        (&dn("DiagnosticsState"), s("Requested")),
    ])]);
    acs.push_script([
        gpv_req(&[d]),
        spv(&[
            (&pn("UploadURL"), s("http://10.77.1.2:8081/up")),
            (&pn("TestFileLength"), ("1000000", BaseType::UnsignedLong)),
            (&pn("NumberOfConnections"), u("2")),
            (&pn("DiagnosticsState"), s("Requested")),
        ]),
    ]);
    acs.push_script([gpv_req(&[p])]);
    let daemon = cpe.spawn_run_in(a.name());
    let runs = completed_n(&acs, 2, || daemon.log());
    let v = values(&runs[0]);
    let num = |k: &str| -> u64 { v[k].parse().unwrap_or_else(|_| panic!("{k}: {v:#?}")) };
    assert_eq!(v[&dn("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&dn("IPAddressUsed")], "10.77.1.1");
    assert_eq!(v[&dn("PerConnectionResultNumberOfEntries")], "2");
    assert_eq!(v[&dn("IncrementalResultNumberOfEntries")], "3");
    let test = num(&dn("TestBytesReceived"));
    assert!(test > 0);
    assert!(num(&dn("TotalBytesReceived")) >= test, "{v:#?}");
    let per: u64 = (1..=2)
        .map(|i| num(&format!("{d}PerConnectionResult.{i}.TestBytesReceived")))
        .sum();
    assert_eq!(per, test);
    let inc: u64 = (1..=3)
        .map(|i| num(&format!("{d}IncrementalResult.{i}.TestBytesReceived")))
        .sum();
    assert_eq!(inc, test, "the increments add up: {v:#?}");
    // Times in order, with microseconds.
    let t = |f: &str| v[&dn(f)].clone();
    assert!(
        t("ROMTime") <= t("BOMTime") && t("BOMTime") < t("EOMTime"),
        "{v:#?}"
    );
    assert!(t("BOMTime").contains('.') && t("BOMTime").ends_with('Z'));
    assert!(num(&dn("PeriodOfFullLoading")) > 2_000_000, "{v:#?}");
    let v = values(&runs[1]);
    assert_eq!(v[&pn("DiagnosticsState")], "Complete", "{v:#?}");
    let sent: u64 = v[&pn("TestBytesSent")].parse().unwrap();
    assert!(sent > 2_000_000 && sent < 2_000_000 + 1024, "{v:#?}");
    assert!(v[&pn("TotalBytesSent")].parse::<u64>().unwrap() >= sent);
    let got = put_log(&log);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|(path, _, n)| path == "/up" && *n == 1_000_000));
}

#[test]
fn server_selection_picks_the_host_that_answers() {
    let Some((a, _b)) = pair() else { return };
    let (acs, cpe) = cpe_in(&a, "diag-select");
    let p = "Device.IP.Diagnostics.ServerSelectionDiagnostics.";
    let name = |f: &str| format!("{p}{f}");
    // Nobody has 10.77.1.99; b answers; a name that does not resolve is skipped.
    acs.push_script([spv(&[
        (&name("HostList"), s("10.77.1.99,10.77.1.2,nothing.invalid")),
        (&name("NumberOfRepetitions"), u("2")),
        (&name("Timeout"), u("500")),
        (&name("DiagnosticsState"), s("Requested")),
    ])]);
    acs.push_script([gpv_req(&[p])]);
    let daemon = cpe.spawn_run_in(a.name());
    let v = values(&completed(&acs, || daemon.log()));
    assert_eq!(v[&name("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&name("FastestHost")], "10.77.1.2");
    assert_eq!(v[&name("IPAddressUsed")], "10.77.1.1");
    let t = |f: &str| v[&name(f)].parse::<u64>().unwrap();
    assert!(
        0 < t("MinimumResponseTime")
            && t("MinimumResponseTime") <= t("AverageResponseTime")
            && t("AverageResponseTime") <= t("MaximumResponseTime"),
        "{v:#?}"
    );
}

#[test]
fn tr098_diagnostics_through_the_cwmp_flow() {
    let Some((a, _b)) = pair() else { return };
    let acs = a.run(|| Acs::start(AcsOptions::default()).expect("start ACS"));
    let cpe = Cpe::with_config("diag-tr098", &acs.url(), None, 3600, |dir| {
        format!(
            "\n[datamodel]\nplatform = \"linux\"\ndir = {:?}\npoll_interval = 3600\n",
            dir.join("datamodel.d").display().to_string()
        )
    });
    // The TR-098 tree: `data_model` belongs to the config's one [device] table.
    let text = std::fs::read_to_string(&cpe.cfg).unwrap();
    std::fs::write(
        &cpe.cfg,
        text.replacen("[device]\n", "[device]\ndata_model = \"tr098\"\n", 1),
    )
    .unwrap();
    let p = "InternetGatewayDevice.IPPingDiagnostics.";
    let name = |f: &str| format!("{p}{f}");
    acs.push_script([
        // TR-098's IPPing has no Canceled: 9007.
        spv(&[(&name("DiagnosticsState"), s("Canceled"))]),
        spv(&[
            (&name("Host"), s("10.77.1.2")),
            (&name("NumberOfRepetitions"), u("2")),
            (&name("DiagnosticsState"), s("Requested")),
        ]),
    ]);
    acs.push_script([gpv_req(&[p])]);
    let daemon = cpe.spawn_run_in(a.name());
    let done = completed(&acs, || daemon.log());
    let first = &acs.completed()[0];
    assert_eq!(spv_result(first, 0).unwrap_err().0, 9003);
    assert_eq!(spv_result(first, 1), Ok(0));
    let v = values(&done);
    assert_eq!(v[&name("DiagnosticsState")], "Complete", "{v:#?}");
    assert_eq!(v[&name("SuccessCount")], "2");
    assert_eq!(v[&name("FailureCount")], "0");
    assert!(v[&name("AverageResponseTime")].parse::<u64>().unwrap() >= 1);
}
