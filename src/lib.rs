//! cwmpd: a TR-069 (CWMP 1.0–1.4) CPE agent. ARCHITECTURE.md has the codemap, the threads and the
//! invariants; this is the map of the layers, from the bottom up. A layer imports the layers
//! below it, never one above: no two modules import each other (`tests/layers.rs` checks it, and
//! that the pure rooms reach no file, socket, process, thread or clock).
//!
//! | layer | holds | may import | touches the OS |
//! |---|---|---|---|
//! | [`cwmp`] | the words of CWMP: faults, parameter values and their TR-106 types, versions and namespaces, `xsd:dateTime` text | nothing of the crate | no |
//! | [`uci`] | the UCI file grammar: the lexer (libuci's quoting, read leniently) for the config file and the `uci` backend's `uci export` (the package files the backend reads in the process have a strict reader of their own) | nothing of the crate | no |
//! | [`soap`] | the codec: bytes ⇄ typed messages, within size limits | `cwmp` | no |
//! | [`session`], [`events`], [`schedule`] | one CWMP session as a state machine, the event queue, the retry and periodic timing | `cwmp`, `soap` | no: time and randomness are arguments |
//! | [`diag`] | the diagnostics: what each test is (`spec`), one run from its inputs to its results (`run`), the network engines (ICMP echo, TraceRoute, DNS lookups, UDP echo, TR-143 HTTP download and upload) | `cwmp`, `http` (the URL), `sys` (the route's source address, interface addresses) | ICMP, UDP and TCP sockets, the system resolver, the UDP echo server's thread, the HTTP tests' connection threads, interface counters; the message codecs are pure |
//! | [`datamodel`] | the parameter tree: the engine, the schema, the backends that read and write the system | `cwmp`, `uci`, `sys`, `diag::spec` | the backends (files, uci, scripts through [`sys::process`]) and the schema's file loading |
//! | [`rpc`] | a typed ACS request run on the engine or handed to the agent (`Control`) | `cwmp`, `soap`, `datamodel` | no |
//! | [`http`] | HTTP as the agent speaks it: authentication, the session client to the ACS, the file client of transfers | `cwmp`, `sys` | sockets, TLS files |
//! | [`stun`] | STUN for TR-111 Part 2: Binding Requests with the CWMP attributes and their responses; the client as a state machine (discovery, keep-alives, NAT detection, binding change, binding timeout discovery) | nothing of the crate | no (pure: the sockets are `connreq`'s) |
//! | [`dhcp`] | ACS discovery by DHCP (TR-069 §3.1): DHCPv4 option 43 and DHCPv6 option 17 read into the ACS settings; option 125's identity | nothing of the crate | no |
//! | [`xmpp`] | XMPP Connection Requests (TR-069 Annex K, under way): the stream cut into stanzas, the connection-request IQ decided and answered, the negotiation, the connection's thread | `soap` (the bounded XML parse and escaping), `http` (TLS trust, constant-time comparison) | the client (socket, TLS, thread); the rest is pure |
//! | [`connreq`] | the Connection Request listener and its URL | `http` (authentication, URLs), `sys` | the listener (socket, threads) and the address look-ups; the request parser, the gate, the throttle and the URL rules are pure |
//! | [`jobs`] | how the loop starts background work and gets its result back | nothing of the crate | threads |
//! | [`transfer`] | Download and Upload: the rules, the runner (the file server behind a trait the agent implements over `http`), the hooks | `cwmp`, `soap`, `events`, `jobs`, `sys` | files, hook processes |
//! | [`agent`] | the loop: state, sessions, timers, Reboot and FactoryReset, notifications | every layer below | the clock, threads, inotify, the store |
//! | [`config`] | the config file: aggregates each component's section (`connreq::config`, `datamodel::config`, `transfer::config`, `sys::config`), reads TOML or UCI | the components whose sections it holds | reads the config file |
//! | [`sys`] | the rooms that touch the OS: the crash-safe store, OS queries, child processes, the logger (syslog or stderr), private directories, and their config sections | nothing of the crate | yes: that is what it is for |
//!
//! [`sys`] stands beside the stack rather than on top of it: it imports nothing of the crate,
//! and every layer that touches the OS does so through it or says so above. The pure layers
//! (`cwmp`, `uci`, `soap`, `session`, `events`, `schedule`, the pure parts of `http`, `connreq`,
//! `datamodel` and the agent's planner, listed in `tests/layers.rs`) read no file, socket,
//! process or clock. The binary (`src/main.rs`) is one function per sub-command
//! over [`agent`] and [`config`]; it installs the logger and handles the signals.
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod connreq;
pub mod cwmp;
pub mod datamodel;
pub mod dhcp;
pub mod diag;
pub mod events;
pub mod http;
pub mod jobs;
pub mod rpc;
pub mod schedule;
pub mod session;
pub mod soap;
pub mod stun;
pub mod sys;
pub mod toml_read;
pub mod toml_write;
pub mod transfer;
pub mod uci;
pub mod xmpp;
