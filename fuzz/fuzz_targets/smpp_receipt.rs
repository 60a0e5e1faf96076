//! See gateway_fuzz::smpp_receipt (fuzz/src/lib.rs); corpus: fuzz/corpus/smpp_receipt/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::smpp_receipt(data));
