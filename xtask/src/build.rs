//! `cargo xtask build`: wasm-pack, wasm-opt from npm's binaryen, `pkg/` from `pkg-template/`,
//! and an npm tarball.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::run::{cmd, output, root, status, step};

/// The library version, shared by every workspace member.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Features the wasm32 target of current rustc emits, which wasm-opt must accept.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

pub fn run() -> Result<()> {
    let out = root().join("target").join("wasm-pack").join("web");
    step("wasm-pack build --release --target web");
    status(
        "wasm-pack build",
        cmd("wasm-pack")
            .args([
                "build",
                "--release",
                "--no-pack",
                "--target",
                "web",
                "--out-name",
                "callroom",
                "--out-dir",
            ])
            .arg(&out)
            .args(["--features", "small-alloc"]),
    )?;

    step("wasm-opt -Oz (npm binaryen)");
    let wasm = out.join("callroom_bg.wasm");
    let optimized = out.join("callroom_bg.opt.wasm");
    let before = file_len(&wasm)?;
    status(
        "wasm-opt",
        cmd("wasm-opt")
            .arg("-Oz")
            // Repeats the passes until the module stops shrinking: 247,233 -> 246,998 bytes
            // (106,071 -> 105,602 gzip), for about a second of build time.
            .arg("--converge")
            // Function names and the producers section are for debugging, not for shipping.
            .args(["--strip-debug", "--strip-producers"])
            .args(WASM_FEATURES)
            .arg(&wasm)
            .arg("-o")
            .arg(&optimized),
    )?;
    println!("{before} -> {} bytes", file_len(&optimized)?);

    step("assemble pkg/ from pkg-template/");
    let pkg = root().join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).context("removing the old pkg/")?;
    }
    copy_dir(&root().join("pkg-template"), &pkg)?;
    for file in ["callroom.js", "callroom.d.ts", "callroom_bg.wasm.d.ts"] {
        std::fs::copy(out.join(file), pkg.join(file)).with_context(|| format!("copying {file}"))?;
    }
    std::fs::copy(&optimized, pkg.join("callroom_bg.wasm"))?;
    set_package_version(&pkg.join("package.json"))?;

    step("npm pack");
    let target = root().join("target");
    let name = output(
        cmd("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&target)
            .current_dir(&pkg),
    )
    .context("npm pack failed; run `npm pack` in pkg/ to see why")?;
    let tarball = target.join(name.lines().last().unwrap_or_default());
    println!("{}", tarball.display());

    step("demo/react: install the tarball and build with Vite");
    let react = root().join("demo").join("react");
    status(
        "npm install <tarball>",
        cmd("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .arg(&tarball)
            .current_dir(&react),
    )?;
    status(
        "vite build",
        cmd("npx")
            .args(["vite", "build", "--logLevel", "warn"])
            .current_dir(&react),
    )?;

    print_sizes(&pkg)?;
    Ok(())
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len())
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// The template's package.json carries a placeholder; the real version is the crate's.
fn set_package_version(path: &Path) -> Result<()> {
    const PLACEHOLDER: &str = "\"version\": \"0.0.0-set-by-xtask\"";
    let text = std::fs::read_to_string(path)?;
    anyhow::ensure!(
        text.contains(PLACEHOLDER),
        "pkg-template/package.json must contain {PLACEHOLDER}"
    );
    std::fs::write(
        path,
        text.replace(PLACEHOLDER, &format!("\"version\": \"{VERSION}\"")),
    )?;
    Ok(())
}

/// Bytes after `gzip -9`.
pub fn gzip_len(bytes: &[u8]) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().map(|v| v.len()).unwrap_or(0)
}

fn print_sizes(pkg: &Path) -> Result<()> {
    step("sizes");
    let mut total = (0, 0);
    for file in ["callroom_bg.wasm", "callroom.js"] {
        let bytes = std::fs::read(pkg.join(file))?;
        let gz = gzip_len(&bytes);
        println!("{file:<20} {:>8} bytes  {:>7} gzip", bytes.len(), gz);
        total = (total.0 + bytes.len(), total.1 + gz);
    }
    println!(
        "{:<20} {:>8} bytes  {:>7} gzip",
        "wasm + glue", total.0, total.1
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_shrinks_repetitive_input_and_keeps_a_header() {
        let repetitive = vec![b'a'; 10_000];
        let len = gzip_len(&repetitive);
        assert!(len > 18, "a gzip stream has a header and trailer");
        assert!(len < 200, "10k identical bytes compress well, got {len}");
    }
}
