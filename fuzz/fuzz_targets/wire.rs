//! Fuzz target `wire`: feeds arbitrary bytes to [`vc_fuzz::wire`], which
//! panics only on a real bug (a decoder panicking, or a round trip failing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vc_fuzz::wire(data);
});
