//! Errors as callroom-server answers them: a stable code from the protocol, the same status,
//! a bounded message, and `Retry-After` where the server sends one.

use callroom_protocol::{ErrorBody, ErrorCode, ErrorResponse};

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds to wait before retrying, when the server says so.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`, its `Retry-After` the server's for that code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let retry_after = match code {
            ErrorCode::TooManyPolls | ErrorCode::RecipientBacklog => Some(1),
            ErrorCode::StorageFull => Some(5),
            _ => None,
        };
        Self {
            code,
            message: bounded(&message.into()),
            retry_after,
        }
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidJson, format!("invalid JSON: {detail}"))
    }

    /// 400 `invalid_input`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "missing or invalid token; join again",
        )
    }

    /// 401 `replaced`.
    pub fn replaced() -> Self {
        Self::new(
            ErrorCode::Replaced,
            "another host took over this hub; join again to take it back",
        )
    }

    /// 429 `rate_limited`, retry in `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut error = Self::new(
            ErrorCode::RateLimited,
            format!("too many messages; retry in {seconds} s"),
        );
        error.retry_after = Some(seconds);
        error
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::BodyTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 403 `invalid_ticket`.
    pub fn invalid_ticket(detail: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidTicket,
            format!("invalid ticket: {detail}"),
        )
    }

    /// 500 `internal`; the cause goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this endpoint",
        )
    }

    /// The HTTP status callroom-server answers this code with.
    pub fn status(&self) -> u16 {
        status_of(self.code)
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned()
        })
    }
}

/// The status of each code, as callroom-server answers.
pub fn status_of(code: ErrorCode) -> u16 {
    use ErrorCode::*;
    match code {
        InvalidJson | InvalidInput | UnknownType | CursorAhead => 400,
        CursorExpired => 410,
        BodyTooLarge => 413,
        Unauthorized | Replaced | TicketRequired => 401,
        InvalidTicket | Forbidden | OriginNotAllowed => 403,
        PeerNotFound => 404,
        RoleMismatch | TopologyMismatch | RoomFull | HostTaken => 409,
        RateLimited | TooManyPolls | RecipientBacklog => 429,
        MethodNotAllowed => 405,
        StorageFull => 507,
        UnsupportedMediaType => 415,
        RequestTimeout => 408,
        TurnUnavailable => 502,
        ServerBusy => 503,
        _ => 500,
    }
}

pub use callroom_rules::bounded;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_servers_status_code_and_retry_hint() {
        let e = ApiError::rate_limited(3);
        assert_eq!((e.status(), e.retry_after), (429, Some(3)));
        assert_eq!(ApiError::unauthorized().status(), 401);
        assert_eq!(
            ApiError::new(ErrorCode::StorageFull, "full").retry_after,
            Some(5)
        );
        let body: serde_json::Value = serde_json::from_str(&ApiError::replaced().body()).unwrap();
        assert_eq!(body["error"]["code"], "replaced");
    }
}
