//! Method frames: the hand-written hot path and the cold path (amq-protocol behind our
//! nesting check) on any payload. No panic, no stack overflow; a method the cold path
//! accepts re-encodes to a payload that parses to the same method; the hot path agrees with
//! the cold one wherever both accept.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren::protocol::cold::{erlang_binary, is_known_method, parse_method};
use warren::protocol::encode::put_method;
use warren::protocol::fast::{method_ids, parse_fast_method, FastMethod};
use warren::protocol::frame::split_frame;
use warren::protocol::AMQPClass;

fuzz_target!(|payload: &[u8]| {
    let fast = parse_fast_method(payload);
    let cold = parse_method(payload);
    if let Some((class, method)) = method_ids(payload) {
        let _ = is_known_method(class, method);
    }
    let _ = erlang_binary(payload);
    if let (Some(Ok(FastMethod::Ack { delivery_tag, multiple })), Some(m)) = (&fast, &cold) {
        let AMQPClass::Basic(amq_protocol::protocol::basic::AMQPMethod::Ack(a)) = m else {
            panic!("fast path said ack, cold path {m:?}");
        };
        assert_eq!((a.delivery_tag, a.multiple), (*delivery_tag, *multiple));
    }
    if let Some(m) = cold {
        // Encoded again, it parses to a method that encodes to the same bytes (compared as
        // bytes: a NaN in a table is not equal to itself).
        let mut once = BytesMut::new();
        put_method(&mut once, 1, m);
        if let Ok(Some(f)) = split_frame(&once, 0) {
            let again = parse_method(f.payload).expect("our own encoding parses");
            let mut twice = BytesMut::new();
            put_method(&mut twice, 1, again);
            assert_eq!(once, twice, "round trip");
        }
    }
});
