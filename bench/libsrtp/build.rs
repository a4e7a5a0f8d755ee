//! Compiles the C shim against Debian's libsrtp2 (`apt install libsrtp2-dev`) when its header is
//! there, and otherwise builds the crate without it: `Session::new` then says libsrtp is missing,
//! so the workspace builds on a machine without the library.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

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
    // 2.3 added the header checks (CSRC count, extension length against the packet length)
    // that the wrapper's SAFETY argument for srtp_unprotect relies on.
    match Command::new("pkg-config")
        .args(["--atleast-version=2.3.0", "libsrtp2"])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(_) => {
            println!("cargo:warning=libsrtp2 older than 2.3: the comparison leaves it out");
            return;
        }
        Err(_) => println!(
            "cargo:warning=no pkg-config: libsrtp2's version (2.3 or later needed) unchecked"
        ),
    }
    cc::Build::new()
        .file("src/shim.c")
        .include(include)
        .opt_level(3)
        .compile("veil_srtp_shim");
    println!("cargo:rustc-link-lib=dylib=srtp2");
    println!("cargo:rustc-cfg=veil_libsrtp");
}
