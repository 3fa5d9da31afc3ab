//! quidditch: the Quidditch UDF SDK for Rust, guest side (ABI v1, docs/udf-authoring.md).
//!
//! One file, no dependencies, `#![no_std]` so UDFs stay small (std crates can use it too).
//! Linking it exports what the host expects: `qd_alloc`, `qd_reset`, `qd_abi_version`. It also
//! gives string helpers and `qd_batch!` to generate a UDF's batch form. Build it once per
//! target, then link examples against it:
//!
//! ```sh
//! rustc --edition 2018 --crate-type rlib --crate-name quidditch \
//!       --target wasm32-unknown-unknown -O sdk/rust/lib.rs -o libquidditch.rlib
//! rustc --edition 2018 --crate-type cdylib --target wasm32-unknown-unknown -O \
//!       --extern quidditch=libquidditch.rlib my_udf.rs -o my_udf.wasm
//! ```
//!
//! For `wasm32-wasi` with std, build the SDK with `--cfg quidditch_libc_malloc`: std's
//! allocator there is wasi-libc's malloc, which owns the memory it grows, so the SDK takes its
//! extra chunks from malloc instead of growing memory behind its back.
//!
//! Invariant of the allocator: every pointer `qd_alloc` returned stays valid, and is never
//! handed out twice, until the next `qd_reset`; nothing is freed on its own (a bump allocator).
#![no_std]

/// The ABI this SDK speaks; exported as `qd_abi_version`.
pub const ABI_VERSION: i32 = 1;

/// A string result meaning "no value" (the field is left out of the hit).
pub const STR_NULL: i64 = -1;

// ---- Allocator -----------------------------------------------------------------------------

/// Bytes of the static arena `qd_alloc` serves first.
pub const ARENA_SIZE: usize = 65536;

/// Chunk header; data follows it. The arena is the chain's first chunk.
#[repr(C, align(16))]
struct Chunk {
    next: *mut Chunk,
    size: u32, // bytes of data after the 16-byte header
    pad: [u32; 2],
}

#[repr(C, align(16))]
struct Arena([u8; ARENA_SIZE]);

static mut ARENA: Arena = Arena([0; ARENA_SIZE]);
static mut CUR: *mut Chunk = core::ptr::null_mut(); // chunk being filled; null before first use
static mut OFF: u32 = 0; // bytes used in *CUR's data

const HDR: u32 = core::mem::size_of::<Chunk>() as u32;

unsafe fn arena() -> *mut Chunk {
    let c = ARENA.0.as_mut_ptr() as *mut Chunk;
    if (*c).size == 0 {
        (*c).size = ARENA_SIZE as u32 - HDR;
    }
    c
}

#[cfg(quidditch_libc_malloc)]
unsafe fn chunk_new(want: u32) -> *mut Chunk {
    extern "C" {
        fn malloc(n: usize) -> *mut u8;
    }
    if want > 0x7fff_0000 {
        return core::ptr::null_mut();
    }
    let c = malloc((HDR + want) as usize) as *mut Chunk;
    if !c.is_null() {
        (*c).next = core::ptr::null_mut();
        (*c).size = want;
    }
    c
}

#[cfg(not(quidditch_libc_malloc))]
unsafe fn chunk_new(want: u32) -> *mut Chunk {
    if want > 0x7fff_0000 {
        return core::ptr::null_mut();
    }
    let pages = ((HDR as u64 + want as u64 + 0xffff) >> 16) as usize;
    let old = core::arch::wasm32::memory_grow(0, pages);
    if old == usize::MAX {
        return core::ptr::null_mut();
    }
    let c = (old << 16) as *mut Chunk;
    (*c).next = core::ptr::null_mut();
    (*c).size = ((pages << 16) as u32) - HDR;
    c
}

/// Exported: `len` bytes, 8-byte aligned, valid until `qd_reset`; 0 when `len < 0` or memory is
/// exhausted. The host writes string and batch arguments there.
#[no_mangle]
pub extern "C" fn qd_alloc(len: i32) -> i32 {
    if len < 0 {
        return 0;
    }
    let need = ((len as u32) + 7) & !7;
    unsafe {
        if CUR.is_null() {
            CUR = arena();
            OFF = 0;
        }
        loop {
            if (*CUR).size - OFF >= need {
                let p = (CUR as *mut u8).add((HDR + OFF) as usize);
                OFF += need;
                return p as i32;
            }
            if (*CUR).next.is_null() {
                // at least double what the chain can hold, so a growing workload takes few chunks
                let want = if need > (*CUR).size * 2 { need } else { (*CUR).size * 2 };
                let mut c = chunk_new(want);
                if c.is_null() {
                    c = chunk_new(need);
                }
                if c.is_null() {
                    return 0;
                }
                (*CUR).next = c;
            }
            CUR = (*CUR).next;
            OFF = 0;
        }
    }
}

/// Exported: forget every `qd_alloc` since the last reset (the memory is reused).
#[no_mangle]
pub extern "C" fn qd_reset() {
    unsafe {
        CUR = arena();
        OFF = 0;
    }
}

/// Exported: the ABI version this module speaks.
#[no_mangle]
pub extern "C" fn qd_abi_version() -> i32 {
    ABI_VERSION
}

/// `len` bytes from `qd_alloc`, valid until `qd_reset`; `None` when memory is exhausted.
pub fn alloc_bytes(len: usize) -> Option<&'static mut [u8]> {
    if len > i32::MAX as usize {
        return None;
    }
    let p = qd_alloc(len as i32);
    if p == 0 {
        return None;
    }
    Some(unsafe { core::slice::from_raw_parts_mut(p as usize as *mut u8, len) })
}

// ---- Strings -------------------------------------------------------------------------------

/// A string parameter arrives as two parameters `(ptr: *const u8, len: u32)`: UTF-8 bytes in
/// the module's memory, read-only, valid until `qd_reset`. This borrows them.
///
/// # Safety
/// `ptr`/`len` must be what the host passed for a string parameter in this call.
pub unsafe fn str_bytes<'a>(ptr: *const u8, len: u32) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    core::slice::from_raw_parts(ptr, len as usize)
}

/// Like `str_bytes`, as `&str`; `None` when the bytes are not valid UTF-8 (the host sends
/// UTF-8 from JSON documents, so this only fails for bytes a caller crafted).
///
/// # Safety
/// As for `str_bytes`.
pub unsafe fn str_arg<'a>(ptr: *const u8, len: u32) -> Option<&'a str> {
    core::str::from_utf8(str_bytes(ptr, len)).ok()
}

/// Pack bytes already in this module's memory (static, or from `alloc_bytes`) as a string
/// result: `(ptr << 32) | len`. They must stay valid until the module is called again.
pub fn str_return(bytes: &[u8]) -> i64 {
    (((bytes.as_ptr() as usize as u64) << 32) | (bytes.len() as u32 as u64)) as i64
}

/// Copy `bytes` into `qd_alloc`'ed memory and return them as a string result; traps when
/// memory is exhausted.
pub fn str_dup(bytes: &[u8]) -> i64 {
    match alloc_bytes(bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            str_return(dst)
        }
        None => core::arch::wasm32::unreachable(),
    }
}

/// One element of a string column in a batch call: `{ptr, len}`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Str {
    pub ptr: *const u8,
    pub len: u32,
}

// ---- Batch form ----------------------------------------------------------------------------

/// Column `j` of a batch call: `args` points to one u32 pointer per parameter.
///
/// # Safety
/// `args` must be the host's argument table and `T` the parameter's ABI type.
pub unsafe fn column<'a, T>(args: *const u32, j: usize, n: i32) -> &'a [T] {
    core::slice::from_raw_parts(*args.add(j) as usize as *const T, n.max(0) as usize)
}

/// `qd_batch!(custom_score__batch => custom_score(bm25: f64, boost: f64, days: i32,
/// tier: i32) -> f64);` defines and exports `custom_score__batch(n: i32, args: *const u32,
/// out: *mut f64)`, which calls `custom_score` once per document: `args` holds one u32 column
/// pointer per parameter, column j holds n values of parameter j's type, and `out` receives n
/// results. Types: i32 i64 f32 f64, or `str` (a column of `Str`, passed on as `(ptr, len)`;
/// a string result is `i64`, packed). Rust's macros cannot paste identifiers, hence both names;
/// the parameter names only name the columns.
#[macro_export]
macro_rules! qd_batch {
    ($batch:ident => $f:ident($($p:ident: $t:tt),+ $(,)?) -> $r:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $batch(n: i32, args: *const u32, out: *mut $r) {
            let out = core::slice::from_raw_parts_mut(out, n.max(0) as usize);
            let mut _j = 0usize;
            $( let $p = $crate::qd_batch!(@col args, n, _j, $t); )+
            for i in 0..out.len() {
                out[i] = $crate::qd_batch!(@call $f, i, [], $($p: $t),+);
            }
        }
    };
    (@col $args:ident, $n:ident, $j:ident, str) => {{
        let c = $crate::column::<$crate::Str>($args, $j, $n);
        $j += 1;
        c
    }};
    (@col $args:ident, $n:ident, $j:ident, $t:ty) => {{
        let c = $crate::column::<$t>($args, $j, $n);
        $j += 1;
        c
    }};
    // Accumulate the call's arguments: a str column gives two (ptr, len), others one.
    (@call $f:ident, $i:ident, [$($acc:tt)*], ) => { $f($($acc)*) };
    (@call $f:ident, $i:ident, [$($acc:tt)*], $p:ident: str $(, $rp:ident: $rt:tt)*) => {
        $crate::qd_batch!(@call $f, $i, [$($acc)* $p[$i].ptr, $p[$i].len,], $($rp: $rt),*)
    };
    (@call $f:ident, $i:ident, [$($acc:tt)*], $p:ident: $t:tt $(, $rp:ident: $rt:tt)*) => {
        $crate::qd_batch!(@call $f, $i, [$($acc)* $p[$i],], $($rp: $rt),*)
    };
}

/// Defines the `#[panic_handler]` a `#![no_std]` UDF needs: a panic traps (`unreachable`), and
/// the host reports it as a trap of the UDF.
#[macro_export]
macro_rules! qd_panic_handler {
    () => {
        #[panic_handler]
        fn qd_panic(_: &core::panic::PanicInfo) -> ! {
            core::arch::wasm32::unreachable()
        }
    };
}
