//! One error type that speaks AMQP.
//!
//! Domain code returns `Err(AmqpError::not_found(..))`; the server layer decides, in exactly one
//! place (`AmqpError::is_hard`), whether that closes the channel or the whole connection.
//! Reply texts follow RabbitMQ's `NAME - explanation` wording, because clients show them.

use std::fmt;

/// AMQP 0-9-1 reply codes (spec section 1.2, "constants").
pub mod code {
    pub const CONNECTION_FORCED: u16 = 320;
    pub const CONTENT_TOO_LARGE: u16 = 311;
    pub const NO_ROUTE: u16 = 312;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const PRECONDITION_FAILED: u16 = 406;
    pub const INVALID_PATH: u16 = 402;
    pub const FRAME_ERROR: u16 = 501;
    pub const SYNTAX_ERROR: u16 = 502;
    pub const COMMAND_INVALID: u16 = 503;
    pub const CHANNEL_ERROR: u16 = 504;
    pub const UNEXPECTED_FRAME: u16 = 505;
    pub const RESOURCE_ERROR: u16 = 506;
    pub const NOT_ALLOWED: u16 = 530;
    pub const NOT_IMPLEMENTED: u16 = 540;
    pub const INTERNAL_ERROR: u16 = 541;
}

/// RabbitMQ cuts reply texts to fit a shortstr: 252 bytes plus "...".
const MAX_REPLY_TEXT: usize = 255;

/// An AMQP exception: a reply code, RabbitMQ-style text, and the method that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    /// Reply code (see [`code`]).
    pub code: u16,
    /// Full reply text, including the `NAME - ` prefix.
    pub text: String,
    /// Class of the failing method (0 when not caused by a method).
    pub class_id: u16,
    /// Method of the failing method (0 when not caused by a method).
    pub method_id: u16,
    /// A crash, not a refusal: it names no method (see [`AmqpError::crash`]).
    anonymous: bool,
}

fn code_name(code: u16) -> &'static str {
    match code {
        code::CONNECTION_FORCED => "CONNECTION_FORCED",
        code::CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        code::NO_ROUTE => "NO_ROUTE",
        code::ACCESS_REFUSED => "ACCESS_REFUSED",
        code::NOT_FOUND => "NOT_FOUND",
        code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
        code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        code::INVALID_PATH => "INVALID_PATH",
        code::FRAME_ERROR => "FRAME_ERROR",
        code::SYNTAX_ERROR => "SYNTAX_ERROR",
        code::COMMAND_INVALID => "COMMAND_INVALID",
        code::CHANNEL_ERROR => "CHANNEL_ERROR",
        code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        code::RESOURCE_ERROR => "RESOURCE_ERROR",
        code::NOT_ALLOWED => "NOT_ALLOWED",
        code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        _ => "INTERNAL_ERROR",
    }
}

impl AmqpError {
    /// Builds an error with RabbitMQ's `NAME - explanation` text.
    pub fn new(code: u16, explanation: impl fmt::Display) -> Self {
        let mut text = format!("{} - {}", code_name(code), explanation);
        truncate_reply_text(&mut text);
        AmqpError {
            code,
            text,
            class_id: 0,
            method_id: 0,
            anonymous: false,
        }
    }

    /// Records the method that failed (goes into channel.close / connection.close).
    pub fn with_method(mut self, (class_id, method_id): (u16, u16)) -> Self {
        if self.class_id == 0 && self.method_id == 0 && !self.anonymous {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    /// Hard errors close the connection; soft ones only the channel (spec 1.2 constants).
    pub fn is_hard(&self) -> bool {
        matches!(
            self.code,
            code::CONNECTION_FORCED | code::INVALID_PATH | code::FRAME_ERROR
                ..=code::RESOURCE_ERROR
                    | code::NOT_ALLOWED
                    | code::NOT_IMPLEMENTED
                    | code::INTERNAL_ERROR
        )
    }

    pub fn not_found(explanation: impl fmt::Display) -> Self {
        Self::new(code::NOT_FOUND, explanation)
    }
    pub fn precondition_failed(explanation: impl fmt::Display) -> Self {
        Self::new(code::PRECONDITION_FAILED, explanation)
    }
    pub fn access_refused(explanation: impl fmt::Display) -> Self {
        Self::new(code::ACCESS_REFUSED, explanation)
    }
    pub fn resource_locked(explanation: impl fmt::Display) -> Self {
        Self::new(code::RESOURCE_LOCKED, explanation)
    }
    pub fn not_allowed(explanation: impl fmt::Display) -> Self {
        Self::new(code::NOT_ALLOWED, explanation)
    }
    pub fn command_invalid(explanation: impl fmt::Display) -> Self {
        Self::new(code::COMMAND_INVALID, explanation)
    }
    pub fn channel_error(explanation: impl fmt::Display) -> Self {
        Self::new(code::CHANNEL_ERROR, explanation)
    }
    pub fn unexpected_frame(explanation: impl fmt::Display) -> Self {
        Self::new(code::UNEXPECTED_FRAME, explanation)
    }
    pub fn frame_error(explanation: impl fmt::Display) -> Self {
        Self::new(code::FRAME_ERROR, explanation)
    }
    pub fn syntax_error(explanation: impl fmt::Display) -> Self {
        Self::new(code::SYNTAX_ERROR, explanation)
    }
    pub fn not_implemented(explanation: impl fmt::Display) -> Self {
        Self::new(code::NOT_IMPLEMENTED, explanation)
    }
    pub fn internal_error(explanation: impl fmt::Display) -> Self {
        Self::new(code::INTERNAL_ERROR, explanation)
    }
    /// What a client sees when a RabbitMQ channel process crashes: connection.close 541 with
    /// the bare text `INTERNAL_ERROR` and no method (clients and tests compare it).
    pub fn crash() -> Self {
        AmqpError {
            code: code::INTERNAL_ERROR,
            text: "INTERNAL_ERROR".to_string(),
            class_id: 0,
            method_id: 0,
            anonymous: true,
        }
    }
    pub fn connection_forced(explanation: impl fmt::Display) -> Self {
        Self::new(code::CONNECTION_FORCED, explanation)
    }
}

/// Cuts `text` to 252 bytes plus `...` when it would not fit a shortstr (RabbitMQ does the same).
fn truncate_reply_text(text: &mut String) {
    if text.len() <= MAX_REPLY_TEXT {
        return;
    }
    let mut cut = MAX_REPLY_TEXT - 3;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str("...");
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (class {}, method {})",
            self.code, self.text, self.class_id, self.method_id
        )
    }
}

impl std::error::Error for AmqpError {}

/// Result alias for anything that can fail with an AMQP exception.
pub type AmqpResult<T> = Result<T, AmqpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_rabbitmq_format() {
        let e = AmqpError::not_found("no queue 'q' in vhost '/'");
        assert_eq!(e.text, "NOT_FOUND - no queue 'q' in vhost '/'");
        assert!(!e.is_hard());
        assert!(AmqpError::frame_error("x").is_hard());
        assert!(AmqpError::not_allowed("x").is_hard());
    }

    #[test]
    fn long_texts_are_cut_to_a_shortstr() {
        let e = AmqpError::not_found("é".repeat(300));
        assert!(e.text.len() <= 255);
        assert!(e.text.ends_with("..."));
    }
}
