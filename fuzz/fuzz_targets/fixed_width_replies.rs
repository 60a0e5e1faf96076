//! See gateway_fuzz::fixed_width_replies (fuzz/src/lib.rs); corpus: fuzz/corpus/fixed_width_replies/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::fixed_width_replies(data));
