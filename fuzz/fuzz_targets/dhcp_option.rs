//! Fuzzes what a DHCP server (or whoever answers on the WAN's segment) sends as the ACS's
//! options (TR-069 §3.1): `dhcp::parse` of DHCPv4 option 43 and DHCPv6 option 17, and
//! `dhcp::unhex` of the hex the DHCP clients print. Besides "no panic, no hang, no unbounded
//! memory", it checks that what parses keeps the data model's bounds: a URL within 256 bytes
//! and a ProvisioningCode within 64, neither with a control character, the retry settings in
//! their ranges; and that bytes printed as hex read back the same.
//!
//! Seeds: `corpus/dhcp_option/` (dnsmasq's option 43 as udhcpc printed it).
#![no_main]

use cwmpd::dhcp::{self, Family};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for f in [Family::V4, Family::V6] {
        if let Ok(d) = dhcp::parse(f, data) {
            assert!(d.url.len() <= 256 && !d.url.chars().any(char::is_control));
            if let Some(p) = &d.provisioning_code {
                assert!(p.len() <= 64 && !p.chars().any(char::is_control));
            }
            assert!(d.min_wait.is_none_or(|w| (1..=65535).contains(&w)));
            assert!(d.multiplier.is_none_or(|k| (1000..=65535).contains(&k)));
        }
    }
    if data.len() <= dhcp::MAX_OPTION {
        assert_eq!(dhcp::unhex(&dhcp::hex(data)).as_deref(), Ok(data));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(b) = dhcp::unhex(s) {
            assert!(b.len() <= dhcp::MAX_OPTION);
        }
    }
});
