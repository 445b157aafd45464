//! Where a binary's bytes are, for the benchmark report: the sizes of an ELF file's sections
//! (any class and byte order: the host's x86_64 and the router's 32-bit big-endian mips alike)
//! and the sizes of its functions and data summed by the crate their (legacy-mangled) Rust
//! symbol names start with. Read from the file's own headers (ELF, System V gABI): no
//! `readelf`, `nm` or cargo-bloat, which may not know the router's architecture.

use std::collections::BTreeMap;

/// A section: its name, its size in the file's image (a `NOBITS` section such as `.bss`
/// counts 0), and whether it is loaded at run time (`SHF_ALLOC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub size: u64,
    pub alloc: bool,
}

/// An ELF file read.
pub struct Elf<'a> {
    data: &'a [u8],
    wide: bool,
    big: bool,
    /// (name offset, type, flags, offset, size, link) of each section.
    headers: Vec<(u32, u32, u64, u64, u64, u32)>,
    names: usize,
}

const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 2;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;

impl<'a> Elf<'a> {
    /// The file's headers, or why it is not an ELF file this reads.
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, String> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file".into());
        }
        let wide = match data.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err("unknown ELF class".into()),
        };
        let big = match data.get(5) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err("unknown ELF byte order".into()),
        };
        let mut elf = Elf {
            data,
            wide,
            big,
            headers: Vec::new(),
            names: 0,
        };
        let (shoff, shentsize, shnum, shstrndx) = if wide {
            (
                elf.u64(0x28)?,
                elf.u16(0x3a)?,
                elf.u16(0x3c)?,
                elf.u16(0x3e)?,
            )
        } else {
            (
                u64::from(elf.u32(0x20)?),
                elf.u16(0x2e)?,
                elf.u16(0x30)?,
                elf.u16(0x32)?,
            )
        };
        for i in 0..usize::from(shnum) {
            let at = usize::try_from(shoff).map_err(|_| "bad offset")? + i * usize::from(shentsize);
            let h = if wide {
                (
                    elf.u32(at)?,
                    elf.u32(at + 4)?,
                    elf.u64(at + 8)?,
                    elf.u64(at + 0x18)?,
                    elf.u64(at + 0x20)?,
                    elf.u32(at + 0x28)?,
                )
            } else {
                (
                    elf.u32(at)?,
                    elf.u32(at + 4)?,
                    u64::from(elf.u32(at + 8)?),
                    u64::from(elf.u32(at + 0x10)?),
                    u64::from(elf.u32(at + 0x14)?),
                    elf.u32(at + 0x18)?,
                )
            };
            elf.headers.push(h);
        }
        elf.names = usize::from(shstrndx);
        Ok(elf)
    }

    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        let b = self
            .data
            .get(at..at + N)
            .ok_or_else(|| format!("truncated at {at}"))?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        if self.big {
            out.reverse();
        }
        Ok(out)
    }

    fn u16(&self, at: usize) -> Result<u16, String> {
        self.bytes(at).map(u16::from_le_bytes)
    }

    fn u32(&self, at: usize) -> Result<u32, String> {
        self.bytes(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: usize) -> Result<u64, String> {
        self.bytes(at).map(u64::from_le_bytes)
    }

    /// The NUL-terminated string at `offset` of the string table in section `table`.
    fn string(&self, table: usize, offset: u32) -> String {
        let Some(&(_, _, _, start, size, _)) = self.headers.get(table) else {
            return String::new();
        };
        let (start, end) = (start as usize, (start + size) as usize);
        let from = start + offset as usize;
        let bytes = self
            .data
            .get(from..end.min(self.data.len()))
            .unwrap_or_default();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..len]).into_owned()
    }

    /// Every section, in the file's order.
    pub fn sections(&self) -> Vec<Section> {
        self.headers
            .iter()
            .skip(1)
            .map(|&(name, ty, flags, _, size, _)| Section {
                name: self.string(self.names, name),
                size: if ty == SHT_NOBITS { 0 } else { size },
                alloc: flags & SHF_ALLOC != 0,
            })
            .collect()
    }

    /// The functions and data objects of the symbol table with their sizes (empty when the
    /// binary is stripped).
    pub fn symbols(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for &(_, ty, _, offset, size, link) in &self.headers {
            if ty != SHT_SYMTAB {
                continue;
            }
            let entry = if self.wide { 24 } else { 16 };
            for i in 0..(size as usize / entry) {
                let at = offset as usize + i * entry;
                let parsed = if self.wide {
                    (
                        self.u32(at),
                        self.data.get(at + 4).copied(),
                        self.u64(at + 16),
                    )
                } else {
                    (
                        self.u32(at),
                        self.data.get(at + 12).copied(),
                        self.u32(at + 8).map(u64::from),
                    )
                };
                let (Ok(name), Some(info), Ok(len)) = parsed else {
                    continue;
                };
                if matches!(info & 0xf, STT_FUNC | STT_OBJECT) && len > 0 {
                    out.push((self.string(link as usize, name), len));
                }
            }
        }
        out
    }
}

/// The crate a symbol belongs to: the first path component of a legacy-mangled Rust name
/// (`_ZN4core3fmt5write17h…E` → `core`), or the crate of the type of a trait impl
/// (`_ZN50_$LT$cwmpd..x..Y$u20$as$u20$core..fmt..Debug$GT$3fmt…` → `cwmpd`); C symbols (ring's
/// assembly and C, musl or glibc) are `[C]`, v0-mangled ones `[v0]`.
pub fn crate_of(symbol: &str) -> String {
    if let Some(v0) = symbol.strip_prefix("_R") {
        return crate_of_v0(v0).unwrap_or_else(|| "[v0]".into());
    }
    let Some(rest) = symbol.strip_prefix("_ZN") else {
        return "[C]".into();
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(len) = rest[..digits].parse::<usize>() else {
        return "[?]".into();
    };
    let first = rest.get(digits..digits + len).unwrap_or_default();
    let first = first
        .strip_prefix("_$LT$")
        .or_else(|| first.strip_prefix("$LT$"))
        .unwrap_or(first);
    // `&`, `*const`, `[` and other punctuation before the path.
    let first = first.trim_start_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    let first = first.trim_start_matches("RF$").trim_start_matches("u5b$");
    let (ty, trait_) = match first.split_once("$u20$as$u20$") {
        Some((t, tr)) => (t, Some(tr)),
        None => (first, None),
    };
    let krate = |path: &str| -> String {
        path.split("..")
            .next()
            .unwrap_or_default()
            .split('$')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    // A type without a path (a generic `T`, a primitive): the trait's crate.
    match trait_ {
        Some(tr) if !ty.contains("..") => krate(tr),
        _ => krate(ty),
    }
}

/// The first crate root of a v0-mangled path (RFC 2603: `C`, an optional disambiguator
/// `s…_`, then the length and the name): the tags before it are capital letters, so the first
/// `C` is the root's (`NvNtCs1a_4core3fmt5write` → `core`).
fn crate_of_v0(path: &str) -> Option<String> {
    let at = path.find('C')?;
    let mut rest = &path[at + 1..];
    if let Some(r) = rest.strip_prefix('s') {
        rest = &r[r.find('_')? + 1..];
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let len: usize = rest[..digits].parse().ok()?;
    let name = rest.get(digits..digits + len)?;
    // A Punycode name starts with `u`: the crate names here are ASCII.
    Some(name.to_string())
}

/// The symbols' sizes summed by [`crate_of`], the largest first.
pub fn by_crate(symbols: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for (name, size) in symbols {
        *sums.entry(crate_of(name)).or_default() += size;
    }
    let mut v: Vec<(String, u64)> = sums.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_of_legacy_symbols() {
        for (symbol, krate) in [
            ("_ZN4core3fmt5write17h0123456789abcdefE", "core"),
            ("_ZN5cwmpd4soap5parse17h0123456789abcdefE", "cwmpd"),
            (
                "_ZN50_$LT$cwmpd..x..Y$u20$as$u20$core..fmt..Debug$GT$3fmt17h0123456789abcdefE",
                "cwmpd",
            ),
            (
                "_ZN63_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..Drop$GT$4drop17hE",
                "alloc",
            ),
            (
                "_ZN45_$LT$$RF$T$u20$as$u20$core..fmt..Display$GT$3fmt17hE",
                "core",
            ),
            ("ring_core_0_17_14__x25519_ge_scalarmult_base", "[C]"),
            ("memcpy", "[C]"),
            ("_RNvCs1234_5cwmpd4main", "cwmpd"),
            ("_RNvNtCs1a2B_4core3fmt5write", "core"),
            ("_RNvNtC3std2io4read", "std"),
            ("_RX", "[v0]"),
        ] {
            assert_eq!(crate_of(symbol), krate, "{symbol}");
        }
    }

    /// The test's own executable: an ELF file of this host with sections and, in a test
    /// build, symbols of `core` and of this crate.
    #[test]
    fn the_running_test_binary_reads() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let elf = Elf::parse(&data).unwrap();
        let sections = elf.sections();
        assert!(
            sections
                .iter()
                .any(|s| s.name == ".text" && s.alloc && s.size > 0),
            "{sections:?}"
        );
        let symbols = elf.symbols();
        if !symbols.is_empty() {
            let crates = by_crate(&symbols);
            assert!(crates.iter().any(|(c, _)| c == "core"), "{crates:?}");
        }
        assert!(Elf::parse(b"\x7fELF\x03").is_err());
        assert!(Elf::parse(b"MZ").is_err());
    }
}
