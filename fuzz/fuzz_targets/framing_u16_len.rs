//! See gateway_fuzz::framing_u16_len (fuzz/src/lib.rs); corpus: fuzz/corpus/framing_u16_len/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::framing_u16_len(data));
