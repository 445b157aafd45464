//! The agent's error: why it could not start, record its state, queue an event or complete a
//! session. `Display` is the one line the command line prints.

use std::fmt;

/// Why the agent could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// The configuration cannot be used (the data model, its schema).
    Config(String),
    /// The store failed: a state file, or a lock on the storage directory.
    Store(String),
    /// An event was refused (an invalid code, a full queue).
    Event(String),
    /// The system random generator failed.
    Random,
    /// A session did not complete: the one-line reason (also kept as the last session's result).
    Session(String),
    /// A RequestDownload request is not valid (§A.4.2.1).
    Request(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Config(m)
            | AgentError::Store(m)
            | AgentError::Event(m)
            | AgentError::Session(m)
            | AgentError::Request(m) => f.write_str(m),
            AgentError::Random => f.write_str("the system random generator failed"),
        }
    }
}

impl std::error::Error for AgentError {}

/// For callers that report errors as text.
impl From<AgentError> for String {
    fn from(e: AgentError) -> String {
        e.to_string()
    }
}

/// A store error, as the agent reports it.
pub(super) fn store(e: impl fmt::Display) -> AgentError {
    AgentError::Store(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_message_alone() {
        assert_eq!(
            AgentError::Store("disk full".into()).to_string(),
            "disk full"
        );
        assert_eq!(
            AgentError::Random.to_string(),
            "the system random generator failed"
        );
        assert_eq!(String::from(AgentError::Session("x".into())), "x");
    }
}
