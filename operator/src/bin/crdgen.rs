//! Writes the operator's CustomResourceDefinitions to `crds/` (or prints them with `--print`).
//!
//! Run after changing a type in `operator/src/crd/`: `cargo run -p tern-operator --bin crdgen`.
//! A test fails while the committed files differ from what this writes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tern_operator::crd::crd_manifests;

/// Command-line flags.
#[derive(Parser)]
#[command(about = "Generate the tern-operator CRD manifests")]
struct Flags {
    /// Print all CRDs to stdout as one multi-document YAML stream instead of writing files.
    #[arg(long)]
    print: bool,
    /// Directory the files are written to.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"))]
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let manifests = match crd_manifests() {
        Ok(manifests) => manifests,
        Err(error) => {
            eprintln!("crdgen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    for manifest in manifests {
        if flags.print {
            // A closed pipe (`crdgen --print | head`) ends the output quietly.
            if write!(stdout, "---\n{}", manifest.yaml).is_err() {
                return ExitCode::SUCCESS;
            }
            continue;
        }
        let path = flags.out_dir.join(manifest.file_name);
        if let Err(error) = std::fs::write(&path, &manifest.yaml) {
            eprintln!("crdgen: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
