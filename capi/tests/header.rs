//! The committed `include/veil.h` is exactly what cbindgen generates from the code, so a C
//! caller never builds against a header that disagrees with the library.
//!
//! To regenerate after changing the ABI: `UPDATE_HEADER=1 cargo test -p veil-capi --test header`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn generate() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    config.after_includes = Some(format!(
        "\n#define VEIL_VERSION_MAJOR {}\n#define VEIL_VERSION_MINOR {}\n#define VEIL_VERSION_PATCH {}",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen parses capi/src");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_header_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/veil.h");
    let generated = generate();
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        let show = |text: &str| {
            text.lines()
                .skip(first)
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "capi/include/veil.h is out of date: it differs from line {}.\n\
             committed:\n{}\n\ngenerated:\n{}\n\n\
             Regenerate it with: UPDATE_HEADER=1 cargo test -p veil-capi --test header",
            first + 1,
            show(&committed),
            show(&generated),
        );
    }
}
