//! One error type for every handler: a stable code, a fitting status, a JSON body, and the
//! internal cause logged rather than returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callroom_protocol::{ErrorBody, ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not valid JSON, or not the expected shape.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A field has a value outside its rules.
    #[error("{0}")]
    InvalidInput(String),
    /// `type` is not a known request type.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The body is larger than the configured limit.
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No token, or a token of no current peer.
    #[error("missing or invalid token; join again")]
    Unauthorized,
    /// This token's hub host was replaced by a newer host of the same room.
    #[error("another host took over this hub; join again to take it back")]
    Replaced,
    /// The server needs a join ticket and none was given.
    #[error("this server requires a join ticket")]
    TicketRequired,
    /// The ticket is forged, expired, or for another room or role.
    #[error("invalid ticket: {0}")]
    InvalidTicket(String),
    /// The recipient is not a peer of the sender's room.
    #[error("no peer `{0}` in this room")]
    PeerNotFound(String),
    /// The topology does not allow this (a guest messaging another guest).
    #[error("{0}")]
    Forbidden(String),
    /// The room's topology does not admit the requested role.
    #[error("{0}")]
    RoleMismatch(String),
    /// The room has another topology than the join asked for.
    #[error("{0}")]
    TopologyMismatch(String),
    /// A live host holds the hub's seat.
    #[error(
        "this hub has a live host: join with its reclaim key or a host ticket to take the seat"
    )]
    HostTaken,
    /// The room has reached its capacity.
    #[error("room is full ({0} peers)")]
    RoomFull(u32),
    /// Too many relays; retry after the given seconds.
    #[error("too many messages; retry in {0} s")]
    RateLimited(u64),
    /// The recipient has this many messages it has not acknowledged.
    #[error("the recipient is {0} messages behind; retry later")]
    RecipientBacklog(u64),
    /// The database is at the server's storage budget (bytes): relays are refused.
    #[error("the server's message storage is full ({0} bytes); retry later")]
    StorageFull(u64),
    /// Too many concurrent long-polls for one peer.
    #[error("at most {0} concurrent polls per peer")]
    TooManyPolls(u32),
    /// `since` is ahead of anything sent to this peer.
    #[error("cursor {since} is ahead of the last message {last}")]
    CursorAhead {
        /// Requested cursor.
        since: u64,
        /// Last sequence number issued to this peer.
        last: u64,
    },
    /// Messages after the cursor expired unread.
    #[error("messages after cursor {0} expired unread (--message-ttl); join again")]
    CursorExpired(u64),
    /// The TURN provider could not be reached or answered badly.
    #[error("ICE servers are unavailable right now")]
    TurnUnavailable(String),
    /// A state-changing request without `content-type: application/json`.
    #[error("requests that change state must be sent as application/json")]
    UnsupportedMediaType,
    /// The request's `Origin` is not allowed (`--allow-origin`).
    #[error("origin `{0}` may not call this server (see --allow-origin)")]
    OriginNotAllowed(String),
    /// The body did not arrive within this many seconds.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// The endpoint exists but not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// Anything else; the cause is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::InvalidJson(_) => ErrorCode::InvalidJson,
            AppError::InvalidInput(_) => ErrorCode::InvalidInput,
            AppError::UnknownType(_) => ErrorCode::UnknownType,
            AppError::BodyTooLarge(_) => ErrorCode::BodyTooLarge,
            AppError::Unauthorized => ErrorCode::Unauthorized,
            AppError::Replaced => ErrorCode::Replaced,
            AppError::TicketRequired => ErrorCode::TicketRequired,
            AppError::InvalidTicket(_) => ErrorCode::InvalidTicket,
            AppError::PeerNotFound(_) => ErrorCode::PeerNotFound,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::RoleMismatch(_) => ErrorCode::RoleMismatch,
            AppError::TopologyMismatch(_) => ErrorCode::TopologyMismatch,
            AppError::RoomFull(_) => ErrorCode::RoomFull,
            AppError::HostTaken => ErrorCode::HostTaken,
            AppError::RateLimited(_) => ErrorCode::RateLimited,
            AppError::TooManyPolls(_) => ErrorCode::TooManyPolls,
            AppError::RecipientBacklog(_) => ErrorCode::RecipientBacklog,
            AppError::StorageFull(_) => ErrorCode::StorageFull,
            AppError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            AppError::OriginNotAllowed(_) => ErrorCode::OriginNotAllowed,
            AppError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            AppError::CursorAhead { .. } => ErrorCode::CursorAhead,
            AppError::CursorExpired(_) => ErrorCode::CursorExpired,
            AppError::TurnUnavailable(_) => ErrorCode::TurnUnavailable,
            AppError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidJson(_) | AppError::InvalidInput(_) | AppError::UnknownType(_) => {
                StatusCode::BAD_REQUEST
            }
            AppError::CursorAhead { .. } => StatusCode::BAD_REQUEST,
            AppError::CursorExpired(_) => StatusCode::GONE,
            AppError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unauthorized | AppError::Replaced | AppError::TicketRequired => {
                StatusCode::UNAUTHORIZED
            }
            AppError::InvalidTicket(_) | AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::PeerNotFound(_) => StatusCode::NOT_FOUND,
            AppError::RoleMismatch(_)
            | AppError::TopologyMismatch(_)
            | AppError::RoomFull(_)
            | AppError::HostTaken => StatusCode::CONFLICT,
            AppError::RateLimited(_)
            | AppError::TooManyPolls(_)
            | AppError::RecipientBacklog(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::TurnUnavailable(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(err: rusqlite::Error) -> Self {
        AppError::Internal(format!("database: {err}"))
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::PeerNotFound(peer) => AppError::PeerNotFound(peer),
            StoreError::RecipientBacklog(max) => AppError::RecipientBacklog(max),
            StoreError::StorageFull(max) => AppError::StorageFull(max),
            e @ StoreError::NotLinked { .. } => AppError::Forbidden(e.to_string()),
            e @ StoreError::RoleMismatch { .. } => AppError::RoleMismatch(e.to_string()),
            e @ StoreError::TopologyMismatch { .. } => AppError::TopologyMismatch(e.to_string()),
            StoreError::RoomFull(capacity) => AppError::RoomFull(capacity),
            StoreError::HostTaken => AppError::HostTaken,
            StoreError::CursorAhead { since, last } => AppError::CursorAhead { since, last },
            StoreError::CursorExpired(since) => AppError::CursorExpired(since),
            e @ (StoreError::Database(_) | StoreError::Encoding(_)) => {
                AppError::Internal(e.to_string())
            }
        }
    }
}

pub(crate) use callroom_rules::bounded;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = match &self {
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                self.to_string()
            }
            AppError::TurnUnavailable(cause) => {
                tracing::warn!(%cause, "TURN provider failed");
                self.to_string()
            }
            _ => bounded(&self.to_string()),
        };
        let retry_after = match &self {
            AppError::RateLimited(seconds) => Some(*seconds),
            AppError::TooManyPolls(_) | AppError::RecipientBacklog(_) => Some(1),
            AppError::StorageFull(_) => Some(5),
            _ => None,
        };
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code().as_str().to_owned(),
                message,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
