//! `cwmpd-dmgen`: writes the data model definitions under `datamodel/` from the official BBF XML
//! (see `cwmpd::datamodel::generate` and `datamodel/README.md`). A build-time tool, not part of
//! the release binary: `cargo run --features dmgen --bin cwmpd-dmgen -- [OPTIONS]`.
//!
//! ```text
//! cwmpd-dmgen [--bbf DIR] [--selection FILE] [--out DIR] [--check]
//!     Generates every file of the selection (default: datamodel/selection.toml, BBF files from
//!     --bbf, output in datamodel/). --check compares instead of writing and exits 1 when
//!     a file differs.
//! cwmpd-dmgen --xml FILE [--output FILE] ITEM...
//!     Generates the given items (`Obj.`, `Obj.**`, `Obj.Param`) of one XML file, to stdout or FILE.
//! ```
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cwmpd::datamodel::generate;

const USAGE: &str =
    "usage: cwmpd-dmgen [--bbf DIR] [--selection FILE] [--out DIR] [--check]\n       \
                     cwmpd-dmgen --xml FILE [--output FILE] ITEM...";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cwmpd-dmgen: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Default)]
struct Args {
    bbf: Option<PathBuf>,
    selection: Option<PathBuf>,
    out: Option<PathBuf>,
    check: bool,
    xml: Option<PathBuf>,
    output: Option<PathBuf>,
    items: Vec<String>,
}

fn parse_args(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--bbf" => a.bbf = Some(value("--bbf")?.into()),
            "--selection" => a.selection = Some(value("--selection")?.into()),
            "--out" => a.out = Some(value("--out")?.into()),
            "--xml" => a.xml = Some(value("--xml")?.into()),
            "--output" => a.output = Some(value("--output")?.into()),
            "--check" => a.check = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => a.items.push(arg),
        }
    }
    Ok(a)
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let a = parse_args(args)?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(xml) = &a.xml {
        if a.items.is_empty() {
            return Err(format!("--xml needs at least one ITEM\n{USAGE}"));
        }
        let text = read(xml)?;
        let name = xml
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = generate::generate(&text, &name, &a.items)?;
        match &a.output {
            Some(p) => write(p, &out)?,
            None => print!("{out}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.items.is_empty() {
        return Err(format!("ITEMs need --xml\n{USAGE}"));
    }
    let bbf = a.bbf.unwrap_or_else(|| manifest.join("../shared/bbf"));
    let out_dir = a.out.unwrap_or_else(|| manifest.join("datamodel"));
    let sel_path = a
        .selection
        .unwrap_or_else(|| manifest.join("datamodel/selection.toml"));
    let selection = generate::parse_selection(&read(&sel_path)?)
        .map_err(|e| format!("{}: {e}", sel_path.display()))?;
    let mut differs = false;
    for m in &selection.model {
        let text = read(&bbf.join(&m.xml))?;
        let out = generate::generate(&text, &m.xml, &m.select)?;
        let target = out_dir.join(&m.output);
        if a.check {
            let old = std::fs::read_to_string(&target).unwrap_or_default();
            if old != out {
                eprintln!("{} is out of date", target.display());
                differs = true;
            }
        } else {
            write(&target, &out)?;
            eprintln!("wrote {}", target.display());
        }
    }
    Ok(if differs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}
