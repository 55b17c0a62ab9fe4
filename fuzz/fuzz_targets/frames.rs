//! The frame reader: any byte stream is split into frames or refused, never a panic, and a
//! frame that is accepted is exactly what was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::protocol::frame::{frame_end_fault_len, split_frame};

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    // frame_max as a client could negotiate it (0 = none).
    let frame_max = u32::from_be_bytes(*head) % (1 << 20);
    loop {
        match split_frame(rest, frame_max) {
            Ok(Some(f)) => {
                assert_eq!(&rest[7..7 + f.payload.len()], f.payload);
                assert_eq!(rest[f.wire_len() - 1], 0xCE);
                rest = &rest[f.wire_len()..];
            }
            Ok(None) => break,
            Err(e) => {
                assert_eq!(e.code, 501);
                if let Some(skip) = frame_end_fault_len(rest, frame_max) {
                    assert!(skip <= rest.len());
                    rest = &rest[skip..];
                } else {
                    break;
                }
            }
        }
    }
});
