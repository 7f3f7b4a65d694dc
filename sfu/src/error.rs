//! Cloudflare Calls error codes, request-level ([`CallsError`]) and per-track ([`TrackError`]).

use crate::calls::ErrorResponse;

/// A request-level failure: the HTTP status and Cloudflare's `errorCode` / `errorDescription`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {description}")]
pub struct CallsError {
    /// HTTP status to answer with.
    pub status: u16,
    /// Stable Cloudflare error code.
    pub code: &'static str,
    /// Human-readable explanation; never internals.
    pub description: String,
}

impl CallsError {
    /// 400 `decoding_error`: the body could not be decoded.
    pub fn decoding(description: impl Into<String>) -> Self {
        Self::new(400, codes::DECODING_ERROR, description)
    }

    /// 406 `invalid_params`: missing or contradictory parameters, or overlapping mutations.
    pub fn invalid_params(description: impl Into<String>) -> Self {
        Self::new(406, codes::INVALID_PARAMS, description)
    }

    /// 410 `session_error`: the session does not exist or is closed.
    pub fn session_gone(description: impl Into<String>) -> Self {
        Self::new(410, codes::SESSION_ERROR, description)
    }

    /// 425 `session_error`: the session exists but cannot take this yet.
    pub fn session_too_early(description: impl Into<String>) -> Self {
        Self::new(425, codes::SESSION_ERROR, description)
    }

    /// 400 `invalid_session_description`: the SDP could not be parsed or applied.
    pub fn invalid_sdp(description: impl Into<String>) -> Self {
        Self::new(400, codes::INVALID_SESSION_DESCRIPTION, description)
    }

    /// 503 `retryable_transient_error`: try again (the SFU is at capacity).
    pub fn retryable(description: impl Into<String>) -> Self {
        Self::new(503, codes::RETRYABLE_TRANSIENT_ERROR, description)
    }

    /// 500 `internal_error`.
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(500, codes::INTERNAL_ERROR, description)
    }

    fn new(status: u16, code: &'static str, description: impl Into<String>) -> Self {
        CallsError {
            status,
            code,
            description: description.into(),
        }
    }

    /// The JSON body Cloudflare answers with.
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse {
            error_code: self.code.to_string(),
            error_description: self.description.clone(),
        }
    }
}

/// A per-track failure inside a 200 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackError {
    /// Stable Cloudflare error code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub description: String,
}

impl TrackError {
    pub(crate) fn new(code: &'static str, description: impl Into<String>) -> Self {
        TrackError {
            code,
            description: description.into(),
        }
    }
}

/// Cloudflare's error codes, defined once in the protocol crate.
pub use callroom_protocol::calls::codes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_cloudflare_statuses_and_bodies() {
        let e = CallsError::session_gone("no such session");
        assert_eq!((e.status, e.code), (410, "session_error"));
        let body = serde_json::to_value(e.to_response()).expect("encodes");
        assert_eq!(
            body,
            serde_json::json!({"errorCode": "session_error", "errorDescription": "no such session"})
        );
        assert_eq!(CallsError::decoding("x").status, 400);
        assert_eq!(CallsError::invalid_params("x").status, 406);
        assert_eq!(CallsError::session_too_early("x").status, 425);
        assert_eq!(
            CallsError::invalid_sdp("x").code,
            "invalid_session_description"
        );
    }
}
