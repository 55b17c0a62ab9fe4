//! Field tables as stored in the definitions (queue and binding arguments): decoding never
//! panics or overflows the stack, and what decodes encodes back to bytes that decode the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::protocol::table::{decode_table, encode_table, value_text};

fuzz_target!(|data: &[u8]| {
    if let Some(t) = decode_table(data) {
        for v in t.inner().values() {
            let _ = value_text(v);
        }
        // Compared as bytes: a NaN in a table is not equal to itself.
        let once = encode_table(&t);
        let back = decode_table(&once).expect("our own encoding decodes");
        assert_eq!(encode_table(&back), once);
    }
});
