//! title_upper.rs: a string transform written with Rust's std (String, Unicode case mapping),
//! built for wasm32-wasi: "Crème brûlée" becomes "CRÈME BRÛLÉE". std on wasm32-wasi imports a few
//! WASI functions (fd_write, environ_*, proc_exit) that a panic or std's start-up may use, so this
//! example is also the one that exercises the host's WASI sandbox. The SDK must be built with
//! `--cfg quidditch_libc_malloc` for this target (see sdk/rust/lib.rs).
#[macro_use]
extern crate quidditch;

#[no_mangle]
pub unsafe extern "C" fn title_upper(title: *const u8, title_len: u32) -> i64 {
    match quidditch::str_arg(title, title_len) {
        Some(s) => quidditch::str_dup(s.to_uppercase().as_bytes()),
        None => quidditch::STR_NULL, // not UTF-8: no value
    }
}

qd_batch!(title_upper__batch => title_upper(title: str) -> i64);
