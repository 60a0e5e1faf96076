//! See gateway_fuzz::smpp_frame (fuzz/src/lib.rs); corpus: fuzz/corpus/smpp_frame/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::smpp_frame(data));
