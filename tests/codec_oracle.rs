//! The hand-written hot path agrees with amq-protocol, byte for byte, on valid input and on
//! mangled input (random flips, truncations, insertions). A small deterministic PRNG drives
//! thousands of cases per property, so failures reproduce exactly.
#![allow(clippy::unwrap_used)] // a test fails loudly; the broker never unwraps

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic, AMQPClass, BasicProperties};
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use bytes::BytesMut;
use warren::protocol::encode;
use warren::protocol::fast::{parse_content_header, parse_fast_method, FastMethod};
use warren::protocol::frame::split_frame;

/// xorshift64*: tiny, deterministic, good enough to explore byte strings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn word(&mut self, max: usize) -> String {
        let len = self.below(max as u64 + 1) as usize;
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

fn generate(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .expect("gen")
        .write
}

fn random_properties(r: &mut Rng) -> BasicProperties {
    let mut p = BasicProperties::default();
    if r.bool() {
        p = p.with_content_type(ShortString::from(r.word(20)));
    }
    if r.bool() {
        p = p.with_delivery_mode(if r.bool() { 1 } else { 2 });
    }
    if r.bool() {
        p = p.with_priority(r.below(10) as u8);
    }
    if r.bool() {
        p = p.with_expiration(ShortString::from(r.below(100_000).to_string()));
    }
    if r.bool() {
        p = p.with_correlation_id(ShortString::from(r.word(36)));
    }
    if r.bool() {
        p = p.with_timestamp(r.next());
    }
    if r.bool() {
        let mut t = FieldTable::default();
        for _ in 0..r.below(5) {
            let v = match r.below(8) {
                0 => AMQPValue::Boolean(r.bool()),
                1 => AMQPValue::LongInt(r.next() as i32),
                2 => AMQPValue::LongLongInt(r.next() as i64),
                3 => AMQPValue::LongString(r.word(30).into_bytes().into()),
                4 => AMQPValue::Void,
                5 => AMQPValue::Double(1.5),
                6 => {
                    let mut inner = FieldTable::default();
                    inner.insert(ShortString::from("n"), AMQPValue::ShortInt(7));
                    AMQPValue::FieldTable(inner)
                }
                _ => AMQPValue::Timestamp(r.next()),
            };
            t.insert(ShortString::from(r.word(10)), v);
        }
        p = p.with_headers(t);
    }
    p
}

fn random_fast_method(r: &mut Rng) -> AMQPClass {
    match r.below(4) {
        0 => AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: ShortString::from(r.word(40)),
            routing_key: ShortString::from(r.word(60)),
            mandatory: r.bool(),
            immediate: r.bool(),
        })),
        1 => AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: r.next(),
            multiple: r.bool(),
        })),
        2 => AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: r.next(),
            requeue: r.bool(),
        })),
        _ => AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: r.next(),
            multiple: r.bool(),
            requeue: r.bool(),
        })),
    }
}

/// Does our decoding of a method payload equal amq-protocol's?
fn same_method(ours: &FastMethod<'_>, theirs: &AMQPClass) -> bool {
    use basic::AMQPMethod as M;
    match (ours, theirs) {
        (FastMethod::Publish(p), AMQPClass::Basic(M::Publish(q))) => {
            p.exchange == q.exchange.as_str().as_bytes()
                && p.routing_key == q.routing_key.as_str().as_bytes()
                && p.mandatory == q.mandatory
                && p.immediate == q.immediate
        }
        (
            FastMethod::Ack {
                delivery_tag,
                multiple,
            },
            AMQPClass::Basic(M::Ack(q)),
        ) => *delivery_tag == q.delivery_tag && *multiple == q.multiple,
        (
            FastMethod::Reject {
                delivery_tag,
                requeue,
            },
            AMQPClass::Basic(M::Reject(q)),
        ) => *delivery_tag == q.delivery_tag && *requeue == q.requeue,
        (
            FastMethod::Nack {
                delivery_tag,
                multiple,
                requeue,
            },
            AMQPClass::Basic(M::Nack(q)),
        ) => *delivery_tag == q.delivery_tag && *multiple == q.multiple && *requeue == q.requeue,
        _ => false,
    }
}

/// Random damage: flip, truncate, insert or delete bytes inside the payload.
fn mangle(r: &mut Rng, payload: &mut Vec<u8>) {
    for _ in 0..=r.below(3) {
        if payload.is_empty() {
            payload.push(r.next() as u8);
            continue;
        }
        let at = r.below(payload.len() as u64) as usize;
        match r.below(4) {
            0 => payload[at] ^= 1 << r.below(8),
            1 => payload.truncate(at),
            2 => payload.insert(at, r.next() as u8),
            _ => {
                payload.remove(at);
            }
        }
    }
}

/// Frame `payload` as a method frame and let amq-protocol decide.
fn oracle_method(payload: &[u8]) -> Option<AMQPClass> {
    let mut f = vec![1, 0, 1];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    match parse_frame(&f[..]) {
        Ok((&[], AMQPFrame::Method(_, m))) => Some(m),
        _ => None,
    }
}

#[test]
fn fast_methods_agree_with_amq_protocol_on_valid_and_mangled_input() {
    let mut r = Rng(0x5EED_0001);
    let mut mangled_accepted = 0;
    for i in 0..20_000 {
        let method = random_fast_method(&mut r);
        let wire = generate(&AMQPFrame::Method(1, method.clone()));
        let frame = split_frame(&wire, 131072).unwrap().unwrap();
        let mut payload = frame.payload.to_vec();
        if i % 2 == 1 {
            mangle(&mut r, &mut payload);
        }
        let ours = parse_fast_method(&payload);
        let theirs = oracle_method(&payload);
        match (ours, theirs) {
            // Not one of the hot-path methods any more (class/method ids damaged): the cold
            // path handles it, nothing to compare.
            (None, _) => {}
            (Some(Ok(m)), Some(t)) => {
                assert!(
                    same_method(&m, &t),
                    "case {i}: {m:?} vs {t:?} for {payload:?}"
                );
                if i % 2 == 1 {
                    mangled_accepted += 1;
                }
            }
            (Some(Err(_)), None) => {}
            // The one deliberate difference: like RabbitMQ, a publish's names are not checked
            // for UTF-8 (amq-protocol refuses them).
            (Some(Ok(FastMethod::Publish(p))), None)
                if std::str::from_utf8(p.exchange).is_err()
                    || std::str::from_utf8(p.routing_key).is_err() => {}
            (ours, theirs) => {
                panic!("case {i}: we said {ours:?}, amq-protocol {theirs:?} for {payload:?}")
            }
        }
    }
    assert!(
        mangled_accepted > 100,
        "mangling should still produce some valid methods"
    );
}

#[test]
fn content_headers_agree_with_amq_protocol_on_valid_and_mangled_input() {
    let mut r = Rng(0x5EED_0002);
    for i in 0..20_000 {
        let props = random_properties(&mut r);
        let header = AMQPContentHeader {
            class_id: 60,
            body_size: r.below(1 << 40),
            properties: props,
        };
        let wire = generate(&AMQPFrame::Header(1, header.clone()));
        let frame = split_frame(&wire, 131072).unwrap().unwrap();
        let mut payload = frame.payload.to_vec();
        if i % 2 == 1 {
            mangle(&mut r, &mut payload);
        }
        let mut f = vec![2, 0, 1];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(&payload);
        f.push(0xCE);
        let theirs = match parse_frame(&f[..]) {
            Ok((_, AMQPFrame::Header(_, h))) => Some(h),
            _ => None,
        };
        let ours = parse_content_header(&payload);
        match (ours, theirs) {
            (Ok(h), Some(t)) => {
                assert_eq!(
                    (h.class_id, h.body_size),
                    (t.class_id, t.body_size),
                    "case {i}"
                );
                let view = warren::protocol::properties::view(h.properties).unwrap();
                assert_eq!(
                    view.delivery_mode,
                    *t.properties.delivery_mode(),
                    "case {i}"
                );
                assert_eq!(view.priority, *t.properties.priority(), "case {i}");
                assert_eq!(
                    view.expiration,
                    t.properties.expiration().as_ref().map(|s| s.as_str()),
                    "case {i}"
                );
            }
            (Err(_), None) => {}
            (ours, theirs) => {
                panic!("case {i}: we said {ours:?}, amq-protocol {theirs:?} for {payload:?}")
            }
        }
    }
}

#[test]
fn deliver_get_ok_return_and_confirms_are_byte_identical_to_amq_protocol() {
    let mut r = Rng(0x5EED_0003);
    for _ in 0..5_000 {
        let (tag, redelivered) = (r.next(), r.bool());
        let (exchange, key, ctag) = (r.word(30), r.word(60), r.word(40));
        let mut ours = BytesMut::new();
        encode::put_deliver(&mut ours, 7, &ctag, tag, redelivered, &exchange, &key);
        let theirs = generate(&AMQPFrame::Method(
            7,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: ctag.clone().into(),
                delivery_tag: tag,
                redelivered,
                exchange: exchange.clone().into(),
                routing_key: key.clone().into(),
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let count = r.next() as u32;
        let mut ours = BytesMut::new();
        encode::put_get_ok(&mut ours, 2, tag, redelivered, &exchange, &key, count);
        let theirs = generate(&AMQPFrame::Method(
            2,
            AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                delivery_tag: tag,
                redelivered,
                exchange: exchange.clone().into(),
                routing_key: key.clone().into(),
                message_count: count,
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let mut ours = BytesMut::new();
        encode::put_return(&mut ours, 3, 312, "NO_ROUTE", &exchange, &key);
        let theirs = generate(&AMQPFrame::Method(
            3,
            AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: exchange.clone().into(),
                routing_key: key.clone().into(),
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let multiple = r.bool();
        let mut ours = BytesMut::new();
        encode::put_confirm_ack(&mut ours, 1, tag, multiple);
        let theirs = generate(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: tag,
                multiple,
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let mut ours = BytesMut::new();
        encode::put_confirm_nack(&mut ours, 1, tag, multiple);
        let theirs = generate(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: tag,
                multiple,
                requeue: false,
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);
    }
}

#[test]
fn content_is_byte_identical_and_bodies_split_at_frame_max_minus_8() {
    let mut r = Rng(0x5EED_0004);
    for _ in 0..500 {
        let props = random_properties(&mut r);
        let body: Vec<u8> = (0..r.below(40_000)).map(|_| r.next() as u8).collect();
        let frame_max = 4096 + r.below(20_000) as u32;
        let header = AMQPContentHeader {
            class_id: 60,
            body_size: body.len() as u64,
            properties: props,
        };
        let header_wire = generate(&AMQPFrame::Header(1, header));
        let raw_props = &split_frame(&header_wire, 0).unwrap().unwrap().payload[12..];
        let mut ours = BytesMut::new();
        encode::put_content(&mut ours, 1, raw_props, &body, frame_max);
        let mut theirs = header_wire.clone();
        for chunk in body.chunks(frame_max as usize - 8) {
            theirs.extend_from_slice(&generate(&AMQPFrame::Body(1, chunk.to_vec())));
        }
        assert_eq!(&ours[..], &theirs[..]);
        // Every frame fits frame_max.
        let mut rest = &ours[..];
        while !rest.is_empty() {
            let f = split_frame(rest, frame_max).unwrap().unwrap();
            rest = &rest[f.wire_len()..];
        }
    }
}
