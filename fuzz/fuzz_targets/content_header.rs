//! Content headers and message properties: parsing, the properties view the broker reads,
//! rewriting (dead-lettering, direct reply-to) and building a stored message from them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::broker::message::Message;
use warren::protocol::fast::parse_content_header;
use warren::protocol::properties;

fuzz_target!(|payload: &[u8]| {
    if let Ok(h) = parse_content_header(payload) {
        let raw = h.properties;
        let view = properties::view(raw);
        assert_eq!(view.is_ok(), properties::validate(raw).is_ok());
        let m = Message::new("ex", b"rk", raw, b"body");
        assert_eq!(m.properties(), raw);
        assert_eq!(m.body(), b"body");
        let _ = m.view();
        if view.is_ok() {
            let rewritten = properties::rewrite(raw, |_| {});
            let _ = properties::view(&rewritten);
            let _ = properties::without_expiration;
        }
    }
    let _ = properties::view(payload);
});
