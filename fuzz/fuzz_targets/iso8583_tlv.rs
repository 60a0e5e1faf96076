//! See gateway_fuzz::iso8583_tlv (fuzz/src/lib.rs); corpus: fuzz/corpus/iso8583_tlv/.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::iso8583_tlv(data));
