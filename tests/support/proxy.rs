//! The proxy of the kill test between the CPE and the test ACS: it forwards whole requests (read
//! with [`crate::http::read_request_raw`], so a TransferComplete is recognised before any of it
//! is forwarded) and can hold back the next TransferComplete, the ACS's answer to it, or the next
//! DownloadResponse, so that a kill lands exactly there (TR-069 §3.7.1.5: a TransferComplete is
//! resent until its response reached the CPE).
//!
//! Threads: the accept loop, and per connection one thread each way; all end with their sockets
//! or when the [`Proxy`] is dropped.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::http::{self, Limits};

/// What the proxy reads of one request (a CPE's requests are a few KiB).
const LIMITS: Limits = Limits {
    max_head: 64 * 1024,
    max_body: 8 * 1024 * 1024,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Nothing,
    /// The next TransferComplete is not forwarded.
    TcRequest,
    /// The next TransferComplete is forwarded; what the ACS answers on that connection is not.
    TcResponse,
    /// The next DownloadResponse is not forwarded.
    DownloadResponse,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: SocketAddr,
    armed: Mutex<Hold>,
    fired: Mutex<Option<Hold>>,
    stop: AtomicBool,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            upstream,
            armed: Mutex::new(Hold::Nothing),
            fired: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let sh = sh.clone();
                thread::spawn(move || {
                    let _ = proxy_connection(conn, &sh);
                });
            }
        });
        Ok(Proxy { addr, shared })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Holds back the next TransferComplete (or its answer); `Hold::Nothing` disarms.
    pub fn arm(&self, hold: Hold) {
        *lock(&self.shared.armed) = hold;
        *lock(&self.shared.fired) = None;
    }

    /// What was held back since the last `arm`.
    pub fn fired(&self) -> Option<Hold> {
        *lock(&self.shared.fired)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn proxy_connection(client: TcpStream, sh: &ProxyShared) -> io::Result<()> {
    let upstream = TcpStream::connect(sh.upstream)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let block = Arc::new(AtomicBool::new(false));
    // ACS → CPE: copied as it comes, unless blocked.
    {
        let mut from = upstream.try_clone()?;
        let mut to = client.try_clone()?;
        let block = block.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !block.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    // CPE → ACS: one whole request at a time, so a TransferComplete is recognised before any of
    // it is forwarded.
    let mut from = client;
    let mut to = upstream;
    let mut buf = Vec::new();
    while let Some((_, req)) = http::read_request_raw(&mut from, &mut buf, LIMITS)? {
        let mut armed = lock(&sh.armed);
        let hit = match *armed {
            Hold::Nothing => false,
            Hold::TcRequest | Hold::TcResponse => {
                has_element(&req, "TransferComplete")
                    && !has_element(&req, "AutonomousTransferComplete")
            }
            Hold::DownloadResponse => has_element(&req, "DownloadResponse"),
        };
        if hit {
            let hold = std::mem::replace(&mut *armed, Hold::Nothing);
            *lock(&sh.fired) = Some(hold);
            drop(armed);
            if hold == Hold::TcResponse {
                block.store(true, Ordering::SeqCst);
            } else {
                // Swallowed: wait for the CPE to die.
                let mut sink = [0u8; 4096];
                while matches!(from.read(&mut sink), Ok(n) if n > 0) {}
                let _ = to.shutdown(Shutdown::Both);
                return Ok(());
            }
        } else {
            drop(armed);
        }
        to.write_all(&req)?;
    }
    let _ = to.shutdown(Shutdown::Write);
    Ok(())
}

/// Whether a SOAP message has the element `name` (with a namespace prefix or without, with
/// attributes or without): `:TransferComplete>` does not match `AutonomousTransferComplete`.
fn has_element(req: &[u8], name: &str) -> bool {
    [":", "<"].iter().any(|before| {
        [">", " ", "/"].iter().any(|after| {
            let needle = format!("{before}{name}{after}");
            http::find(req, needle.as_bytes()).is_some()
        })
    })
}
