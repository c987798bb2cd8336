//! Compiles every `.proto` under `bangfu/` once for the whole workspace, with the protoc that
//! ships inside `protoc-bin-vendored`, so a fresh machine needs nothing but cargo.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_protos(&root.join("bangfu"), &mut files)?;
    files.sort();
    // The folder itself, so a new .proto file is compiled too.
    println!("cargo:rerun-if-changed={}", root.join("bangfu").display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("bangfu_descriptor.bin"))
        .compile_with_config(config, &files, &[root.to_path_buf()])?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
