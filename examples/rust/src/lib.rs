//! lib.rs - collatz, a pexec plugin in Rust: each item is a positive integer
//! n, and becomes the length and the highest point of its Collatz sequence
//! (n -> n/2 when even, 3n+1 when odd, until 1):
//!
//!     27 -> {"n":27,"steps":111,"peak":9232}
//!
//! What it shows a Rust author (pexec.rs is the part to copy):
//!  - The descriptor is a `#[no_mangle]` static `Descriptor` named
//!    `pexec_plugin`, filled from `Descriptor::EMPTY`.
//!  - Values are its own (no cJSON): `deserialize` reads the item's JSON text
//!    into a boxed `Value`, `map` makes another, `serialize` writes it with
//!    `write!`, `free_value` drops it.  Per-worker state (a cache of short
//!    sequences) is a boxed `State` made in `init` and dropped in `fini`.
//!  - Errors are `Result`s; a panic is caught at the boundary.  Arithmetic is
//!    checked (overflow-checks in Cargo.toml), so a sequence that leaves
//!    64 bits (as that of 9223372036854775807 does at once) panics, and
//!    `guard` makes the panic that item's error: its slot is null, stderr
//!    says why, every other item gets its result.

mod pexec;

use std::fmt::Write;
use std::os::raw::{c_char, c_int, c_void};

use pexec::{guard, guard_void, CJson, Descriptor, Error, Out};

const PLUGIN: &str = "collatz";

/// Sequences of starting points below this are kept, per worker.
const CACHE_BELOW: u64 = 1 << 16;

#[derive(Clone, Copy)]
struct Stats {
    steps: u32,
    peak: u64,
}

struct State {
    /// Stats of the sequence from n, for n < CACHE_BELOW; `None` until seen.
    cache: Vec<Option<Stats>>,
}

/// What deserialize and map make: free_value gets both kinds.
enum Value {
    Input(u64),
    Output { n: u64, stats: Stats },
}

/// The Collatz sequence from n.  Panics when it leaves u64.
fn sequence(state: &mut State, n: u64) -> Stats {
    let mut x = n;
    let mut stats = Stats { steps: 0, peak: n };

    while x != 1 {
        if x < CACHE_BELOW {
            if let Some(rest) = state.cache[x as usize] {
                stats.steps += rest.steps;
                stats.peak = stats.peak.max(rest.peak);
                break;
            }
        }
        x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        stats.steps += 1;
        stats.peak = stats.peak.max(x);
    }
    if n < CACHE_BELOW {
        state.cache[n as usize] = Some(stats);
    }
    stats
}

/// An item's JSON text as a positive integer.
fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let excerpt: String = text.chars().take(40).collect();

    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a positive integer, got {}", excerpt));
    }
    let n: u64 = text
        .parse()
        .map_err(|_| format!("{} does not fit in 64 bits", excerpt))?;
    if n == 0 {
        return Err("expected a positive integer, got 0".to_string());
    }
    Ok(n)
}

fn boxed(value: Value) -> *mut c_void {
    Box::into_raw(Box::new(value)) as *mut c_void
}

// ---- the hooks ----

unsafe extern "C" fn collatz_init(
    config: *const CJson,
    state: *mut *mut c_void,
    err: *mut Error,
) -> c_int {
    guard(err, PLUGIN, || {
        if !config.is_null() {
            return Err("takes no --config".to_string());
        }
        let st = Box::new(State {
            cache: vec![None; CACHE_BELOW as usize],
        });
        *state = Box::into_raw(st) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn collatz_fini(state: *mut c_void) {
    guard_void(|| drop(Box::from_raw(state as *mut State)));
}

unsafe extern "C" fn collatz_deserialize(
    _state: *mut c_void,
    data: *const c_char,
    len: usize,
    value: *mut *mut c_void,
    err: *mut Error,
) -> c_int {
    guard(err, PLUGIN, || {
        let bytes = std::slice::from_raw_parts(data as *const u8, len);
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        *value = boxed(Value::Input(parse(text)?));
        Ok(())
    })
}

unsafe extern "C" fn collatz_map(
    state: *mut c_void,
    input: *mut c_void,
    output: *mut *mut c_void,
    err: *mut Error,
) -> c_int {
    guard(err, PLUGIN, || {
        let st = &mut *(state as *mut State);
        let n = match &*(input as *const Value) {
            Value::Input(n) => *n,
            Value::Output { .. } => return Err("map was given a result".to_string()),
        };
        let stats = sequence(st, n);
        *output = boxed(Value::Output { n, stats });
        Ok(())
    })
}

unsafe extern "C" fn collatz_serialize(
    _state: *mut c_void,
    value: *const c_void,
    out: *mut pexec::Buf,
    err: *mut Error,
) -> c_int {
    guard(err, PLUGIN, || {
        let mut out = Out::from_raw(out);
        match &*(value as *const Value) {
            Value::Output { n, stats } => write!(
                out,
                "{{\"n\":{},\"steps\":{},\"peak\":{}}}",
                n, stats.steps, stats.peak
            )
            .map_err(|_| "out of memory".to_string()),
            Value::Input(_) => Err("serialize was given an input".to_string()),
        }
    })
}

unsafe extern "C" fn collatz_free_value(_state: *mut c_void, value: *mut c_void) {
    guard_void(|| drop(Box::from_raw(value as *mut Value)));
}

/// The one symbol pexec looks for.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static pexec_plugin: Descriptor = Descriptor {
    name: cstr!("collatz"),
    version: cstr!("1.0.0"),
    description: cstr!("the length and peak of each positive integer's Collatz sequence"),
    init: Some(collatz_init),
    fini: Some(collatz_fini),
    deserialize: Some(collatz_deserialize),
    map: Some(collatz_map),
    serialize: Some(collatz_serialize),
    free_value: Some(collatz_free_value),
    input_description: cstr!("a positive integer, at most 18446744073709551615"),
    input_schema: cstr!("{\"type\": \"integer\", \"minimum\": 1}"),
    output_description: cstr!("the sequence's steps to 1 and its highest value"),
    output_schema: cstr!(
        "{\"type\": \"object\", \"required\": [\"n\", \"steps\", \"peak\"], \
         \"properties\": {\"n\": {\"type\": \"integer\"}, \"steps\": {\"type\": \"integer\"}, \
         \"peak\": {\"type\": \"integer\"}}}"
    ),
    ..Descriptor::EMPTY
};
