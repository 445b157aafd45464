//! Diagnostics: the tests an ACS asks the CPE to run (TR-181 `IP.Diagnostics`, TR-098's
//! diagnostics objects, TR-143), run in process, never by an external tool. So far the ICMP
//! echo: [`icmp`] the messages (pure), [`ping`] the socket.
pub mod icmp;
pub mod ping;
