//! Properties of the codec and the on-disk records, checked with proptest (shrinking to the
//! smallest failing case): what is written reads back the same, and damaged or arbitrary
//! input is refused without a panic. The cargo-fuzz targets in `fuzz/` explore the same code
//! for longer; crashes they found are kept as cases at the end of this file.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

use amq_protocol::frame::{gen_frame, parse_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic, AMQPClass};
use bytes::BytesMut;
use proptest::prelude::*;
use warren::broker::message::Message;
use warren::protocol::encode;
use warren::protocol::fast::{parse_fast_method, FastMethod};
use warren::protocol::frame::{frame_end_fault_len, split_frame};
use warren::protocol::table::decode_table;
use warren::store::record::{put_ack, put_message, read_acks, read_message, Read};
use warren::store::{Definitions, QueueDef};

fn short_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=255)
}

fn short_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{0,60}"
}

/// The payload of a basic.publish with raw names.
fn publish_payload(exchange: &[u8], key: &[u8], flags: u8) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 40, 0, 0, exchange.len() as u8];
    p.extend_from_slice(exchange);
    p.push(key.len() as u8);
    p.extend_from_slice(key);
    p.push(flags);
    p
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

proptest! {
    /// basic.publish: whatever names and flags were sent come back from the hot-path parser.
    #[test]
    fn publish_round_trip(exchange in short_bytes(), key in short_bytes(), flags in 0u8..4) {
        let payload = publish_payload(&exchange, &key, flags);
        match parse_fast_method(&payload) {
            Some(Ok(FastMethod::Publish(p))) => {
                prop_assert_eq!(p.exchange, &exchange[..]);
                prop_assert_eq!(p.routing_key, &key[..]);
                prop_assert_eq!(p.mandatory, flags & 1 != 0);
                prop_assert_eq!(p.immediate, flags & 2 != 0);
            }
            other => prop_assert!(false, "not parsed: {:?}", other),
        }
    }

    /// A truncated hot-path method is refused, never misread.
    #[test]
    fn truncated_publish_is_refused(exchange in short_bytes(), key in short_bytes(), cut in 4usize..600) {
        let payload = publish_payload(&exchange, &key, 0);
        let cut = cut.min(payload.len() - 1);
        prop_assert!(matches!(parse_fast_method(&payload[..cut]), Some(Err(_))));
    }

    /// Frames: a sequence of frames splits back into exactly those frames; a wrong end octet
    /// is refused and skipped by its length.
    #[test]
    fn frames_split_back(frames in proptest::collection::vec((1u8..=3, any::<u16>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..8), bad in any::<bool>()) {
        let mut wire = Vec::new();
        for (kind, ch, payload) in &frames {
            wire.extend_from_slice(&frame(*kind, *ch, payload));
        }
        if bad {
            let end = frame(frames[0].0, frames[0].1, &frames[0].2).len() - 1;
            wire[end] = 0;
            prop_assert!(split_frame(&wire, 0).is_err());
            prop_assert_eq!(frame_end_fault_len(&wire, 0), Some(end + 1));
            return Ok(());
        }
        let mut rest = &wire[..];
        for (kind, ch, payload) in &frames {
            let f = split_frame(rest, 0).expect("valid").expect("complete");
            prop_assert_eq!((f.kind, f.channel, f.payload), (*kind, *ch, &payload[..]));
            rest = &rest[f.wire_len()..];
        }
        prop_assert!(rest.is_empty());
    }

    /// basic.deliver as encoded by hand is what amq-protocol reads, for any UTF-8 names.
    #[test]
    fn deliver_matches_amq_protocol(tag in short_text(), delivery_tag in any::<u64>(), redelivered in any::<bool>(), exchange in short_text(), key in short_text()) {
        let mut out = BytesMut::new();
        encode::put_deliver(&mut out, 3, &tag, delivery_tag, redelivered, &exchange, &key);
        let Ok((_, AMQPFrame::Method(3, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))))) = parse_frame(&out[..]) else {
            return Err(TestCaseError::fail("amq-protocol could not read it"));
        };
        prop_assert_eq!(d.consumer_tag.as_str(), tag.as_str());
        prop_assert_eq!(d.delivery_tag, delivery_tag);
        prop_assert_eq!(d.redelivered, redelivered);
        prop_assert_eq!(d.exchange.as_str(), exchange.as_str());
        prop_assert_eq!(d.routing_key.as_str(), key.as_str());
    }

    /// A stored message: the record reads back the same; every truncation is damage.
    #[test]
    fn message_record_round_trip(seq in any::<u64>(), exchange in short_text(), key in short_bytes(), props in proptest::collection::vec(any::<u8>(), 0..64), body in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut buf = Vec::new();
        put_message(&mut buf, seq, &exchange, &key, &props, &body);
        match read_message(&buf) {
            Read::Record(m, used) => {
                prop_assert_eq!(used, buf.len());
                prop_assert_eq!(m.seq, seq);
                prop_assert_eq!(m.exchange, exchange);
                prop_assert_eq!(m.routing_key, key);
                prop_assert_eq!(m.properties, props);
                prop_assert_eq!(m.body, body);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        for cut in [1, buf.len() / 2, buf.len() - 1] {
            prop_assert_eq!(read_message(&buf[..cut]), Read::Damaged);
        }
    }

    /// Ack records read back in order; a torn tail is not counted.
    #[test]
    fn ack_records_round_trip(seqs in proptest::collection::vec(any::<u64>(), 0..50), torn in 0usize..12) {
        let mut buf = Vec::new();
        for s in &seqs {
            put_ack(&mut buf, *s);
        }
        let whole = buf.len();
        buf.extend_from_slice(&[0xAB; 12][..torn]);
        let mut back = Vec::new();
        let good = read_acks(&buf, |s| back.push(s));
        prop_assert_eq!(good, whole);
        prop_assert_eq!(back, seqs);
    }

    /// A message built from a publish keeps its parts byte for byte.
    #[test]
    fn message_keeps_its_parts(exchange in short_text(), key in short_bytes(), body in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let m = Message::new(&exchange, &key, &[0, 0], &body);
        prop_assert_eq!(m.exchange(), exchange.as_str());
        prop_assert_eq!(m.routing_key_bytes(), &key[..]);
        prop_assert_eq!(m.body(), &body[..]);
        prop_assert_eq!(m.properties(), &[0u8, 0][..]);
    }

    /// The definitions file: what is saved loads back; a flipped byte is detected.
    #[test]
    fn definitions_round_trip(names in proptest::collection::vec(short_text(), 0..6), flip in any::<prop::sample::Index>()) {
        let d = Definitions {
            queues: names.iter().map(|n| QueueDef {
                vhost: "/".into(),
                name: n.clone(),
                auto_delete: n.len() % 2 == 0,
                arguments: vec![0, 0, 0, 0],
                log: format!("log-{n}"),
            }).collect(),
            ..Definitions::default()
        };
        let dir = std::env::temp_dir().join(format!("warren-prop-{}-{}", std::process::id(), names.len()));
        std::fs::create_dir_all(&dir).expect("dir");
        d.save(&dir).expect("save");
        prop_assert_eq!(Definitions::load(&dir).expect("load"), d.clone());
        let path = dir.join("definitions.bin");
        let mut bytes = std::fs::read(&path).expect("read");
        let i = flip.index(bytes.len());
        bytes[i] ^= 0x40;
        prop_assert_ne!(Definitions::decode(&bytes), Some(d));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Stored field tables: arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_tables_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_table(&bytes);
    }
}

/// A stored table nested 100,000 deep (a damaged or crafted data directory) is refused,
/// not parsed into a stack overflow.
#[test]
fn deeply_nested_stored_table_is_refused() {
    let depth = 100_000u32;
    // Level k is a table holding one entry "k" of type 'F' whose value is level k - 1; level
    // 0 is the empty table. Level k's body is 7k bytes: written outermost first.
    let mut t: Vec<u8> = Vec::with_capacity(7 * depth as usize + 4);
    for k in (1..=depth).rev() {
        t.extend_from_slice(&(7 * k).to_be_bytes());
        t.extend_from_slice(&[1, b'k', b'F']);
    }
    t.extend_from_slice(&[0, 0, 0, 0]);
    assert!(decode_table(&t).is_none());
}

/// amq-protocol itself reads what gen_frame writes for a publish with UTF-8 names, and our
/// parser agrees (the oracle case of `codec_oracle.rs`, kept here with the properties).
#[test]
fn publish_agrees_with_amq_protocol() {
    let wire = gen_frame(&AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "ex".into(),
            routing_key: "rk".into(),
            mandatory: true,
            immediate: false,
        })),
    ))(WriteContext::from(Vec::new()))
    .expect("gen")
    .write;
    let f = split_frame(&wire, 0).expect("frame").expect("whole");
    assert!(matches!(
        parse_fast_method(f.payload),
        Some(Ok(FastMethod::Publish(p))) if p.exchange == b"ex" && p.routing_key == b"rk" && p.mandatory
    ));
}
