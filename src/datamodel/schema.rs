//! The data model definitions, loaded from the files under `datamodel/` (see `datamodel/README.md`
//! for the format). Definitions are generated from the BBF XML; bindings are ours.

use std::path::Path;

/// Which standard root the device presents (`[device] data_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// TR-181 `Device:2`.
    Tr181,
    /// TR-098 `InternetGatewayDevice:1`.
    Tr098,
}

impl Model {
    pub fn root(self) -> &'static str {
        match self {
            Model::Tr181 => "Device.",
            Model::Tr098 => "InternetGatewayDevice.",
        }
    }
}

/// An error loading a data model file: names the file and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// The loaded definitions and bindings of one root model.
#[derive(Debug, Clone)]
pub struct Schema {
    root: &'static str,
}

impl Schema {
    /// Loads the embedded definitions of `model` plus every extra file in `extra_dir` (vendor
    /// extensions), when given.
    pub fn load(model: Model, extra_dir: Option<&Path>) -> Result<Schema, LoadError> {
        let _ = extra_dir;
        todo!("Schema::load {:?}", model)
    }

    pub fn root(&self) -> &str {
        self.root
    }
}
