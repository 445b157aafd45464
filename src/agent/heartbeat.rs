//! The Heartbeat (CWMP 1.4, TR-181 `ManagementServer.HeartbeatPolicy`): a short session every
//! ReportingInterval at the phase of InitiationTime that tells the ACS the CPE is there.
//!
//! Its Inform carries `14 HEARTBEAT` alone (the pending events wait for a session of their own,
//! which follows at once) and the Inform parameters of that event (the forced ones and the
//! InformParameter entries that apply to it), never a value change; the CPE sends none of its
//! own requests in it. A failed heartbeat is not retried (the next one comes at its time) and
//! does not count in RetryCount; nothing of it is written to flash (the event is never queued).
//! A Connection Request that joins a heartbeat session gets a session of its own after it.

use super::session::SessionResult;
use super::Agent;
use crate::connreq::listener::Phase;
use crate::events;

impl Agent {
    /// Runs one Heartbeat session now. Ok when it completed.
    pub fn run_heartbeat(&mut self) -> SessionResult {
        self.retry_after = None;
        self.take_joined();
        self.set_phase(Phase::Running);
        let mut accepted = false;
        let result = self.attempt_inner(&mut accepted, true);
        let s = self.settings();
        self.follow_connreq(&s, true);
        self.set_phase(Phase::Idle);
        if self.take_joined() && self.queue(events::CONNECTION_REQUEST, "") {
            log::info!("a connection request joined the heartbeat session: a session follows");
        }
        for f in self.engine.end_session() {
            log::warn!("deferred change failed: {f}");
        }
        match &result {
            Ok(n) => log::info!("heartbeat session ended: ok ({n} requests from the ACS)"),
            Err(e) => log::warn!("heartbeat session failed: {e} (not retried)"),
        }
        // Only what the ACS changed in it, if anything (unchanged state is not rewritten).
        self.save();
        result
            .map(|_| ())
            .map_err(super::error::AgentError::Session)
    }
}
