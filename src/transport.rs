//! The HTTP(S) client to the ACS (TR-069 §3.4): ureq over rustls with the ring provider.
