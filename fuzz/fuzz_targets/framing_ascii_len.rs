//! See gateway_fuzz::framing_ascii_len (fuzz/src/lib.rs); corpus: fuzz/corpus/framing_ascii_len/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::framing_ascii_len(data));
