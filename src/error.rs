//! The public error type: a small set of failures with stable codes that apps can switch on.

/// Everything that can go wrong in callroom, as an app sees it.
///
/// [`Error::code`] is stable across releases; the `Display` text is for humans and may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The user or the browser refused camera or microphone access.
    #[error("camera or microphone access was denied")]
    PermissionDenied,
    /// No camera or microphone matches the request.
    #[error("no camera or microphone was found")]
    DeviceNotFound,
    /// The device exists but another program holds it, or the OS failed to start it.
    #[error("the camera or microphone is in use by another program")]
    DeviceInUse,
    /// No device can satisfy the given constraints.
    #[error("no device satisfies the constraint `{constraint}`")]
    Overconstrained {
        /// The constraint the browser named, when it named one.
        constraint: String,
    },
    /// The page is not a secure context (https or localhost), so media is unavailable.
    #[error("camera and microphone need a secure context (https or localhost)")]
    InsecureContext,
    /// The server answered with an error; `code` is the server's stable code.
    #[error("server error {code}: {message}")]
    Server {
        /// The server's stable error code.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The server or a peer sent something that is not valid protocol (bad JSON, bad SDP).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server could not be reached.
    #[error("network error: {0}")]
    Network(String),
    /// A device stopped on its own (unplugged); the message says what replaced it.
    #[error("{0}")]
    DeviceLost(String),
    /// An argument or option is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A TURN server refused the credentials it was given (a wrong or expired secret on the
    /// signaling server), so no relayed path exists: peers connect only where a direct path
    /// does.
    #[error("the TURN server {url} refused its credentials ({status} {reason})")]
    TurnRefused {
        /// The TURN URL, as configured.
        url: String,
        /// The TURN error code (401 or 403).
        status: u16,
        /// The TURN server's reason phrase.
        reason: String,
    },
    /// The room was left; the operation cannot run any more.
    #[error("the room has been left")]
    Closed,
    /// Any other browser failure, with the exception's name and message.
    #[error("{name}: {message}")]
    Browser {
        /// The `DOMException` or `Error` name.
        name: String,
        /// Its message.
        message: String,
    },
}

impl Error {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &str {
        match self {
            Error::PermissionDenied => "permission_denied",
            Error::DeviceNotFound => "device_not_found",
            Error::DeviceInUse => "device_in_use",
            Error::Overconstrained { .. } => "overconstrained",
            Error::InsecureContext => "insecure_context",
            Error::Server { code, .. } => code,
            Error::Protocol(_) => "protocol_error",
            Error::Network(_) => "network_error",
            Error::DeviceLost(_) => "device_lost",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::TurnRefused { .. } => "turn_refused",
            Error::Closed => "closed",
            Error::Browser { .. } => "browser_error",
        }
    }

    /// True when retrying cannot help: the server refused this join for good.
    pub fn is_fatal_for_join(&self) -> bool {
        match self {
            Error::Server { code, .. } => {
                callroom_protocol::ErrorCode::parse(code).is_some_and(|c| c.fatal_for_join())
            }
            Error::InvalidArgument(_) => true,
            _ => false,
        }
    }

    /// Classifies an `icecandidateerror`: a TURN server refusing credentials is worth telling
    /// the app; anything else (an unreachable STUN server, 701) is routine and `None`.
    pub fn from_ice_candidate_error(url: &str, status: u16, reason: &str) -> Option<Self> {
        let turn = url.starts_with("turn:") || url.starts_with("turns:");
        (turn && matches!(status, 401 | 403)).then(|| Error::TurnRefused {
            url: url.to_owned(),
            status,
            reason: reason.to_owned(),
        })
    }

    /// Classifies a failed `getUserMedia` / `getDisplayMedia` by the exception's `name`.
    ///
    /// `constraint` is the `constraint` property of an `OverconstrainedError`, when present.
    pub fn from_media_exception(name: &str, message: &str, constraint: Option<&str>) -> Self {
        match name {
            "NotAllowedError" | "PermissionDeniedError" => Error::PermissionDenied,
            "SecurityError" => Error::InsecureContext,
            "NotFoundError" | "DevicesNotFoundError" => Error::DeviceNotFound,
            "NotReadableError" | "TrackStartError" | "AbortError" => Error::DeviceInUse,
            "OverconstrainedError" | "ConstraintNotSatisfiedError" => Error::Overconstrained {
                constraint: constraint.unwrap_or_default().to_owned(),
            },
            _ => Error::Browser {
                name: name.to_owned(),
                message: message.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_turn_server_refusing_credentials_is_an_error_worth_reporting() {
        let refused = Error::from_ice_candidate_error("turn:198.18.0.13:3478", 401, "Unauthorized");
        assert_eq!(refused.as_ref().map(Error::code), Some("turn_refused"));
        assert_eq!(
            refused.unwrap().to_string(),
            "the TURN server turn:198.18.0.13:3478 refused its credentials (401 Unauthorized)"
        );
        assert!(Error::from_ice_candidate_error("turns:t.example:443", 403, "Forbidden").is_some());
        assert!(Error::from_ice_candidate_error("stun:t.example:3478", 401, "x").is_none());
        assert!(
            Error::from_ice_candidate_error("turn:t.example:3478", 701, "unreachable").is_none(),
            "an unreachable server is routine (and retried by the browser)"
        );
    }

    #[test]
    fn media_exceptions_map_to_stable_codes() {
        let code = |name| {
            Error::from_media_exception(name, "m", None)
                .code()
                .to_owned()
        };
        assert_eq!(code("NotAllowedError"), "permission_denied");
        assert_eq!(code("PermissionDeniedError"), "permission_denied");
        assert_eq!(code("NotFoundError"), "device_not_found");
        assert_eq!(code("NotReadableError"), "device_in_use");
        assert_eq!(code("AbortError"), "device_in_use");
        assert_eq!(code("OverconstrainedError"), "overconstrained");
        assert_eq!(code("SecurityError"), "insecure_context");
        assert_eq!(code("TypeError"), "browser_error");
    }

    #[test]
    fn overconstrained_names_the_constraint() {
        let err = Error::from_media_exception("OverconstrainedError", "", Some("deviceId"));
        assert_eq!(
            err,
            Error::Overconstrained {
                constraint: "deviceId".into()
            }
        );
        assert!(err.to_string().contains("deviceId"));
    }

    #[test]
    fn unknown_browser_errors_keep_name_and_message() {
        let err = Error::from_media_exception("WeirdError", "something odd", None);
        assert_eq!(err.to_string(), "WeirdError: something odd");
    }

    #[test]
    fn refusals_are_fatal_for_a_join_and_outages_are_not() {
        let server = |code: &str| Error::Server {
            code: code.into(),
            message: String::new(),
        };
        assert!(server("room_full").is_fatal_for_join());
        assert!(server("invalid_ticket").is_fatal_for_join());
        assert!(!server("internal").is_fatal_for_join());
        assert!(!server("http_502").is_fatal_for_join());
        assert!(!Error::Network("down".into()).is_fatal_for_join());
    }

    #[test]
    fn server_errors_keep_the_server_code() {
        let err = Error::Server {
            code: "room_full".into(),
            message: "the room is full".into(),
        };
        assert_eq!(err.code(), "room_full");
    }
}
