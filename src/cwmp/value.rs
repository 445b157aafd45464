//! The values CWMP carries: a parameter's TR-106 base type (TR-106 Amendment 8 §3.2, with its
//! `xsi:type` name), and the parameter structs of the RPCs (TR-069 Amendment 6 §A.3.2: the
//! ParameterValueStruct, ParameterInfoStruct, ParameterAttributeStruct and
//! SetParameterAttributesStruct). Shared by the codec (`soap`) and the engine (`datamodel`), so
//! that neither imports the other. Pure.

/// A TR-106 base type, with its `xsi:type` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BaseType {
    #[default]
    String,
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
    Decimal,
}

crate::from_toml_enum!(BaseType {
    "string" => String,
    "int" => Int,
    "unsignedInt" => UnsignedInt,
    "long" => Long,
    "unsignedLong" => UnsignedLong,
    "boolean" => Boolean,
    "dateTime" => DateTime,
    "base64" => Base64,
    "hexBinary" => HexBinary,
    "decimal" => Decimal,
});

impl BaseType {
    /// The name without prefix, as in the DM schema and after `xsd:` in `xsi:type`.
    pub fn name(self) -> &'static str {
        match self {
            BaseType::String => "string",
            BaseType::Int => "int",
            BaseType::UnsignedInt => "unsignedInt",
            BaseType::Long => "long",
            BaseType::UnsignedLong => "unsignedLong",
            BaseType::Boolean => "boolean",
            BaseType::DateTime => "dateTime",
            BaseType::Base64 => "base64",
            BaseType::HexBinary => "hexBinary",
            BaseType::Decimal => "decimal",
        }
    }

    /// The `xsi:type` attribute value sent in a ParameterValueStruct.
    pub fn xsi_type(self) -> &'static str {
        match self {
            BaseType::String => "xsd:string",
            BaseType::Int => "xsd:int",
            BaseType::UnsignedInt => "xsd:unsignedInt",
            BaseType::Long => "xsd:long",
            BaseType::UnsignedLong => "xsd:unsignedLong",
            BaseType::Boolean => "xsd:boolean",
            BaseType::DateTime => "xsd:dateTime",
            BaseType::Base64 => "xsd:base64Binary",
            BaseType::HexBinary => "xsd:hexBinary",
            BaseType::Decimal => "xsd:decimal",
        }
    }

    /// Reads an `xsi:type` value as sent by an ACS (`xsd:int`, `int`, `soapenc:base64`, …); the
    /// prefix is ignored. `None` for a type we do not know.
    pub fn from_xsi(s: &str) -> Option<BaseType> {
        let local = s.rsplit(':').next().unwrap_or(s);
        Some(match local {
            "string" => BaseType::String,
            "int" => BaseType::Int,
            "unsignedInt" => BaseType::UnsignedInt,
            "long" => BaseType::Long,
            "unsignedLong" => BaseType::UnsignedLong,
            "boolean" => BaseType::Boolean,
            "dateTime" => BaseType::DateTime,
            "base64" | "base64Binary" => BaseType::Base64,
            "hexBinary" => BaseType::HexBinary,
            "decimal" => BaseType::Decimal,
            _ => return None,
        })
    }
}

/// One ParameterValueStruct of a SetParameterValues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValue {
    pub name: String,
    pub value: String,
    /// The `xsi:type` the ACS gave, when it gave one. `Some(None)`-like cases (a type we do not
    /// know) are kept as the raw text so the engine can answer 9006.
    pub xsi_type: Option<XsiType>,
}

/// An `xsi:type` attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsiType {
    Known(BaseType),
    Unknown(String),
}

/// One SetParameterAttributesStruct (§A.3.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAttributes {
    pub name: String,
    pub notification_change: bool,
    pub notification: u8,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

/// A ParameterValueStruct as sent by the CPE: the value in canonical form and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub ty: BaseType,
}

/// A ParameterInfoStruct (GetParameterNamesResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

/// A ParameterAttributeStruct (GetParameterAttributesResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u8,
    pub access_list: Vec<String>,
}
