//! What each diagnostic is, as the data models define it (TR-181 `IP.Diagnostics`,
//! `DNS.Diagnostics`; TR-098's diagnostics objects): its writable inputs and their defaults,
//! its results and result tables, which values this CPE can honour, and the states it ends in.
//! Pure: the `diag` backend of the data model stores the values by these names, the runner
//! ([`super::run`]) reads the inputs and writes the results by them.
//!
//! Field names are TR-181's; a TR-098 binding names the same field under its own parameter
//! (`HopHost` is `RouteHops.{i}.Host`). The DiagnosticsState values are TR-181's too; a TR-098
//! engine reads them through [`state_for_tr098`] (its objects have fewer error states, and
//! TR-098 downloads end in `Completed`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::{echo, http, ping, trace};

/// The tests an ACS can request (and the UDP echo server's configuration, which is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    IpPing,
    TraceRoute,
    Download,
    Upload,
    UdpEcho,
    ServerSelection,
    NsLookup,
}

/// The most repetitions of a ping, UDP echo or server selection test: with the most Timeout,
/// a bound on how long a test can hold the one diagnostics job.
pub const MAX_REPETITIONS: u32 = 1000;
/// The most NSLookup repetitions (each one a `Result` instance kept in RAM).
pub const MAX_LOOKUPS: u32 = 100;
/// The longest Timeout of one request, in milliseconds.
pub const MAX_TIMEOUT_MS: u32 = 60_000;
/// The most hosts of a ServerSelectionDiagnostics HostList.
pub const MAX_HOSTS: usize = 32;
/// The most UDP echo packets whose individual results are kept (TR-181
/// UDPEchoDiagnosticsMaxResults).
pub const MAX_PACKET_RESULTS: u32 = 1000;

/// A field every test has: its state.
pub const STATE: &str = "DiagnosticsState";
/// The longest a test may run: one whose inputs could make it run longer is refused when
/// requested (9007), and one still running after its worst case is stopped (`Error_Internal`).
pub const MAX_RUN: Duration = Duration::from_secs(3600);
/// Time from one ICMP echo request of IPPing to the next (as `ping` does).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Time from one request of ServerSelectionDiagnostics to the next.
pub const SELECTION_INTERVAL: Duration = Duration::from_millis(200);
/// What a host name's resolution may take (the system resolver's own timeouts).
pub const RESOLVE_TIME: Duration = Duration::from_secs(15);

/// What a run produced: the end state (TR-181's words), results, result tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub state: String,
    pub values: BTreeMap<String, String>,
    /// Rows of each result table, in order (row `1` first).
    pub tables: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl Outcome {
    /// An outcome with only a state (an error: results are indeterminate).
    pub fn state(state: &str) -> Outcome {
        Outcome {
            state: state.to_string(),
            ..Outcome::default()
        }
    }
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::IpPing,
        Kind::TraceRoute,
        Kind::Download,
        Kind::Upload,
        Kind::UdpEcho,
        Kind::ServerSelection,
        Kind::NsLookup,
    ];

    /// The name in binding keys (`diag:ipping.Host`) and log lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::IpPing => "ipping",
            Kind::TraceRoute => "traceroute",
            Kind::Download => "download",
            Kind::Upload => "upload",
            Kind::UdpEcho => "udpecho",
            Kind::ServerSelection => "serverselection",
            Kind::NsLookup => "nslookup",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The writable inputs with the value each reads before the ACS sets it (the model's
    /// default where it gives one, else what the CPE uses).
    pub fn inputs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::IpPing => &[
                ("Interface", ""),
                ("ProtocolVersion", "Any"),
                ("Host", ""),
                ("NumberOfRepetitions", "3"),
                ("Timeout", "1000"),
                ("DataBlockSize", "64"),
                ("DSCP", "0"),
            ],
            Kind::TraceRoute => &[
                ("Interface", ""),
                ("ProtocolVersion", "Any"),
                ("Host", ""),
                ("NumberOfTries", "3"),
                ("Timeout", "5000"),
                ("DataBlockSize", "38"),
                ("DSCP", "0"),
                ("MaxHopCount", "30"),
            ],
            Kind::Download => &[
                ("Interface", ""),
                ("DownloadURL", ""),
                ("DSCP", "0"),
                ("EthernetPriority", "0"),
                ("TimeBasedTestDuration", "0"),
                ("TimeBasedTestMeasurementInterval", "0"),
                ("TimeBasedTestMeasurementOffset", "0"),
                ("ProtocolVersion", "Any"),
                ("NumberOfConnections", "1"),
                ("EnablePerConnectionResults", "false"),
            ],
            Kind::Upload => &[
                ("Interface", ""),
                ("UploadURL", ""),
                ("DSCP", "0"),
                ("EthernetPriority", "0"),
                ("TestFileLength", "0"),
                ("TimeBasedTestDuration", "0"),
                ("TimeBasedTestMeasurementInterval", "0"),
                ("TimeBasedTestMeasurementOffset", "0"),
                ("ProtocolVersion", "Any"),
                ("NumberOfConnections", "1"),
                ("EnablePerConnectionResults", "false"),
            ],
            Kind::UdpEcho => &[
                ("Interface", ""),
                ("Host", ""),
                ("Port", "7"),
                ("NumberOfRepetitions", "1"),
                ("Timeout", "5000"),
                ("DataBlockSize", "24"),
                ("DSCP", "0"),
                ("InterTransmissionTime", "1000"),
                ("ProtocolVersion", "Any"),
                ("EnableIndividualPacketResults", "false"),
            ],
            Kind::ServerSelection => &[
                ("Interface", ""),
                ("ProtocolVersion", "Any"),
                ("Protocol", "ICMP"),
                ("HostList", ""),
                ("NumberOfRepetitions", "3"),
                ("Timeout", "1000"),
            ],
            Kind::NsLookup => &[
                ("Interface", ""),
                ("HostName", ""),
                ("DNSServer", ""),
                ("Timeout", "5000"),
                ("NumberOfRepetitions", "1"),
            ],
        }
    }

    /// The read-only results (besides [`STATE`]).
    pub fn results(self) -> &'static [&'static str] {
        const TRANSFER: &[&str] = &[
            "IPAddressUsed",
            "ROMTime",
            "BOMTime",
            "EOMTime",
            "TestBytesReceived",
            "TestBytesSent",
            "TotalBytesReceived",
            "TotalBytesSent",
            "TestBytesReceivedUnderFullLoading",
            "TestBytesSentUnderFullLoading",
            "TotalBytesReceivedUnderFullLoading",
            "TotalBytesSentUnderFullLoading",
            "PeriodOfFullLoading",
            "TCPOpenRequestTime",
            "TCPOpenResponseTime",
        ];
        match self {
            Kind::IpPing => &[
                "IPAddressUsed",
                "SuccessCount",
                "FailureCount",
                "AverageResponseTime",
                "MinimumResponseTime",
                "MaximumResponseTime",
                "AverageResponseTimeDetailed",
                "MinimumResponseTimeDetailed",
                "MaximumResponseTimeDetailed",
            ],
            Kind::TraceRoute => &["IPAddressUsed", "ResponseTime"],
            Kind::Download | Kind::Upload => TRANSFER,
            Kind::UdpEcho => &[
                "IPAddressUsed",
                "SuccessCount",
                "FailureCount",
                "AverageResponseTime",
                "MinimumResponseTime",
                "MaximumResponseTime",
            ],
            Kind::ServerSelection => &[
                "FastestHost",
                "MinimumResponseTime",
                "AverageResponseTime",
                "MaximumResponseTime",
                "IPAddressUsed",
            ],
            Kind::NsLookup => &["SuccessCount"],
        }
    }

    /// The result tables and their fields.
    pub fn tables(self) -> &'static [(&'static str, &'static [&'static str])] {
        const CONNECTION: &[&str] = &[
            "ROMTime",
            "BOMTime",
            "EOMTime",
            "TestBytesReceived",
            "TestBytesSent",
            "TotalBytesReceived",
            "TotalBytesSent",
            "TCPOpenRequestTime",
            "TCPOpenResponseTime",
        ];
        const INCREMENT: &[&str] = &[
            "TestBytesReceived",
            "TestBytesSent",
            "TotalBytesReceived",
            "TotalBytesSent",
            "StartTime",
            "EndTime",
        ];
        match self {
            Kind::TraceRoute => &[(
                "RouteHops",
                &["Host", "HostAddress", "ErrorCode", "RTTimes"],
            )],
            Kind::Download | Kind::Upload => &[
                ("PerConnectionResult", CONNECTION),
                ("IncrementalResult", INCREMENT),
            ],
            Kind::UdpEcho => &[(
                "IndividualPacketResult",
                &[
                    "PacketSuccess",
                    "PacketSendTime",
                    "PacketReceiveTime",
                    "TestGenSN",
                    "TestRespSN",
                    "TestRespRcvTimeStamp",
                    "TestRespReplyTimeStamp",
                    "TestRespReplyFailureCount",
                ],
            )],
            Kind::NsLookup => &[(
                "Result",
                &[
                    "Status",
                    "AnswerType",
                    "HostNameReturned",
                    "IPAddresses",
                    "DNSServerIP",
                    "ResponseTime",
                ],
            )],
            Kind::IpPing | Kind::ServerSelection => &[],
        }
    }

    /// The default of an input, `None` for a name that is not one.
    pub fn default_of(self, field: &str) -> Option<&'static str> {
        self.inputs()
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, d)| *d)
    }

    /// Whether `value` (already of the parameter's type and range) can be honoured for the
    /// input `field`: an error names why not (SetParameterValues answers 9007).
    pub fn check(self, field: &str, value: &str) -> Result<(), String> {
        let n = || value.parse::<u64>().unwrap_or(u64::MAX);
        let at_most = |max: u64, what: &str| {
            if n() > max {
                Err(format!("{field} {value}: at most {max}{what}"))
            } else {
                Ok(())
            }
        };
        match (self, field) {
            (Kind::NsLookup, "NumberOfRepetitions") => at_most(MAX_LOOKUPS.into(), ""),
            (_, "NumberOfRepetitions") => at_most(MAX_REPETITIONS.into(), ""),
            (_, "Timeout") if n() == 0 => Err(format!("{field} 0: at least 1 ms")),
            (_, "Timeout") => at_most(MAX_TIMEOUT_MS.into(), " ms"),
            (Kind::IpPing, "DataBlockSize") => at_most(ping::MAX_PAYLOAD as u64, " bytes"),
            (Kind::TraceRoute, "DataBlockSize") => at_most(ping::MAX_PAYLOAD as u64, " bytes"),
            (Kind::TraceRoute, "MaxHopCount") => at_most(trace::MAX_HOPS.into(), ""),
            (Kind::TraceRoute, "NumberOfTries") => at_most(trace::MAX_TRIES.into(), ""),
            (Kind::UdpEcho, "DataBlockSize") => {
                if n() < echo::PLUS_HEADER as u64 {
                    Err(format!(
                        "{field} {value}: at least {} bytes (the UDP Echo Plus header)",
                        echo::PLUS_HEADER
                    ))
                } else {
                    at_most(echo::MAX_DATAGRAM as u64, " bytes")
                }
            }
            (_, "NumberOfConnections") => at_most(http::MAX_CONNECTIONS.into(), ""),
            // Marking frames needs an egress priority map on the VLAN device, which the agent
            // neither owns nor can check: a priority it would not honour is refused.
            (_, "EthernetPriority") if value != "0" => Err(format!(
                "{field} {value}: only 0 (the agent does not set 802.1p priorities)"
            )),
            (Kind::Download, "DownloadURL") | (Kind::Upload, "UploadURL") => {
                check_url(value).map_err(|e| format!("{field}: {e}"))
            }
            (Kind::ServerSelection, "HostList") => {
                let hosts = list(value);
                if hosts.len() > MAX_HOSTS {
                    Err(format!("{field}: at most {MAX_HOSTS} hosts"))
                } else {
                    Ok(())
                }
            }
            (Kind::ServerSelection, "Protocol") if value != "ICMP" && value != "UDP Echo" => {
                Err(format!("{field} {value:?}: ICMP or UDP Echo"))
            }
            _ => Ok(()),
        }
    }

    /// Checks the inputs together when the test is requested (TR-181 DiagnosticsState: "any
    /// errors or inconsistencies in the test parameters MUST be detected … in the same
    /// SetParameterValues"). `get` reads an input's value in force.
    pub fn check_request(self, get: &dyn Fn(&str) -> String) -> Result<(), String> {
        let required = |field: &str| {
            if get(field).is_empty() {
                Err(format!("{} needs {field}", self.name()))
            } else {
                Ok(())
            }
        };
        match self {
            Kind::IpPing | Kind::TraceRoute | Kind::UdpEcho => required("Host"),
            Kind::Download => required("DownloadURL"),
            Kind::Upload => required("UploadURL"),
            Kind::ServerSelection => required("HostList"),
            Kind::NsLookup => required("HostName"),
        }?;
        let worst = self.worst_case(get);
        if worst > MAX_RUN {
            return Err(format!(
                "{} could take {} s with these values: at most {} s",
                self.name(),
                worst.as_secs(),
                MAX_RUN.as_secs()
            ));
        }
        Ok(())
    }

    /// The longest a run with these inputs may take: its requests' timeouts and pauses, the
    /// name resolutions; a transfer that is not time-based is bounded by [`MAX_RUN`].
    pub fn worst_case(self, get: &dyn Fn(&str) -> String) -> Duration {
        let n = |f: &str| get(f).parse::<u64>().unwrap_or(0);
        let ms = |f: &str| Duration::from_millis(n(f));
        let times = |d: Duration, k: u64| d.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
        match self {
            Kind::IpPing => {
                times(ms("Timeout").max(PING_INTERVAL), n("NumberOfRepetitions")) + RESOLVE_TIME
            }
            Kind::TraceRoute => {
                times(ms("Timeout"), n("NumberOfTries") * n("MaxHopCount")) + RESOLVE_TIME
            }
            Kind::UdpEcho => {
                times(
                    ms("Timeout").max(ms("InterTransmissionTime")),
                    n("NumberOfRepetitions"),
                ) + RESOLVE_TIME
            }
            Kind::ServerSelection => {
                let hosts = list(&get("HostList")).len() as u64;
                let one = times(
                    ms("Timeout").max(SELECTION_INTERVAL),
                    n("NumberOfRepetitions"),
                ) + RESOLVE_TIME;
                times(one, hosts)
            }
            // An A and an AAAA query per repetition, and the server's name.
            Kind::NsLookup => times(ms("Timeout"), 2 * n("NumberOfRepetitions")) + RESOLVE_TIME,
            Kind::Download | Kind::Upload => match n("TimeBasedTestDuration") {
                0 => MAX_RUN,
                s => Duration::from_secs(s) + Duration::from_secs(60) + RESOLVE_TIME,
            },
        }
    }
}

/// The items of a comma-separated list value, trimmed, without empty ones.
pub fn list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A TR-143 test URL this CPE can use: empty (not set yet), or `http://` with a host.
fn check_url(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let url = crate::http::url::Url::parse(value).map_err(|e| e.to_string())?;
    if !url.is_http() {
        return Err("only http:// is offered (DownloadTransports, UploadTransports)".into());
    }
    if url.host.is_empty() {
        return Err("no host".into());
    }
    Ok(())
}

/// `Any`, `IPv4` or `IPv6` as the families an address may have.
pub fn family_allows(version: &str, ip: IpAddr) -> bool {
    match version {
        "IPv4" => ip.is_ipv4(),
        "IPv6" => ip.is_ipv6(),
        _ => true,
    }
}

/// The DiagnosticsState a TR-098 object shows for a TR-181 state: TR-098's downloads and
/// uploads end in `Completed`, and its objects know fewer errors (the nearest one it has).
pub fn state_for_tr098(kind: Kind, state: &str) -> &str {
    match (kind, state) {
        (Kind::Download | Kind::Upload, "Complete") => "Completed",
        (Kind::Download | Kind::Upload, "Error_CannotResolveHostName" | "Error_NoRouteToHost") => {
            "Error_InitConnectionFailed"
        }
        (Kind::Download, "Error_Internal" | "Error_Other") => "Error_TransferFailed",
        (Kind::Upload, "Error_Timeout" | "Error_Internal" | "Error_Other") => {
            "Error_NoTransferComplete"
        }
        (Kind::IpPing, "Error_NoRouteToHost") => "Error_Other",
        // TR-098's TraceRoute has two errors only: a destination not reached is the nearest.
        (Kind::TraceRoute, "Error_NoRouteToHost" | "Error_Internal" | "Error_Other") => {
            "Error_MaxHopCountExceeded"
        }
        _ => state,
    }
}

/// The TR-181 state a TR-098 object's written value stands for.
pub fn state_from_tr098(state: &str) -> &str {
    match state {
        "Completed" => "Complete",
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inputs_and_checks() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(k.default_of("Interface"), Some(""));
            assert!(k.default_of(STATE).is_none());
        }
        assert!(Kind::IpPing.check("NumberOfRepetitions", "1000").is_ok());
        assert!(Kind::IpPing.check("NumberOfRepetitions", "1001").is_err());
        assert!(Kind::NsLookup.check("NumberOfRepetitions", "101").is_err());
        assert!(Kind::NsLookup.check("Timeout", "0").is_err());
        assert!(Kind::IpPing.check("DataBlockSize", "65535").is_err());
        assert!(Kind::UdpEcho.check("DataBlockSize", "19").is_err());
        assert!(Kind::Download.check("NumberOfConnections", "9").is_err());
        assert!(Kind::Download.check("EthernetPriority", "0").is_ok());
        assert!(Kind::Download.check("EthernetPriority", "5").is_err());
        assert!(Kind::Download
            .check("DownloadURL", "http://10.0.0.1/x")
            .is_ok());
        assert!(Kind::Download
            .check("DownloadURL", "ftp://10.0.0.1/x")
            .is_err());
        assert!(Kind::Upload.check("UploadURL", "not a url").is_err());
        let many = vec!["h"; MAX_HOSTS + 1].join(",");
        assert!(Kind::ServerSelection.check("HostList", &many).is_err());
        assert!(Kind::ServerSelection.check("Protocol", "TCP").is_err());
        assert!(Kind::IpPing.check_request(&|_| String::new()).is_err());
        assert!(Kind::IpPing.check_request(&|_| "x".into()).is_ok());
        assert_eq!(state_for_tr098(Kind::Download, "Complete"), "Completed");
        assert_eq!(state_for_tr098(Kind::IpPing, "Complete"), "Complete");
        assert_eq!(state_from_tr098("Completed"), "Complete");
        assert_eq!(list(" a, ,b "), ["a", "b"]);
    }
}
