//! The configuration file (TOML, default `/etc/cwmpd/cwmpd.toml`).
