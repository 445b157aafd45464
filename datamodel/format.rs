// The compiled data model's tags, shared through `include!` by the build script that writes the
// blob (datamodel/compile.rs, where the format is described) and the agent that reads it
// (src/datamodel/schema/compiled.rs).

/// The blob's first bytes; the digit is the format's version.
const MAGIC: &[u8] = b"CWDM1";

const KIND_STRING: u8 = 0;
const KIND_INTEGER: u8 = 1;
const KIND_INTEGER_RADIX: u8 = 2;
const KIND_FLOAT: u8 = 3;
const KIND_FALSE: u8 = 4;
const KIND_TRUE: u8 = 5;
const KIND_DATETIME: u8 = 6;
const KIND_ARRAY: u8 = 7;
const KIND_TABLE: u8 = 8;
