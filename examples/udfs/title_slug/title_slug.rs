//! title_slug.rs: the string transform of title_slug.c in Rust (same bytes out): ASCII letters
//! lowercased, ASCII digits and non-ASCII bytes kept, runs of other ASCII characters become one
//! '-', no leading or trailing '-'. The result lives in qd_alloc'ed memory.
#![no_std]
#[macro_use]
extern crate quidditch;

qd_panic_handler!();

#[no_mangle]
pub unsafe extern "C" fn title_slug(title: *const u8, title_len: u32) -> i64 {
    let src = quidditch::str_bytes(title, title_len);
    let out = match quidditch::alloc_bytes(src.len()) {
        Some(o) => o,
        None => return quidditch::STR_NULL,
    };
    let mut n = 0usize;
    let mut dash = false;
    for &b in src {
        let c = b.to_ascii_lowercase();
        if !(c >= 0x80 || c.is_ascii_digit() || c.is_ascii_lowercase()) {
            dash = true;
            continue;
        }
        if dash && n > 0 {
            out[n] = b'-';
            n += 1;
        }
        dash = false;
        out[n] = c;
        n += 1;
    }
    quidditch::str_return(&out[..n])
}

qd_batch!(title_slug__batch => title_slug(title: str) -> i64);
