//! What a `POST /signaling` body asks for, decided the way callroom-server decides it, so the
//! same body gets the same answer (and the same error) from both.

use callroom_protocol::{is_valid_relay_type, ErrorCode, JoinRequest, Topology, RESERVED_TYPES};
use serde::Deserialize;

use crate::error::ApiError;

/// A signaling request's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `join`.
    Join,
    /// `leave`.
    Leave,
    /// A relay of this type.
    Relay(String),
}

/// The kind of `body`, or the error callroom-server gives for it.
pub fn classify(body: &[u8]) -> Result<Kind, ApiError> {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    let Typed { kind } = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    match kind.as_str() {
        "join" => Ok(Kind::Join),
        "leave" => Ok(Kind::Leave),
        kind if is_valid_relay_type(kind) => Ok(Kind::Relay(kind.to_owned())),
        kind if RESERVED_TYPES.contains(&kind) => Err(ApiError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type `{kind}` is sent by the server only; clients send join, leave or a relay type like `offer`"
            ),
        )),
        other => {
            let shown: String = other.chars().take(40).collect();
            Err(ApiError::new(
                ErrorCode::UnknownType,
                format!("unknown message type `{shown}`"),
            ))
        }
    }
}

/// A join's body: an unknown topology is `invalid_input` (checked first), any other
/// mismatch `invalid_json`.
pub fn join_request(body: &[u8]) -> Result<JoinRequest, ApiError> {
    #[derive(Deserialize)]
    struct Requested {
        topology: Option<String>,
    }
    let Requested { topology } = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    if let Some(topology) = topology.filter(|t| Topology::parse(t).is_none()) {
        let shown: String = topology.chars().take(20).collect();
        return Err(ApiError::invalid_input(format!(
            "unknown topology `{shown}`; use \"mesh\", \"hub\" or \"sfu\""
        )));
    }
    serde_json::from_slice(body).map_err(ApiError::invalid_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_classified_with_the_servers_errors() {
        assert_eq!(classify(br#"{"type":"join"}"#), Ok(Kind::Join));
        assert_eq!(
            classify(br#"{"type":"offer","to":"p"}"#),
            Ok(Kind::Relay("offer".into()))
        );
        assert_eq!(classify(b"{").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(
            classify(br#"{"type":"peer-left"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        assert_eq!(
            classify(br#"{"type":"Nope"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        let star = join_request(br#"{"type":"join","room":"r","role":"peer","topology":"star"}"#);
        assert_eq!(star.unwrap_err().code, ErrorCode::InvalidInput);
        let admin = join_request(br#"{"type":"join","room":"r","role":"admin"}"#);
        assert_eq!(admin.unwrap_err().code, ErrorCode::InvalidJson);
    }
}
