#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudproxy_fuzz::targets::ap::run(data));
