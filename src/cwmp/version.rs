//! The CWMP versions and their namespaces (TR-069 Amendment 6 §A.2.1), in one table
//! (`CwmpNs::TABLE`): each namespace's URN, the version it names, and the highest version an
//! Inform in it may offer; and the namespace a version speaks in. Pure.

/// The CWMP namespace an envelope uses (`urn:dslforum-org:cwmp-1-N`). CWMP 1.2, 1.3 and 1.4 all use
/// `cwmp-1-2` (see the header comments of `cwmp-1-3.xsd` and `cwmp-1-4.xsd`); the non-standard
/// `cwmp-1-3`/`cwmp-1-4` namespaces seen in the field are accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CwmpNs {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
}

/// One row of [`CwmpNs::TABLE`].
struct Row {
    ns: CwmpNs,
    urn: &'static str,
    /// The version the namespace names: what an InformResponse in it without `UseCWMPVersion`
    /// implies.
    names: CwmpVersion,
    /// The standard namespace it stands for (§A.2.1: 1.2–1.4 share `cwmp-1-2`).
    standard: CwmpNs,
    /// The highest version an Inform in this namespace can offer (§A.2).
    highest: CwmpVersion,
}

impl CwmpNs {
    /// The one table of namespaces, in [`CwmpNs`] order.
    const TABLE: [Row; 5] = [
        Row {
            ns: CwmpNs::V1_0,
            urn: "urn:dslforum-org:cwmp-1-0",
            names: CwmpVersion::V1_0,
            standard: CwmpNs::V1_0,
            highest: CwmpVersion::V1_0,
        },
        Row {
            ns: CwmpNs::V1_1,
            urn: "urn:dslforum-org:cwmp-1-1",
            names: CwmpVersion::V1_1,
            standard: CwmpNs::V1_1,
            highest: CwmpVersion::V1_1,
        },
        Row {
            ns: CwmpNs::V1_2,
            urn: "urn:dslforum-org:cwmp-1-2",
            names: CwmpVersion::V1_2,
            standard: CwmpNs::V1_2,
            highest: CwmpVersion::V1_4,
        },
        Row {
            ns: CwmpNs::V1_3,
            urn: "urn:dslforum-org:cwmp-1-3",
            names: CwmpVersion::V1_3,
            standard: CwmpNs::V1_2,
            highest: CwmpVersion::V1_4,
        },
        Row {
            ns: CwmpNs::V1_4,
            urn: "urn:dslforum-org:cwmp-1-4",
            names: CwmpVersion::V1_4,
            standard: CwmpNs::V1_2,
            highest: CwmpVersion::V1_4,
        },
    ];

    fn row(self) -> &'static Row {
        &Self::TABLE[self as usize]
    }

    /// `urn:dslforum-org:cwmp-1-N`.
    pub fn urn(self) -> &'static str {
        self.row().urn
    }

    /// Reads a namespace URN (surrounding white space ignored); `None` for another namespace.
    pub fn from_urn(s: &str) -> Option<CwmpNs> {
        let s = s.trim();
        Self::TABLE.iter().find(|r| r.urn == s).map(|r| r.ns)
    }

    /// The version this namespace names (`cwmp-1-3` names 1.3): what an InformResponse without
    /// `UseCWMPVersion` implies by its namespace.
    pub fn version(self) -> CwmpVersion {
        self.row().names
    }

    /// The standard namespace this one stands for: `cwmp-1-2` for the non-standard
    /// `cwmp-1-3`/`cwmp-1-4` (§A.2.1), itself otherwise.
    pub fn standard(self) -> CwmpNs {
        self.row().standard
    }

    /// The highest version an Inform in this namespace can offer (§A.2): 1.4 in `cwmp-1-2`.
    pub fn highest(self) -> CwmpVersion {
        self.row().highest
    }
}

/// A CWMP protocol version (`1.0` … `1.4`), as named in `SupportedCWMPVersions` and
/// `UseCWMPVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CwmpVersion(pub u8);

impl CwmpVersion {
    pub const V1_0: CwmpVersion = CwmpVersion(0);
    pub const V1_1: CwmpVersion = CwmpVersion(1);
    pub const V1_2: CwmpVersion = CwmpVersion(2);
    pub const V1_3: CwmpVersion = CwmpVersion(3);
    pub const V1_4: CwmpVersion = CwmpVersion(4);

    /// The namespace a session of this version uses (§A.2.1: 1.2–1.4 share `cwmp-1-2`): the
    /// standard namespace of the one that names it.
    pub fn namespace(self) -> CwmpNs {
        CwmpNs::TABLE
            .iter()
            .find(|r| r.names == self)
            .map_or(CwmpNs::V1_2, |r| r.standard)
    }

    /// `"1.4"`.
    pub fn text(self) -> String {
        format!("1.{}", self.0)
    }

    /// Reads `"1.3"`; `None` for anything that is not `1.0`–`1.4`.
    pub fn parse(s: &str) -> Option<CwmpVersion> {
        match s.trim() {
            "1.0" => Some(CwmpVersion(0)),
            "1.1" => Some(CwmpVersion(1)),
            "1.2" => Some(CwmpVersion(2)),
            "1.3" => Some(CwmpVersion(3)),
            "1.4" => Some(CwmpVersion(4)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CwmpNs; 5] = [
        CwmpNs::V1_0,
        CwmpNs::V1_1,
        CwmpNs::V1_2,
        CwmpNs::V1_3,
        CwmpNs::V1_4,
    ];

    #[test]
    fn the_table_is_in_enum_order_and_round_trips() {
        for ns in ALL {
            assert_eq!(ns.row().ns, ns);
            assert_eq!(CwmpNs::from_urn(ns.urn()), Some(ns));
            assert_eq!(CwmpNs::from_urn(&format!(" {} ", ns.urn())), Some(ns));
        }
        assert_eq!(CwmpNs::from_urn("urn:dslforum-org:cwmp-1-5"), None);
        assert_eq!(CwmpNs::from_urn(""), None);
    }

    #[test]
    fn versions_and_namespaces() {
        let v = |n| CwmpVersion(n);
        // The namespace a version speaks in: 1.2–1.4 share cwmp-1-2 (§A.2.1).
        let spoken: Vec<CwmpNs> = (0..=4).map(|n| v(n).namespace()).collect();
        assert_eq!(
            spoken,
            [
                CwmpNs::V1_0,
                CwmpNs::V1_1,
                CwmpNs::V1_2,
                CwmpNs::V1_2,
                CwmpNs::V1_2
            ]
        );
        assert_eq!(v(9).namespace(), CwmpNs::V1_2);
        // The version each namespace names, its standard form, and what an Inform in it offers.
        let named: Vec<u8> = ALL.iter().map(|ns| ns.version().0).collect();
        assert_eq!(named, [0, 1, 2, 3, 4]);
        let standard: Vec<u8> = ALL.iter().map(|ns| ns.standard().version().0).collect();
        assert_eq!(standard, [0, 1, 2, 2, 2]);
        let highest: Vec<u8> = ALL.iter().map(|ns| ns.highest().0).collect();
        assert_eq!(highest, [0, 1, 4, 4, 4]);
    }

    #[test]
    fn version_text() {
        for n in 0..=4 {
            let t = CwmpVersion(n).text();
            assert_eq!(CwmpVersion::parse(&t), Some(CwmpVersion(n)));
        }
        assert_eq!(CwmpVersion::parse(" 1.3 "), Some(CwmpVersion::V1_3));
        assert_eq!(CwmpVersion::parse("1.5"), None);
        assert_eq!(CwmpVersion::parse("2"), None);
    }
}
