//! The API's answers as RabbitMQ writes them: JSON errors with `error` and `reason`, 201 for
//! a PUT that created, 204 for one that updated and for a DELETE.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl ApiError {
    /// 404, RabbitMQ's text.
    pub fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "Object Not Found",
            reason: "Not Found".into(),
        }
    }

    /// 400 with the reason.
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            reason: reason.into(),
        }
    }

    /// 400 with RabbitMQ's own error atom (`page_out_of_range`, ...).
    pub fn bad_request_as(error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error,
            reason: reason.into(),
        }
    }

    /// 401 for a failed login (RabbitMQ: `not_authorized`, `Login failed`).
    pub fn login_failed() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorized",
            reason: "Login failed".into(),
        }
    }

    /// 401 for a user without the tag the endpoint needs (RabbitMQ spells it `not_authorised`
    /// here, e.g. `Not administrator user`).
    pub fn not_authorised(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorised",
            reason: reason.into(),
        }
    }

    /// What an AMQP refusal becomes over HTTP, as RabbitMQ's management plugin answers: 404
    /// for NOT_FOUND, 401 for ACCESS_REFUSED, 400 with the explanation for the rest.
    pub fn from_amqp(e: crate::error::AmqpError) -> ApiError {
        use crate::error::code;
        let reason = match e.text.split_once(" - ") {
            Some((_, explanation)) => explanation.to_string(),
            None => e.text.clone(),
        };
        match e.code {
            code::NOT_FOUND => ApiError::not_found(),
            code::ACCESS_REFUSED => ApiError::not_authorised(reason),
            code::INTERNAL_ERROR => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error: "internal_error",
                reason,
            },
            _ => ApiError::bad_request(reason),
        }
    }

    /// 500 when the data directory could not be written.
    pub fn internal(e: std::io::Error) -> ApiError {
        tracing::error!(error = %e, "management API: a change could not be recorded");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal_error",
            reason: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.error, "reason": self.reason}));
        if self.status == StatusCode::UNAUTHORIZED {
            (
                self.status,
                [(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"RabbitMQ Management\"",
                )],
                body,
            )
                .into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A PUT's answer: 201 when it created, 204 when it replaced.
pub fn put_done(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Any path the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}
