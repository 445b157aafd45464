//! One requested diagnostic run from its inputs to its results (OS: through the engines, and
//! the system resolver for host names): the inputs as the data model stores them
//! ([`super::spec`]'s names, defaults filled in), the results and the end state as TR-181
//! defines them. Runs in the agent's diagnostics job, never in its loop.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::spec::{self, Kind, Outcome};
use super::{datetime_us, dns, echo, http, lookup, ping, trace};

/// What the runner is given.
#[derive(Debug, Clone)]
pub struct Run {
    pub kind: Kind,
    /// Every input by name, as stored (defaults filled in).
    pub inputs: BTreeMap<String, String>,
    /// The netdev of the Interface input (`None`: the routing table decides).
    pub device: Option<String>,
    /// The name servers the device itself uses (NSLookup with no DNSServer).
    pub default_dns: Vec<IpAddr>,
}

impl Run {
    fn get(&self, f: &str) -> &str {
        self.inputs.get(f).map(String::as_str).unwrap_or_default()
    }

    fn num(&self, f: &str) -> u64 {
        self.get(f).parse().unwrap_or(0)
    }

    fn ms(&self, f: &str) -> Duration {
        Duration::from_millis(self.num(f))
    }

    fn u32(&self, f: &str) -> u32 {
        u32::try_from(self.num(f)).unwrap_or(u32::MAX)
    }

    fn dscp(&self) -> u8 {
        u8::try_from(self.num("DSCP")).unwrap_or(0).min(63)
    }
}

/// Runs the test; `cancel` stops it early (its outcome is then dropped by the caller).
pub fn run(r: &Run, cancel: &AtomicBool) -> Outcome {
    match r.kind {
        Kind::IpPing => ipping(r, cancel),
        Kind::TraceRoute => traceroute(r, cancel),
        Kind::UdpEcho => udp_echo(r, cancel),
        Kind::ServerSelection => server_selection(r, cancel),
        Kind::NsLookup => nslookup(r, cancel),
        Kind::Download => transfer(r, http::Direction::Download, cancel),
        Kind::Upload => transfer(r, http::Direction::Upload, cancel),
    }
}

/// The first address of `host` of the family `version` allows.
fn resolve(host: &str, version: &str) -> Option<IpAddr> {
    crate::sys::os::resolve(host, 0)
        .ok()?
        .into_iter()
        .map(|a| a.ip())
        .find(|ip| spec::family_allows(version, *ip))
}

/// Whether a socket error means there is no route to the target.
fn no_route(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
    )
}

fn ping_error_state(e: &ping::PingError) -> &'static str {
    match e {
        ping::PingError::Socket(e) if no_route(e) => "Error_NoRouteToHost",
        ping::PingError::Socket(_) => "Error_Internal",
        ping::PingError::Invalid(_) => "Error_Other",
    }
}

/// Milliseconds of a round trip, a partial one rounded up (TR-181: "less than 1 ms MUST be
/// rounded up to 1").
fn ms_up(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn put(o: &mut Outcome, k: &str, v: impl ToString) {
    o.values.insert(k.to_string(), v.to_string());
}

fn ipping(r: &Run, cancel: &AtomicBool) -> Outcome {
    let Some(target) = resolve(r.get("Host"), r.get("ProtocolVersion")) else {
        return Outcome::state("Error_CannotResolveHostName");
    };
    let p = ping::Ping {
        target,
        interface: r.device.clone(),
        count: r.u32("NumberOfRepetitions"),
        timeout: r.ms("Timeout"),
        payload: usize::try_from(r.num("DataBlockSize")).unwrap_or(usize::MAX),
        dscp: r.dscp(),
        ttl: None,
        interval: spec::PING_INTERVAL,
    };
    let got = match ping::run(&p, cancel) {
        Ok(o) => o,
        Err(e) => {
            log::info!("IPPing {target}: {e}");
            return Outcome::state(ping_error_state(&e));
        }
    };
    let mut o = Outcome::state("Complete");
    if let Some(ip) = got.source {
        put(&mut o, "IPAddressUsed", ip);
    }
    put(&mut o, "SuccessCount", got.successes());
    put(&mut o, "FailureCount", got.failures());
    let (min, avg, max) = got.stats().unwrap_or_default();
    for (name, d) in [("Minimum", min), ("Average", avg), ("Maximum", max)] {
        // Zero when nothing answered (TR-181), else whole milliseconds, rounded up.
        let ms = if got.successes() == 0 { 0 } else { ms_up(d) };
        put(&mut o, &format!("{name}ResponseTime"), ms);
        put(&mut o, &format!("{name}ResponseTimeDetailed"), us(d));
    }
    o
}

fn traceroute(r: &Run, cancel: &AtomicBool) -> Outcome {
    let Some(target) = resolve(r.get("Host"), r.get("ProtocolVersion")) else {
        return Outcome::state("Error_CannotResolveHostName");
    };
    let t = trace::Trace {
        target,
        interface: r.device.clone(),
        tries: r.u32("NumberOfTries"),
        timeout: r.ms("Timeout"),
        payload: usize::try_from(r.num("DataBlockSize")).unwrap_or(usize::MAX),
        dscp: r.dscp(),
        max_hops: u8::try_from(r.num("MaxHopCount")).unwrap_or(trace::MAX_HOPS),
    };
    let route = match trace::run(&t, cancel) {
        Ok(route) => route,
        Err(e) => {
            log::info!("TraceRoute {target}: {e}");
            return Outcome::state(ping_error_state(&e));
        }
    };
    let state = if route.reached {
        "Complete"
    } else if route.hops.last().is_some_and(|h| h.unreachable) {
        "Error_NoRouteToHost"
    } else {
        "Error_MaxHopCountExceeded"
    };
    let mut o = Outcome::state(state);
    if let Some(src) = source_for(target, r.device.as_deref()) {
        put(&mut o, "IPAddressUsed", src);
    }
    let answered = |h: &trace::Hop| h.rtts.iter().flatten().copied().collect::<Vec<_>>();
    let response = route
        .hops
        .last()
        .filter(|_| route.reached)
        .map(answered)
        .filter(|a| !a.is_empty())
        .map_or(0, |a| ms_up(a.iter().sum::<Duration>() / a.len() as u32));
    put(&mut o, "ResponseTime", response);
    let rows = route
        .hops
        .iter()
        .map(|h| {
            let host = h.host.map(|ip| ip.to_string()).unwrap_or_default();
            let times: Vec<String> = h
                .rtts
                .iter()
                .map(|t| t.map_or(0, ms_up).to_string())
                .collect();
            BTreeMap::from([
                ("Host".to_string(), host.clone()),
                ("HostAddress".to_string(), host),
                ("ErrorCode".to_string(), h.error.to_string()),
                ("RTTimes".to_string(), times.join(",")),
            ])
        })
        .collect();
    o.tables.insert("RouteHops".into(), rows);
    o
}

/// The source address the kernel picks towards `to` (out of `device` when given).
fn source_for(to: IpAddr, device: Option<&str>) -> Option<IpAddr> {
    let peer = SocketAddr::new(to, 9);
    let sock = super::udp_socket_for(peer).ok()?;
    super::bind_device(&sock, device).ok()?;
    sock.connect(peer).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

fn udp_echo(r: &Run, cancel: &AtomicBool) -> Outcome {
    let Some(target) = resolve(r.get("Host"), r.get("ProtocolVersion")) else {
        return Outcome::state("Error_CannotResolveHostName");
    };
    let port = u16::try_from(r.num("Port")).unwrap_or(7);
    let c = echo::Client {
        server: SocketAddr::new(target, port),
        interface: r.device.clone(),
        count: r.u32("NumberOfRepetitions"),
        timeout: r.ms("Timeout"),
        size: usize::try_from(r.num("DataBlockSize")).unwrap_or(usize::MAX),
        dscp: r.dscp(),
        interval: r.ms("InterTransmissionTime"),
    };
    let packets = match echo::measure(&c, cancel) {
        Ok(p) => p,
        Err(e) => {
            log::info!("UDPEchoDiagnostics {target}: {e}");
            return Outcome::state(if no_route(&e) {
                "Error_Other"
            } else {
                "Error_Internal"
            });
        }
    };
    let mut o = Outcome::state("Complete");
    if let Some(src) = source_for(target, r.device.as_deref()) {
        put(&mut o, "IPAddressUsed", src);
    }
    let rtts: Vec<Duration> = packets.iter().filter_map(|p| p.rtt).collect();
    put(&mut o, "SuccessCount", rtts.len());
    put(&mut o, "FailureCount", packets.len() - rtts.len());
    let min = rtts.iter().min().copied().unwrap_or_default();
    let max = rtts.iter().max().copied().unwrap_or_default();
    let avg = if rtts.is_empty() {
        Duration::ZERO
    } else {
        rtts.iter().sum::<Duration>() / rtts.len() as u32
    };
    put(&mut o, "MinimumResponseTime", us(min));
    put(&mut o, "AverageResponseTime", us(avg));
    put(&mut o, "MaximumResponseTime", us(max));
    if r.get("EnableIndividualPacketResults") == "true" {
        let rows = packets
            .iter()
            .take(spec::MAX_PACKET_RESULTS as usize)
            .map(|p| {
                let plus = p.reply.unwrap_or_default();
                let mut row = BTreeMap::new();
                let mut set = |k: &str, v: String| {
                    row.insert(k.to_string(), v);
                };
                set("PacketSuccess", p.rtt.is_some().to_string());
                set("PacketSendTime", datetime_us(p.sent_us));
                if let Some(rtt) = p.rtt {
                    set("PacketReceiveTime", datetime_us(p.sent_us + us(rtt)));
                }
                set("TestGenSN", p.gen_sn.to_string());
                set("TestRespSN", plus.resp_sn.to_string());
                set("TestRespRcvTimeStamp", plus.recv_us.to_string());
                set("TestRespReplyTimeStamp", plus.reply_us.to_string());
                set("TestRespReplyFailureCount", plus.failures.to_string());
                row
            })
            .collect();
        o.tables.insert("IndividualPacketResult".into(), rows);
    }
    o
}

/// The round trips of one host of ServerSelectionDiagnostics: `None` when its name does not
/// resolve; the source address used and every answered request's time.
fn probe_host(r: &Run, item: &str, cancel: &AtomicBool) -> Option<(Option<IpAddr>, Vec<Duration>)> {
    let version = r.get("ProtocolVersion");
    let count = r.u32("NumberOfRepetitions");
    let timeout = r.ms("Timeout");
    if r.get("Protocol") == "UDP Echo" {
        // `host` or `host:port` (`[v6]:port`); the TR-143 echo port by default.
        let (host, port) = match item.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                (h, p.parse().ok()?)
            }
            _ => (item, 7),
        };
        let target = resolve(host, version)?;
        let c = echo::Client {
            server: SocketAddr::new(target, port),
            interface: r.device.clone(),
            count,
            timeout,
            size: echo::PLUS_HEADER,
            dscp: 0,
            interval: spec::SELECTION_INTERVAL,
        };
        let rtts = echo::measure(&c, cancel)
            .map(|ps| ps.iter().filter_map(|p| p.rtt).collect())
            .unwrap_or_default();
        return Some((source_for(target, r.device.as_deref()), rtts));
    }
    let target = resolve(item, version)?;
    let p = ping::Ping {
        target,
        interface: r.device.clone(),
        count,
        timeout,
        payload: 56,
        dscp: 0,
        ttl: None,
        interval: spec::SELECTION_INTERVAL,
    };
    Some(match ping::run(&p, cancel) {
        Ok(o) => (o.source, o.rtts),
        Err(e) => {
            log::info!("ServerSelectionDiagnostics {item}: {e}");
            (None, Vec::new())
        }
    })
}

fn server_selection(r: &Run, cancel: &AtomicBool) -> Outcome {
    let hosts = spec::list(r.get("HostList"));
    let mut resolved = 0;
    // (average, min, max, host, source) of the fastest so far.
    let mut best: Option<(Duration, Duration, Duration, String, Option<IpAddr>)> = None;
    for item in hosts.iter().take(spec::MAX_HOSTS) {
        if cancel.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        let Some((source, rtts)) = probe_host(r, item, cancel) else {
            continue;
        };
        resolved += 1;
        let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) else {
            continue;
        };
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        if best.as_ref().is_none_or(|b| avg < b.0) {
            best = Some((avg, *min, *max, item.to_string(), source));
        }
    }
    if resolved == 0 {
        return Outcome::state("Error_CannotResolveHostName");
    }
    let mut o = Outcome::state("Complete");
    let (avg, min, max, host, source) = best.unwrap_or_default();
    put(&mut o, "FastestHost", host);
    put(&mut o, "MinimumResponseTime", us(min));
    put(&mut o, "AverageResponseTime", us(avg));
    put(&mut o, "MaximumResponseTime", us(max));
    if let Some(ip) = source {
        put(&mut o, "IPAddressUsed", ip);
    }
    o
}

fn nslookup(r: &Run, cancel: &AtomicBool) -> Outcome {
    let server = match r.get("DNSServer") {
        "" => r.default_dns.first().copied(),
        s => resolve(s, "Any"),
    };
    let Some(server) = server else {
        return Outcome::state("Error_DNSServerNotResolved");
    };
    let name = r.get("HostName");
    let timeout = r.ms("Timeout");
    let mut rows = Vec::new();
    let mut successes = 0;
    for _ in 0..r.num("NumberOfRepetitions").min(spec::MAX_LOOKUPS.into()) {
        if cancel.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
        let mut row = BTreeMap::new();
        row.insert("DNSServerIP".to_string(), server.to_string());
        let ask = |qtype| {
            lookup::lookup(
                SocketAddr::new(server, 53),
                name,
                qtype,
                timeout,
                r.device.as_deref(),
                cancel,
            )
        };
        let (status, answer) = match ask(dns::TYPE_A) {
            Err(lookup::LookupError::Name(e)) => {
                log::info!("NSLookupDiagnostics: {e}");
                return Outcome::state("Error_Other");
            }
            Err(e) => {
                log::info!("NSLookupDiagnostics {server}: {e}");
                return Outcome::state("Error_Internal");
            }
            Ok(lookup::Lookup::Timeout) => ("Error_Timeout", None),
            Ok(lookup::Lookup::Refused) => ("Error_DNSServerNotAvailable", None),
            Ok(lookup::Lookup::Answered(mut resp, took)) => {
                // The AAAA records too, when the server answers them in time.
                if resp.rcode == 0 {
                    if let Ok(lookup::Lookup::Answered(six, _)) = ask(dns::TYPE_AAAA) {
                        if six.rcode == 0 {
                            resp.addresses.extend(six.addresses);
                        }
                    }
                }
                let status = match resp.rcode {
                    0 if !resp.addresses.is_empty() => "Success",
                    0 | 3 => "Error_HostNameNotResolved",
                    _ => "Error_Other",
                };
                (status, Some((resp, took)))
            }
        };
        row.insert("Status".into(), status.into());
        let answer_type = match &answer {
            Some((resp, _)) if status == "Success" && resp.authoritative => "Authoritative",
            Some(_) if status == "Success" => "NonAuthoritative",
            _ => "None",
        };
        row.insert("AnswerType".into(), answer_type.into());
        if let Some((resp, took)) = answer {
            row.insert("ResponseTime".into(), ms_up(took).to_string());
            if status == "Success" {
                row.insert("HostNameReturned".into(), resp.canonical.clone());
                let ips: Vec<String> = resp.addresses.iter().map(IpAddr::to_string).collect();
                row.insert("IPAddresses".into(), ips.join(","));
            }
        }
        if status == "Success" {
            successes += 1;
        }
        rows.push(row);
    }
    let mut o = Outcome::state("Complete");
    put(&mut o, "SuccessCount", successes);
    o.tables.insert("Result".into(), rows);
    o
}

/// TR-143 DownloadDiagnostics or UploadDiagnostics.
fn transfer(r: &Run, dir: http::Direction, cancel: &AtomicBool) -> Outcome {
    let secs = |f: &str| Duration::from_secs(r.num(f));
    let duration = Some(secs("TimeBasedTestDuration")).filter(|d| !d.is_zero());
    let ipv6 = match r.get("ProtocolVersion") {
        "IPv4" => Some(false),
        "IPv6" => Some(true),
        _ => None,
    };
    let (interval, offset) = (
        Some(secs("TimeBasedTestMeasurementInterval")),
        secs("TimeBasedTestMeasurementOffset"),
    );
    let connections = r.u32("NumberOfConnections").max(1);
    // The engine's own limit comes before the agent's stop (worst case + grace): a server that
    // stalls ends the test in Error_Timeout, not Error_Internal.
    let limit = r.kind.worst_case(&|f| r.get(f).to_string());
    let got = match dir {
        http::Direction::Download => http::download(
            &http::Download {
                url: r.get("DownloadURL").to_string(),
                ipv6,
                interface: r.device.clone(),
                dscp: r.dscp(),
                connections,
                duration,
                measurement_interval: interval,
                measurement_offset: offset,
                limit,
            },
            cancel,
        ),
        http::Direction::Upload => http::upload(
            &http::Upload {
                url: r.get("UploadURL").to_string(),
                ipv6,
                interface: r.device.clone(),
                dscp: r.dscp(),
                connections,
                file_length: r.num("TestFileLength"),
                duration,
                measurement_interval: interval,
                measurement_offset: offset,
                limit,
            },
            cancel,
        ),
    };
    let t = match got {
        Ok(t) => t,
        Err(e) => {
            log::info!("{dir:?}Diagnostics: {e}");
            return Outcome::state(e.state(dir));
        }
    };
    // TestBytesReceived of a download, TestBytesSent of an upload.
    let test = match dir {
        http::Direction::Download => "TestBytesReceived",
        http::Direction::Upload => "TestBytesSent",
    };
    let mut o = Outcome::state("Complete");
    if let Some(ip) = t.ip_address_used {
        put(&mut o, "IPAddressUsed", ip);
    }
    put(&mut o, "ROMTime", datetime_us(t.rom_us()));
    put(&mut o, "BOMTime", datetime_us(t.bom_us()));
    put(&mut o, "EOMTime", datetime_us(t.eom_us()));
    put(
        &mut o,
        "TCPOpenRequestTime",
        datetime_us(t.tcp_open_request_us()),
    );
    put(
        &mut o,
        "TCPOpenResponseTime",
        datetime_us(t.tcp_open_response_us()),
    );
    put(&mut o, test, t.test_bytes());
    // Interface counters that cannot be determined read 0 (TR-181).
    put(
        &mut o,
        "TotalBytesReceived",
        t.total_bytes_received.unwrap_or(0),
    );
    put(&mut o, "TotalBytesSent", t.total_bytes_sent.unwrap_or(0));
    let full = t.full_loading.clone().unwrap_or_default();
    put(&mut o, &format!("{test}UnderFullLoading"), full.test_bytes);
    put(
        &mut o,
        "TotalBytesReceivedUnderFullLoading",
        full.total_bytes_received.unwrap_or(0),
    );
    put(
        &mut o,
        "TotalBytesSentUnderFullLoading",
        full.total_bytes_sent.unwrap_or(0),
    );
    put(&mut o, "PeriodOfFullLoading", full.period_us);
    if r.get("EnablePerConnectionResults") == "true" {
        let rows = t
            .connections
            .iter()
            .map(|c| {
                BTreeMap::from([
                    ("ROMTime".to_string(), datetime_us(c.rom_us)),
                    ("BOMTime".to_string(), datetime_us(c.bom_us)),
                    ("EOMTime".to_string(), datetime_us(c.eom_us)),
                    (test.to_string(), c.test_bytes.to_string()),
                    (
                        "TotalBytesReceived".to_string(),
                        c.total_bytes_received.unwrap_or(0).to_string(),
                    ),
                    (
                        "TotalBytesSent".to_string(),
                        c.total_bytes_sent.unwrap_or(0).to_string(),
                    ),
                    (
                        "TCPOpenRequestTime".to_string(),
                        datetime_us(c.tcp_open_request_us),
                    ),
                    (
                        "TCPOpenResponseTime".to_string(),
                        datetime_us(c.tcp_open_response_us),
                    ),
                ])
            })
            .collect();
        o.tables.insert("PerConnectionResult".into(), rows);
    }
    let rows = t
        .incremental
        .iter()
        .map(|i| {
            BTreeMap::from([
                (test.to_string(), i.test_bytes.to_string()),
                (
                    "TotalBytesReceived".to_string(),
                    i.total_bytes_received.unwrap_or(0).to_string(),
                ),
                (
                    "TotalBytesSent".to_string(),
                    i.total_bytes_sent.unwrap_or(0).to_string(),
                ),
                ("StartTime".to_string(), datetime_us(i.start_us)),
                ("EndTime".to_string(), datetime_us(i.end_us)),
            ])
        })
        .collect();
    o.tables.insert("IncrementalResult".into(), rows);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_the_model_writes_them() {
        assert_eq!(
            datetime_us(1_000_000_000_123_456),
            "2001-09-09T01:46:40.123456Z"
        );
        assert_eq!(ms_up(Duration::from_micros(1)), 1);
        assert_eq!(ms_up(Duration::from_micros(1000)), 1);
        assert_eq!(ms_up(Duration::from_micros(1001)), 2);
        assert_eq!(resolve("10.0.0.1", "IPv6"), None);
        assert_eq!(resolve("[::1]", "IPv6"), Some("::1".parse().unwrap()));
    }
}
