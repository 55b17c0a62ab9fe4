//! Class and method ids by name (AMQP 0-9-1 spec, section 1), for the replies that name the
//! method that failed (channel.close and connection.close carry them).

/// A method's (class id, method id).
pub type MethodId = (u16, u16);

pub const CONNECTION_OPEN: MethodId = (10, 40);
pub const CONNECTION_UPDATE_SECRET: MethodId = (10, 70);
pub const CHANNEL_OPEN: MethodId = (20, 10);
pub const EXCHANGE_DECLARE: MethodId = (40, 10);
pub const EXCHANGE_DELETE: MethodId = (40, 20);
pub const EXCHANGE_BIND: MethodId = (40, 30);
pub const EXCHANGE_UNBIND: MethodId = (40, 40);
pub const QUEUE_DECLARE: MethodId = (50, 10);
pub const QUEUE_BIND: MethodId = (50, 20);
pub const QUEUE_DELETE: MethodId = (50, 40);
pub const QUEUE_UNBIND: MethodId = (50, 50);
pub const BASIC_PUBLISH: MethodId = (60, 40);
pub const BASIC_QOS: MethodId = (60, 10);
pub const BASIC_ACK: MethodId = (60, 80);
pub const BASIC_REJECT: MethodId = (60, 90);
pub const BASIC_NACK: MethodId = (60, 120);
