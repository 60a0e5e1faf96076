//! See gateway_fuzz::iso8583_decode (fuzz/src/lib.rs); corpus: fuzz/corpus/iso8583_decode/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::iso8583_decode(data));
