//! The real servers the diagnostics' tests talk to, from Debian's packages, each run in a
//! network namespace the test made and killed on drop: dnsmasq as a DNS server with a test
//! zone, Python's `http.server` for TR-143 downloads and a Python standard-library PUT server
//! for uploads.

use crate::netns::Netns;

/// dnsmasq serving a test zone in namespace `ns` at `addr`:53 (`www.example.test`: an IPv4 and
/// an IPv6 address; `alias.example.test`: a CNAME to it; every other name under `test.`
/// does not exist). Killed on drop.
pub struct Dnsmasq(std::process::Child);

impl Dnsmasq {
    pub fn start(ns: &Netns, addr: &str) -> Option<Dnsmasq> {
        Dnsmasq::spawn(
            Some(ns),
            &[
                "--port=53",
                "--local=/test/",
                "--host-record=www.example.test,10.77.5.80,fd77:5::80",
                "--cname=alias.example.test,www.example.test",
                &format!("--listen-address={addr}"),
            ],
        )
    }

    /// dnsmasq as a DHCPv4 server only (no DNS) on `iface` of `ns`, leasing `range` (e.g.
    /// `10.77.1.100,10.77.1.150,1h`), with `options` (`--dhcp-option=` values) and its lease
    /// file in `dir`. Killed on drop.
    pub fn dhcp(
        ns: &Netns,
        iface: &str,
        range: &str,
        options: &[String],
        dir: &std::path::Path,
    ) -> Option<Dnsmasq> {
        let mut args = vec![
            "--port=0".to_string(),
            format!("--interface={iface}"),
            format!("--dhcp-range={range}"),
            format!("--dhcp-leasefile={}", dir.join("dnsmasq.leases").display()),
        ];
        args.extend(options.iter().map(|o| format!("--dhcp-option={o}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Dnsmasq::spawn(Some(ns), &args)
    }

    /// dnsmasq as a DNS server on 127.0.0.1:`port` of the test's own namespace (a high port:
    /// no other process's traffic), answering `records` (dnsmasq options such as
    /// `--srv-host=…`) under `localhost.` and nothing else. Killed on drop.
    pub fn loopback(port: u16, records: &[String]) -> Option<Dnsmasq> {
        let mut args = vec![
            format!("--port={port}"),
            "--listen-address=127.0.0.1".to_string(),
            "--local=/localhost/".to_string(),
        ];
        args.extend(records.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Dnsmasq::spawn(None, &args)
    }

    /// dnsmasq in the foreground in `ns` (else here) with no config file, resolv.conf or
    /// hosts, bound to its interfaces, with `args`; `None` (a skip) where it is not installed,
    /// unless CI is set.
    fn spawn(ns: Option<&Netns>, args: &[&str]) -> Option<Dnsmasq> {
        let have = std::process::Command::new("dnsmasq")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            assert!(
                std::env::var_os("CI").is_none(),
                "dnsmasq is needed (Debian: dnsmasq-base)"
            );
            return None;
        }
        let mut command = match ns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns.name(), "dnsmasq"]);
                c
            }
            None => std::process::Command::new("dnsmasq"),
        };
        let Ok(child) = command
            .arg("--keep-in-foreground")
            .args([
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--pid-file=",
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            panic!("cannot run dnsmasq");
        };
        Some(Dnsmasq(child))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Python's `http.server` (Debian's python3) serving `dir` from namespace `ns` on `addr`:8080;
/// killed on drop.
pub struct HttpServer(std::process::Child);

impl HttpServer {
    pub fn start(ns: &Netns, addr: &str, dir: &std::path::Path) -> HttpServer {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "python3", "-m", "http.server"])
            .args(["--bind", addr, "--directory"])
            .arg(dir)
            .arg("8080")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        HttpServer(child)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PUT server (Python's standard library, in namespace `ns` on `addr`:8081) that reads each
/// request's body whole, `Content-Length` or chunked, and appends `PATH KIND BYTES` to `log`;
/// then answers `201` with the count, except on `/silent` (never answers), `/close` (closes
/// without a response), `/forbidden` (`403`) and `/continue` (`100` first, then `201`).
pub const PUT_SERVER: &str = r#"
import sys, time, http.server
log, addr = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_PUT(self):
        n = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            kind = "chunked"
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    got = self.rfile.read(min(left, 65536))
                    if not got:
                        raise ConnectionError("cut short")
                    left -= len(got)
                    n += len(got)
                self.rfile.readline()
        else:
            kind = "length"
            left = int(self.headers["Content-Length"])
            while left:
                got = self.rfile.read(min(left, 65536))
                if not got:
                    break
                left -= len(got)
                n += len(got)
        with open(log, "a") as f:
            f.write(f"{self.path} {kind} {n}\n")
        if self.path == "/silent":
            time.sleep(60)
            return
        if self.path == "/close":
            self.close_connection = True
            return
        if self.path == "/continue":
            self.send_response_only(100)
            self.end_headers()
        body = str(n).encode()
        self.send_response(403 if self.path == "/forbidden" else 201)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((addr, 8081), H).serve_forever()
"#;

impl HttpServer {
    /// [`PUT_SERVER`] in `ns` on `addr`:8081, logging to `log`.
    pub fn put(ns: &Netns, addr: &str, log: &std::path::Path) -> HttpServer {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "python3", "-c", PUT_SERVER])
            .arg(log)
            .arg(addr)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -c PUT_SERVER");
        HttpServer(child)
    }
}

/// The server's log: one `(path, kind, bytes)` per request it read whole.
pub fn put_log(log: &std::path::Path) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            (w[0].to_string(), w[1].to_string(), w[2].parse().unwrap())
        })
        .collect()
}

/// coturn (Debian's `coturn`) as a STUN server in namespace `ns` at `ip`:3478, UDP only; killed
/// on drop. It answers classic (RFC 3489) Binding Requests with MAPPED-ADDRESS, as a TR-111
/// STUN server does; it does not honour RESPONSE-ADDRESS (it answers the request's source,
/// adding REFLECTED-FROM: coturn's `ns_turn_server.c`, `handle_turn_binding`).
pub struct Coturn(std::process::Child);

impl Coturn {
    /// `None` (a skip) where coturn is not installed, unless CI is set.
    pub fn start(ns: &Netns, ip: &str, dir: &std::path::Path) -> Option<Coturn> {
        let have = std::process::Command::new("turnserver")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !have {
            assert!(
                std::env::var_os("CI").is_none(),
                "coturn is needed (Debian: coturn)"
            );
            return None;
        }
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "turnserver", "-n"])
            .arg(format!("--listening-ip={ip}"))
            .args([
                "--listening-port=3478",
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--no-cli",
                "--simple-log",
                "--log-file=stdout",
            ])
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ip netns exec turnserver");
        Some(Coturn(child))
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
