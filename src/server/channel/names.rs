//! RabbitMQ strips CR and LF from queue and exchange names (rabbit_channel:strip_cr_lf) in
//! exchange.declare/delete/bind/unbind and queue.declare/delete/bind/unbind: the names only,
//! never routing keys, and not in basic.consume, basic.get or queue.purge.

use crate::protocol::{exchange, queue};
use crate::protocol::{AMQPClass, ShortString};

fn strip(name: &mut ShortString) {
    if name.as_str().contains(['\r', '\n']) {
        let kept: String = name
            .as_str()
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        *name = kept.into();
    }
}

/// The method with CR and LF removed from the names RabbitMQ cleans.
pub fn strip_cr_lf(mut method: AMQPClass) -> AMQPClass {
    use AMQPClass as C;
    match &mut method {
        C::Exchange(exchange::AMQPMethod::Declare(m)) => strip(&mut m.exchange),
        C::Exchange(exchange::AMQPMethod::Delete(m)) => strip(&mut m.exchange),
        C::Exchange(exchange::AMQPMethod::Bind(m)) => {
            strip(&mut m.destination);
            strip(&mut m.source);
        }
        C::Exchange(exchange::AMQPMethod::Unbind(m)) => {
            strip(&mut m.destination);
            strip(&mut m.source);
        }
        C::Queue(queue::AMQPMethod::Declare(m)) => strip(&mut m.queue),
        C::Queue(queue::AMQPMethod::Delete(m)) => strip(&mut m.queue),
        C::Queue(queue::AMQPMethod::Bind(m)) => {
            strip(&mut m.queue);
            strip(&mut m.exchange);
        }
        C::Queue(queue::AMQPMethod::Unbind(m)) => {
            strip(&mut m.queue);
            strip(&mut m.exchange);
        }
        _ => {}
    }
    method
}
