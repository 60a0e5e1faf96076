//! See gateway_fuzz::pain002_read (fuzz/src/lib.rs); corpus: fuzz/corpus/pain002_read/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::pain002_read(data));
