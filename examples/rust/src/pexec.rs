//! pexec.rs - the pexec plugin ABI for Rust, written by hand: a mirror of
//! sdk/pexec_plugin.h (the descriptor, `pexec_buf`, `pexec_error`), and the
//! few helpers a plugin needs at the boundary with pexec, which is C.  It
//! uses nothing but std, and builds with Rust 1.63: copy it into your crate
//! as it is, `mod pexec;`, and define the descriptor as lib.rs does.
//!
//! The header is the source of truth; this follows its rules:
//!
//! - `Descriptor` is the header's `pexec_descriptor`, member for member, in
//!   its order, as of plugin ABI 1 with the members appended in pexec 0.2.
//!   The header's descriptor only ever grows at its end: a later header may
//!   have members this copy lacks, and a plugin built from this copy still
//!   loads, because `struct_size` tells pexec how much of the descriptor it
//!   has and pexec reads the rest as null.  To use a newer member, append it
//!   here, after `reduce_initial`, exactly as the header declares it.
//! - `Buf` (`pexec_buf`) and `Error` (`pexec_error`, `PEXEC_ERROR_MAX`
//!   bytes) are frozen for the whole of ABI 1, and are copied here as is.
//! - Ownership is the header's OWNERSHIP comment.  For Rust: values a plugin
//!   makes are `Box`es turned into raw pointers (`Box::into_raw`), which
//!   pexec hands back to `free_value` (`Box::from_raw`); the state made by
//!   `init` is handed back to `fini` the same way.
//! - No panic may unwind into pexec (before Rust 1.81 that is undefined
//!   behaviour; since, it aborts the process).  Run every hook's body
//!   through `guard`, which catches the panic and makes it the hook's error,
//!   and keep `panic = "unwind"` (the default) in Cargo.toml.

// A plugin uses only part of this file.
#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::Once;

/// `PEXEC_ABI_VERSION`: the plugin ABI this file mirrors.
pub const ABI_VERSION: u32 = 1;
/// `PEXEC_ERROR_MAX`: the size of an error message, its NUL included.
pub const ERROR_MAX: usize = 512;

/// `struct cJSON`, which only `init`'s config is here: opaque.
#[repr(C)]
pub struct CJson {
    _opaque: [u8; 0],
}

/// `pexec_error`: a message from a hook to pexec.  Set it with `guard`.
#[repr(C)]
pub struct Error {
    pub msg: [c_char; ERROR_MAX],
}

/// `pexec_buf`: bytes being built by pexec.  `grow` is pexec's: append only
/// through `Out`.
#[repr(C)]
pub struct Buf {
    pub data: *mut c_char,
    pub len: usize,
    pub cap: usize,
    pub grow: Option<unsafe extern "C" fn(buf: *mut Buf, need: usize) -> c_int>,
    pub priv_: *mut c_void,
}

pub type InitFn =
    unsafe extern "C" fn(config: *const CJson, state: *mut *mut c_void, err: *mut Error) -> c_int;
pub type FiniFn = unsafe extern "C" fn(state: *mut c_void);
pub type DeserializeFn = unsafe extern "C" fn(
    state: *mut c_void,
    data: *const c_char,
    len: usize,
    value: *mut *mut c_void,
    err: *mut Error,
) -> c_int;
pub type MapFn = unsafe extern "C" fn(
    state: *mut c_void,
    input: *mut c_void,
    output: *mut *mut c_void,
    err: *mut Error,
) -> c_int;
pub type SerializeFn = unsafe extern "C" fn(
    state: *mut c_void,
    value: *const c_void,
    out: *mut Buf,
    err: *mut Error,
) -> c_int;
pub type FreeValueFn = unsafe extern "C" fn(state: *mut c_void, value: *mut c_void);
pub type ReduceFn = unsafe extern "C" fn(
    state: *mut c_void,
    a: *mut c_void,
    b: *mut c_void,
    out: *mut *mut c_void,
    err: *mut Error,
) -> c_int;

/// `pexec_descriptor`.  A hook that is `None` is NULL, a string is a
/// NUL-terminated `const char *` (write it with `cstr!`), null when absent.
#[repr(C)]
pub struct Descriptor {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub init: Option<InitFn>,
    pub fini: Option<FiniFn>,
    pub deserialize: Option<DeserializeFn>,
    pub map: Option<MapFn>,
    pub serialize: Option<SerializeFn>,
    pub free_value: Option<FreeValueFn>,
    // ---- appended in pexec 0.2 ----
    pub config_schema: *const c_char,
    pub input_description: *const c_char,
    pub input_schema: *const c_char,
    pub output_description: *const c_char,
    pub output_schema: *const c_char,
    pub reduce: Option<ReduceFn>,
    pub reduce_initial: *const c_char,
    // New members are appended to the header's descriptor after this one,
    // never inserted; append them here the same way.
}

// The descriptor is immutable data that pexec only reads.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// `PEXEC_DESCRIPTOR_INIT`: the header (`abi_version`, `struct_size`)
    /// with every other member null.  Start a descriptor from it with
    /// `..Descriptor::EMPTY`.
    pub const EMPTY: Descriptor = Descriptor {
        abi_version: ABI_VERSION,
        struct_size: std::mem::size_of::<Descriptor>() as u32,
        name: ptr::null(),
        version: ptr::null(),
        description: ptr::null(),
        init: None,
        fini: None,
        deserialize: None,
        map: None,
        serialize: None,
        free_value: None,
        config_schema: ptr::null(),
        input_description: ptr::null(),
        input_schema: ptr::null(),
        output_description: ptr::null(),
        output_schema: ptr::null(),
        reduce: None,
        reduce_initial: ptr::null(),
    };
}

/// A string literal as a descriptor's `const char *`: `cstr!("collatz")`.
#[macro_export]
macro_rules! cstr {
    ($s:expr) => {
        concat!($s, "\0").as_ptr() as *const std::os::raw::c_char
    };
}

/// Writes `msg` into `err`, cut to `ERROR_MAX - 1` bytes at a character
/// boundary, as `pexec_error_set` does.
///
/// # Safety
/// `err` is null or the `pexec_error` pexec passed to the hook.
pub unsafe fn error_set(err: *mut Error, msg: &str) {
    if err.is_null() {
        return;
    }
    let mut n = msg.len().min(ERROR_MAX - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    let dst = (*err).msg.as_mut_ptr() as *mut u8;
    ptr::copy_nonoverlapping(msg.as_ptr(), dst, n);
    *dst.add(n) = 0;
}

thread_local! {
    /// What the last panic on this thread said, and where.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_PANICS: Once = Once::new();

/// Replaces Rust's default panic hook, which would print the panic on
/// stderr, with one that keeps its message and place for `guard` to report
/// as the hook's error.  The hook is the process's: a plugin's process has no
/// other Rust code.
fn keep_panics_quietly() {
    QUIET_PANICS.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let what = if let Some(s) = payload.downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic".to_string()
            };
            let text = match info.location() {
                Some(at) => format!("{} (at {}:{})", what, at.file(), at.line()),
                None => what,
            };
            PANIC.with(|p| *p.borrow_mut() = Some(text));
        }));
    });
}

/// The boundary between pexec and Rust: runs a hook's `body`.  `Ok` is
/// success (0); `Err(message)` fails the hook with "`plugin`: message"; a
/// panic fails it with "`plugin`: panicked: message (at file:line)".  Either
/// way the item fails, and pexec goes on with the others.
///
/// # Safety
/// `err` is null or the `pexec_error` pexec passed to the hook.
pub unsafe fn guard<F>(err: *mut Error, plugin: &str, body: F) -> c_int
where
    F: FnOnce() -> Result<(), String>,
{
    keep_panics_quietly();
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(msg)) => {
            error_set(err, &format!("{}: {}", plugin, msg));
            -1
        }
        Err(_) => {
            let what = PANIC.with(|p| p.borrow_mut().take());
            let what = what.unwrap_or_else(|| "a panic".to_string());
            error_set(err, &format!("{}: panicked: {}", plugin, what));
            -1
        }
    }
}

/// For the hooks that return nothing (`fini`, `free_value`): runs `body`,
/// and swallows a panic, which has nowhere to go.
pub fn guard_void<F: FnOnce()>(body: F) {
    keep_panics_quietly();
    let _ = panic::catch_unwind(AssertUnwindSafe(body));
}

/// pexec's output buffer, lent to `serialize`.  Implements `fmt::Write`, so
/// `write!(out, ...)` appends to it.
pub struct Out<'a> {
    buf: &'a mut Buf,
}

impl<'a> Out<'a> {
    /// # Safety
    /// `buf` is the `pexec_buf` pexec passed to `serialize`, used only for
    /// that call.
    pub unsafe fn from_raw(buf: *mut Buf) -> Out<'a> {
        Out { buf: &mut *buf }
    }

    /// Appends `bytes` (as `pexec_buf_append`); `Err` when pexec has no
    /// memory to grow the buffer.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        let buf = &mut *self.buf;
        if buf.cap - buf.len < bytes.len() {
            let grow = buf.grow.ok_or("pexec_buf has no grow")?;
            // Safety: grow is pexec's, called as pexec_buf_reserve does.
            if unsafe { grow(buf, bytes.len()) } != 0 {
                return Err("out of memory".to_string());
            }
        }
        // Safety: pexec's buffer now has room for bytes.len() more bytes.
        unsafe {
            ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (buf.data as *mut u8).add(buf.len),
                bytes.len(),
            );
        }
        buf.len += bytes.len();
        Ok(())
    }
}

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.append(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
