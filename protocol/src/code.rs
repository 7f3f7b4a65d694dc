//! The stable error codes of `{"error":{"code","message"}}`, and what each means for a client.

/// Every error code `callroom-server` answers with.
///
/// Clients must tolerate codes this version does not know ([`ErrorCode::parse`] returns
/// `None`): a newer server may add some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON, or not the expected shape.
    InvalidJson,
    /// A field has a value outside its rules (bad room id, unknown topology, ...).
    InvalidInput,
    /// `type` is not a request type.
    UnknownType,
    /// The body is larger than the server's limit.
    BodyTooLarge,
    /// No token, or the token of no current peer: join again.
    Unauthorized,
    /// This hub host was replaced by a newer host of the same room.
    Replaced,
    /// The server needs a join ticket.
    TicketRequired,
    /// The ticket is forged, expired, or for another room or role.
    InvalidTicket,
    /// The recipient is not a peer of the sender's room.
    PeerNotFound,
    /// The topology does not let these two peers talk.
    Forbidden,
    /// The role does not fit the room's topology.
    RoleMismatch,
    /// The join asked for (or its role implies) another topology than the room has.
    TopologyMismatch,
    /// The room is at capacity.
    RoomFull,
    /// Too many relays; `Retry-After` says when to try again.
    RateLimited,
    /// Too many concurrent long-polls for one peer.
    TooManyPolls,
    /// The recipient has too many unacknowledged messages.
    RecipientBacklog,
    /// `since` is ahead of anything sent to this peer.
    CursorAhead,
    /// Messages after `since` expired unread (`--message-ttl`): what is left has a hole, so
    /// join again.
    CursorExpired,
    /// The TURN provider failed.
    TurnUnavailable,
    /// Wrong HTTP method for the endpoint.
    MethodNotAllowed,
    /// The server's message storage is at its budget: relays wait, the rest works.
    StorageFull,
    /// A request that changes state must carry `content-type: application/json`.
    UnsupportedMediaType,
    /// The request came from a page whose origin the server does not allow.
    OriginNotAllowed,
    /// The body did not arrive in time (`--body-timeout`).
    RequestTimeout,
    /// The server has as many connections as it takes: retry shortly.
    ServerBusy,
    /// A hub's host seat is held by a live host, and the join brought no proof to take it.
    HostTaken,
    /// Anything else; the cause stays in the server's log.
    Internal,
}

const ALL: [ErrorCode; 27] = [
    ErrorCode::InvalidJson,
    ErrorCode::InvalidInput,
    ErrorCode::UnknownType,
    ErrorCode::BodyTooLarge,
    ErrorCode::Unauthorized,
    ErrorCode::Replaced,
    ErrorCode::TicketRequired,
    ErrorCode::InvalidTicket,
    ErrorCode::PeerNotFound,
    ErrorCode::Forbidden,
    ErrorCode::RoleMismatch,
    ErrorCode::TopologyMismatch,
    ErrorCode::RoomFull,
    ErrorCode::RateLimited,
    ErrorCode::TooManyPolls,
    ErrorCode::RecipientBacklog,
    ErrorCode::CursorAhead,
    ErrorCode::CursorExpired,
    ErrorCode::TurnUnavailable,
    ErrorCode::MethodNotAllowed,
    ErrorCode::StorageFull,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::OriginNotAllowed,
    ErrorCode::RequestTimeout,
    ErrorCode::ServerBusy,
    ErrorCode::HostTaken,
    ErrorCode::Internal,
];

impl ErrorCode {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Replaced => "replaced",
            ErrorCode::TicketRequired => "ticket_required",
            ErrorCode::InvalidTicket => "invalid_ticket",
            ErrorCode::PeerNotFound => "peer_not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RoleMismatch => "role_mismatch",
            ErrorCode::TopologyMismatch => "topology_mismatch",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyPolls => "too_many_polls",
            ErrorCode::RecipientBacklog => "recipient_backlog",
            ErrorCode::CursorAhead => "cursor_ahead",
            ErrorCode::CursorExpired => "cursor_expired",
            ErrorCode::TurnUnavailable => "turn_unavailable",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::HostTaken => "host_taken",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code with this spelling; `None` for codes this version does not know.
    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// True when the same request may succeed later unchanged: the server was busy or
    /// failed, not the request.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::TooManyPolls
                | ErrorCode::RecipientBacklog
                | ErrorCode::TurnUnavailable
                | ErrorCode::StorageFull
                | ErrorCode::RequestTimeout
                | ErrorCode::ServerBusy
                | ErrorCode::Internal
        )
    }

    /// True when a join refused with this code will be refused again: retrying the join
    /// cannot help, the app has to change something.
    pub fn fatal_for_join(self) -> bool {
        matches!(
            self,
            ErrorCode::RoomFull
                | ErrorCode::RoleMismatch
                | ErrorCode::TopologyMismatch
                | ErrorCode::TicketRequired
                | ErrorCode::InvalidTicket
                | ErrorCode::InvalidInput
                | ErrorCode::InvalidJson
                | ErrorCode::BodyTooLarge
                | ErrorCode::UnsupportedMediaType
                | ErrorCode::OriginNotAllowed
                | ErrorCode::HostTaken
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_from_its_spelling() {
        for code in ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("from_a_newer_server"), None);
    }

    #[test]
    fn refusals_are_fatal_for_a_join_and_transient_failures_are_retryable() {
        for code in ALL {
            assert!(
                !(code.retryable() && code.fatal_for_join()),
                "{code:?} cannot be both"
            );
        }
        assert!(ErrorCode::RoomFull.fatal_for_join());
        assert!(ErrorCode::InvalidTicket.fatal_for_join());
        assert!(!ErrorCode::Unauthorized.fatal_for_join());
        assert!(ErrorCode::RateLimited.retryable());
        assert!(ErrorCode::Internal.retryable());
        assert!(!ErrorCode::PeerNotFound.retryable());
    }
}
