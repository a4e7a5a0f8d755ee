//! Compiles the C shim against Debian's libsrtp2 (`apt install libsrtp2-dev`) when its header is
//! there, and otherwise builds the crate without it: `Session::new` then says libsrtp is missing,
//! so the workspace builds on a machine without the library.
#![forbid(unsafe_code)]

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rustc-check-cfg=cfg(veil_libsrtp)");
    let include = ["/usr/include", "/usr/local/include"]
        .into_iter()
        .find(|dir| Path::new(dir).join("srtp2/srtp.h").exists());
    let Some(include) = include else {
        println!(
            "cargo:warning=libsrtp2 not found (apt install libsrtp2-dev): the comparison leaves it out"
        );
        return;
    };
    cc::Build::new()
        .file("src/shim.c")
        .include(include)
        .opt_level(3)
        .compile("veil_srtp_shim");
    println!("cargo:rustc-link-lib=dylib=srtp2");
    println!("cargo:rustc-cfg=veil_libsrtp");
}
