//! Inform events (TR-069 §3.7.1.5, Table 7): codes, single vs multiple, and which are kept or
//! dropped after a session that failed before the InformResponse.
//!
//! Pending events are persisted by the agent and removed only once an InformResponse arrived.

use serde::{Deserialize, Serialize};

/// One pending event: a code (`"1 BOOT"`, `"M Reboot"`) and its CommandKey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub code: String,
    #[serde(default)]
    pub command_key: String,
}
