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

/// The ParameterValueStructs of a GetParameterValuesResponse, kept compact: every name and
/// value back to back in one string, and for each entry where its name and value end and its
/// type. A GPV of a whole router (thousands of parameters) is two allocations, not two per
/// parameter plus a struct each (issue 19: the response's list was a third of the GPV's heap).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ParameterValues {
    text: String,
    items: Vec<Entry>,
}

/// Where one entry's name and value end in [`ParameterValues::text`], and its type.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    name_end: usize,
    value_end: usize,
    ty: BaseType,
}

/// A `fmt::Write` that only counts the bytes written to it: the exact size of a text (the
/// paths of a [`ParameterValues`], a GetParameterValuesResponse's markup) before it is written,
/// by the code that writes it.
#[derive(Default)]
pub struct Count(pub usize);

impl std::fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// One entry of a [`ParameterValues`], borrowed. Its `Debug` is a [`ParameterValue`]'s.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParamValue<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub ty: BaseType,
}

impl std::fmt::Debug for ParamValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterValue")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("ty", &self.ty)
            .finish()
    }
}

impl ParamValue<'_> {
    pub fn to_owned(self) -> ParameterValue {
        ParameterValue {
            name: self.name.to_string(),
            value: self.value.to_string(),
            ty: self.ty,
        }
    }
}

impl ParameterValues {
    pub fn new() -> ParameterValues {
        ParameterValues::default()
    }

    /// Room for `entries` entries whose names and values are `text` bytes in all.
    pub fn with_capacity(entries: usize, text: usize) -> ParameterValues {
        ParameterValues {
            text: String::with_capacity(text),
            items: Vec::with_capacity(entries),
        }
    }

    /// Appends an entry whose name is `prefix` followed by `name` (an object path and a
    /// parameter name: the caller need not join them first).
    pub fn push_joined(&mut self, prefix: &str, name: &str, value: &str, ty: BaseType) {
        self.text.push_str(prefix);
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        self.items.push(Entry {
            name_end,
            value_end: self.text.len(),
            ty,
        });
    }

    pub fn push(&mut self, name: &str, value: &str, ty: BaseType) {
        self.push_joined(name, "", value, ty);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bytes of all names and values together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn get(&self, i: usize) -> Option<ParamValue<'_>> {
        let start = match i.checked_sub(1) {
            Some(prev) => self.items.get(prev)?.value_end,
            None => 0,
        };
        Some(self.entry(start, self.items.get(i)?))
    }

    /// The entry `e`, whose name starts at `start`. The ends were taken after whole strings
    /// were pushed: always char boundaries.
    fn entry(&self, start: usize, e: &Entry) -> ParamValue<'_> {
        ParamValue {
            name: self.text.get(start..e.name_end).unwrap_or_default(),
            value: self.text.get(e.name_end..e.value_end).unwrap_or_default(),
            ty: e.ty,
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: self,
            start: 0,
            next: 0,
        }
    }

    /// The bytes reserved for names and values (to test that a list was sized exactly).
    pub fn text_capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Each entry as an owned struct.
    pub fn to_vec(&self) -> Vec<ParameterValue> {
        self.iter().map(ParamValue::to_owned).collect()
    }
}

/// The entries of a [`ParameterValues`], in order.
pub struct Iter<'a> {
    list: &'a ParameterValues,
    start: usize,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = ParamValue<'a>;

    fn next(&mut self) -> Option<ParamValue<'a>> {
        let e = self.list.items.get(self.next)?;
        let out = self.list.entry(self.start, e);
        self.start = e.value_end;
        self.next += 1;
        Some(out)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.list.items.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a ParameterValues {
    type Item = ParamValue<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for ParameterValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<ParameterValue> for ParameterValues {
    fn from_iter<I: IntoIterator<Item = ParameterValue>>(iter: I) -> ParameterValues {
        let mut out = ParameterValues::new();
        for p in iter {
            out.push(&p.name, &p.value, p.ty);
        }
        out
    }
}

impl From<Vec<ParameterValue>> for ParameterValues {
    fn from(list: Vec<ParameterValue>) -> ParameterValues {
        list.into_iter().collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, value: &str, ty: BaseType) -> ParameterValue {
        ParameterValue {
            name: name.into(),
            value: value.into(),
            ty,
        }
    }

    /// Entries come back as they went in, empty names and values, multi-byte text and
    /// entries whose text runs into the next's included.
    #[test]
    fn entries_round_trip() {
        let owned = vec![
            pv("Device.A.", "", BaseType::String),
            pv("", "x", BaseType::Int),
            pv("Device.Ä.1.Name", "ü€𝄞", BaseType::String),
            pv("ab", "c", BaseType::Boolean),
            pv("a", "bc", BaseType::Boolean),
            pv("", "", BaseType::DateTime),
        ];
        let list: ParameterValues = owned.clone().into();
        assert_eq!(list.len(), owned.len());
        assert!(!list.is_empty() && ParameterValues::new().is_empty());
        assert_eq!(list.to_vec(), owned);
        assert_eq!(list.iter().len(), owned.len());
        for (i, p) in owned.iter().enumerate() {
            let got = list.get(i).unwrap();
            assert_eq!((got.name, got.value, got.ty), (&*p.name, &*p.value, p.ty));
            assert_eq!(got.to_owned(), *p);
        }
        assert_eq!(list.get(owned.len()), None);
        assert_eq!(
            list.text_len(),
            owned
                .iter()
                .map(|p| p.name.len() + p.value.len())
                .sum::<usize>()
        );
        let mut it = list.iter();
        it.next();
        assert_eq!(it.size_hint(), (5, Some(5)));
        // "ab"+"c" and "a"+"bc" are the same text: the split tells them apart.
        let one: ParameterValues = vec![pv("ab", "c", BaseType::String)].into();
        let other: ParameterValues = vec![pv("a", "bc", BaseType::String)].into();
        assert_ne!(one, other);
        assert_ne!(
            one,
            ParameterValues::from(vec![pv("ab", "c", BaseType::Int)])
        );
        assert_eq!(one, one.clone());
        let mut joined = ParameterValues::with_capacity(1, 11);
        joined.push_joined("Device.", "X", "abc", BaseType::String);
        assert_eq!(joined.to_vec(), [pv("Device.X", "abc", BaseType::String)]);
        assert_eq!(
            format!("{one:?}"),
            format!("{:?}", [pv("ab", "c", BaseType::String)])
        );
    }
}
