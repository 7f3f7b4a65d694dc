//! Join tickets: an HS256 JWT `{room, role, exp}` signed by the embedding app's backend, so
//! the app decides who may join which room as which role.

use callroom_protocol::Role;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::AppError;

#[derive(Debug, Deserialize)]
struct Claims {
    room: String,
    role: Role,
}

/// Checks `ticket` against `secret` and the join's room and role.
pub fn verify(secret: &str, ticket: Option<&str>, room: &str, role: Role) -> Result<(), AppError> {
    let ticket = ticket
        .filter(|t| !t.is_empty())
        .ok_or(AppError::TicketRequired)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp"]);
    let claims = decode::<Claims>(
        ticket,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| AppError::InvalidTicket(ticket_error(&e)))?
    .claims;
    if claims.room != room {
        return Err(AppError::InvalidTicket("ticket is for another room".into()));
    }
    if claims.role != role {
        return Err(AppError::InvalidTicket("ticket is for another role".into()));
    }
    Ok(())
}

fn ticket_error(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "ticket has expired".into(),
        ErrorKind::InvalidSignature => "ticket signature is invalid".into(),
        ErrorKind::InvalidAlgorithm => "ticket must be signed with HS256".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("ticket lacks `{claim}`"),
        _ => "ticket is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "app-backend-secret";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn ticket(claims: serde_json::Value, secret: &str, alg: Algorithm) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn valid(room: &str, role: &str) -> String {
        ticket(
            json!({"room": room, "role": role, "exp": now() + 60}),
            SECRET,
            Algorithm::HS256,
        )
    }

    #[test]
    fn a_ticket_for_this_room_and_role_is_accepted() {
        assert!(verify(SECRET, Some(&valid("r1", "host")), "r1", Role::Host).is_ok());
    }

    #[test]
    fn no_ticket_is_ticket_required() {
        let err = verify(SECRET, None, "r1", Role::Peer).unwrap_err();
        assert_eq!(err.code().as_str(), "ticket_required");
        let err = verify(SECRET, Some(""), "r1", Role::Peer).unwrap_err();
        assert_eq!(err.code().as_str(), "ticket_required");
    }

    #[test]
    fn wrong_room_role_signature_expiry_or_algorithm_are_refused() {
        let cases = [
            (valid("other", "host"), "another room"),
            (valid("r1", "guest"), "another role"),
            (
                ticket(
                    json!({"room": "r1", "role": "host", "exp": now() + 60}),
                    "wrong",
                    Algorithm::HS256,
                ),
                "signature",
            ),
            (
                ticket(
                    json!({"room": "r1", "role": "host", "exp": now() - 3600}),
                    SECRET,
                    Algorithm::HS256,
                ),
                "expired",
            ),
            (
                ticket(
                    json!({"room": "r1", "role": "host", "exp": now() + 60}),
                    SECRET,
                    Algorithm::HS512,
                ),
                "HS256",
            ),
            (
                ticket(
                    json!({"room": "r1", "role": "host"}),
                    SECRET,
                    Algorithm::HS256,
                ),
                "exp",
            ),
            ("not.a.jwt".to_owned(), "malformed"),
        ];
        for (ticket, why) in cases {
            let err = verify(SECRET, Some(&ticket), "r1", Role::Host).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_ticket", "{why}");
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn an_unsigned_none_algorithm_ticket_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(format!(
            r#"{{"room":"r1","role":"host","exp":{}}}"#,
            now() + 60
        ));
        let forged = format!("{header}.{body}.");
        let err = verify(SECRET, Some(&forged), "r1", Role::Host).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_ticket");
    }
}
