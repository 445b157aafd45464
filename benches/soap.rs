//! Benchmark of the SOAP codec (TR-069 Annex A) on the message that hurts on a router: a
//! 2,000-parameter GetParameterValuesResponse with realistic TR-181 names and mixed types.
//!
//! `cargo bench --bench soap` (release profile; harness = false). Each operation is timed over
//! enough iterations to last about one second; the table gives the message size, the
//! iterations, the mean time per operation and the throughput in MB/s (10^6 bytes of envelope per
//! second).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cwmpd::cwmp::value::BaseType;
use cwmpd::cwmp::value::ParameterValue;
use cwmpd::cwmp::version::CwmpNs;
use cwmpd::soap::acs::{self, CpeMessage};
use cwmpd::soap::*;

const PARAMETERS: usize = 2_000;

fn main() {
    let list = parameters(PARAMETERS);
    let names: Vec<String> = list.iter().map(|p| p.name.clone()).collect();
    let response = CpeResponse::GetParameterValues { list: list.into() };
    let limits = Limits::default();

    let gpv_response = emit_response(CwmpNs::V1_2, Some("bench-1"), &response);
    let request = AcsRequest::GetParameterValues { names };
    let header = Header {
        id: Some("bench-2".into()),
        ..Header::default()
    };
    let gpv_request = acs::emit_acs_request(CwmpNs::V1_2, &header, &request);

    // The codecs must agree before they are timed.
    match acs::parse_cpe(&gpv_response, &limits).map(|e| e.body) {
        Ok(CpeMessage::Response(r)) if r == response => {}
        other => panic!("our parse of our GPV response differs: {other:?}"),
    }
    assert!(
        cwmp::parse_bytes(&gpv_response).is_ok(),
        "cwmp cannot parse it"
    );
    match parse_acs(&gpv_request, &limits).map(|e| e.body) {
        Ok(AcsMessage::Request(r)) if r == request => {}
        other => panic!("our parse of the GPV request differs: {other:?}"),
    }

    println!(
        "SOAP codec, {PARAMETERS} parameters (GetParameterValues), {} build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<44} {:>10} {:>8} {:>12} {:>9}",
        "operation", "bytes", "iters", "mean", "MB/s"
    );
    row(
        "emit GPV response (soap::emit_response)",
        gpv_response.len(),
        || {
            black_box(emit_response(
                CwmpNs::V1_2,
                Some("bench-1"),
                black_box(&response),
            ));
        },
    );
    row(
        "parse GPV response (soap::acs::parse_cpe)",
        gpv_response.len(),
        || {
            let _ = black_box(acs::parse_cpe(black_box(&gpv_response), &limits));
        },
    );
    row(
        "parse GPV response (cwmp 0.2 parse_bytes)",
        gpv_response.len(),
        || {
            let _ = black_box(cwmp::parse_bytes(black_box(&gpv_response)));
        },
    );
    row(
        "parse GPV request (soap::parse_acs)",
        gpv_request.len(),
        || {
            let _ = black_box(parse_acs(black_box(&gpv_request), &limits));
        },
    );
}

/// Times `op` for about a second after a short calibration and prints one row.
fn row(label: &str, bytes: usize, mut op: impl FnMut()) {
    let calibrate = Instant::now();
    let mut n = 0u64;
    while calibrate.elapsed() < Duration::from_millis(100) || n < 3 {
        op();
        n += 1;
    }
    let per_op = calibrate.elapsed().as_secs_f64() / n as f64;
    let iters = ((1.0 / per_op).ceil() as u64).max(10);
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    let mean = start.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{label:<44} {bytes:>10} {iters:>8} {:>9.3} ms {:>9.1}",
        mean * 1e3,
        bytes as f64 / mean / 1e6
    );
}

/// `n` parameters of a TR-181 Device:2 tree with the types the data model gives them: a few
/// DeviceInfo scalars, then hosts, Wi-Fi associated devices, Ethernet statistics and DHCP
/// leases, in turn.
fn parameters(n: usize) -> Vec<ParameterValue> {
    let mut out = Vec::with_capacity(n);
    let fixed: [(&str, BaseType, &str); 8] = [
        (
            "Device.DeviceInfo.Manufacturer",
            BaseType::String,
            "OpenWrt",
        ),
        (
            "Device.DeviceInfo.ManufacturerOUI",
            BaseType::String,
            "001122",
        ),
        (
            "Device.DeviceInfo.ModelName",
            BaseType::String,
            "TL-WR1043ND v2",
        ),
        (
            "Device.DeviceInfo.SerialNumber",
            BaseType::String,
            "SN0000123456",
        ),
        (
            "Device.DeviceInfo.SoftwareVersion",
            BaseType::String,
            "23.05.5 r24106-10cc5fcd00",
        ),
        ("Device.DeviceInfo.UpTime", BaseType::UnsignedInt, "864231"),
        (
            "Device.Time.CurrentLocalTime",
            BaseType::DateTime,
            "2026-11-21T06:50:00+01:00",
        ),
        (
            "Device.ManagementServer.PeriodicInformEnable",
            BaseType::Boolean,
            "true",
        ),
    ];
    for (name, ty, value) in fixed {
        out.push(ParameterValue {
            name: name.into(),
            value: value.into(),
            ty,
        });
    }
    let mut i = 1usize;
    while out.len() < n {
        let group: [(String, BaseType, String); 10] = [
            (
                format!("Device.Hosts.Host.{i}.PhysAddress"),
                BaseType::String,
                format!(
                    "a4:2b:b0:{:02x}:{:02x}:{:02x}",
                    i % 256,
                    (i * 7) % 256,
                    (i * 13) % 256
                ),
            ),
            (
                format!("Device.Hosts.Host.{i}.IPAddress"),
                BaseType::String,
                format!("192.168.{}.{}", 1 + i / 250, 2 + i % 250),
            ),
            (
                format!("Device.Hosts.Host.{i}.HostName"),
                BaseType::String,
                format!("android-{:08x} & <guest>", i * 2_654_435_761 % 0xffff_ffff),
            ),
            (
                format!("Device.Hosts.Host.{i}.Active"),
                BaseType::Boolean,
                (i % 3 != 0).to_string(),
            ),
            (
                format!("Device.Hosts.Host.{i}.LeaseTimeRemaining"),
                BaseType::Int,
                if i % 5 == 0 {
                    "-1".into()
                } else {
                    (i * 37 % 86_400).to_string()
                },
            ),
            (
                format!(
                    "Device.WiFi.AccessPoint.{}.AssociatedDevice.{i}.SignalStrength",
                    1 + i % 2
                ),
                BaseType::Int,
                format!("-{}", 40 + i % 50),
            ),
            (
                format!(
                    "Device.WiFi.AccessPoint.{}.AssociatedDevice.{i}.LastDataDownlinkRate",
                    1 + i % 2
                ),
                BaseType::UnsignedInt,
                (6_500 + i * 130 % 860_000).to_string(),
            ),
            (
                format!(
                    "Device.Ethernet.Interface.{}.Stats.BytesReceived",
                    1 + i % 5
                ),
                BaseType::UnsignedLong,
                (i as u64 * 1_234_567_891).to_string(),
            ),
            (
                format!("Device.DHCPv4.Server.Pool.1.Client.{i}.IPv4Address.1.LeaseTimeRemaining"),
                BaseType::DateTime,
                format!("2026-11-21T{:02}:{:02}:00Z", i % 24, i % 60),
            ),
            (
                format!("Device.DHCPv4.Server.Pool.1.Client.{i}.Option.1.Value"),
                BaseType::HexBinary,
                format!("{:08x}", i * 48_271),
            ),
        ];
        for (name, ty, value) in group {
            if out.len() == n {
                break;
            }
            out.push(ParameterValue { name, value, ty });
        }
        i += 1;
    }
    out
}
