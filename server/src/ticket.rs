//! Join tickets: an HS256 JWT `{room, role, exp, nbf?, jti?}` signed by the embedding app's
//! backend, so the app decides who may join which room as which role. A ticket with a `jti`
//! is single-use (the store remembers it until it expires); none may live longer than the
//! server allows.

use callroom_protocol::Role;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::AppError;

#[derive(Debug, Deserialize)]
struct Claims {
    room: String,
    role: Role,
    /// Required (the validation says so when it is missing).
    exp: Option<u64>,
    jti: Option<String>,
}

/// A ticket that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Its id, if it is single-use.
    pub jti: Option<String>,
    /// When it expires (unix seconds).
    pub exp: u64,
}

/// Clock difference allowed between the app's backend and this server, seconds.
pub const LEEWAY_SECS: u64 = 5;

/// Checks `ticket` against `secret`, the join's room and role, and the clock (`now`, unix
/// seconds): not before its `nbf`, not after its `exp`, which may be at most `max_lifetime`
/// seconds away.
pub fn verify(
    secret: &str,
    ticket: Option<&str>,
    room: &str,
    role: Role,
    now: u64,
    max_lifetime: u64,
) -> Result<Ticket, AppError> {
    let ticket = ticket
        .filter(|t| !t.is_empty())
        .ok_or(AppError::TicketRequired)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    let claims = decode::<Claims>(
        ticket,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| AppError::InvalidTicket(ticket_error(&e)))?
    .claims;
    let exp = claims.exp.unwrap_or(0);
    callroom_rules::check_ticket_claims(
        &claims.room,
        claims.role,
        exp,
        claims.jti.as_deref(),
        room,
        role,
        now,
        max_lifetime,
    )
    .map_err(AppError::InvalidTicket)?;
    Ok(Ticket {
        jti: claims.jti,
        exp,
    })
}

fn ticket_error(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "ticket has expired".into(),
        ErrorKind::ImmatureSignature => "ticket is not valid yet (nbf)".into(),
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

    /// A day, the default `--max-ticket-lifetime`.
    const DAY: u64 = 86_400;

    fn check(ticket: Option<&str>, room: &str, role: Role) -> Result<Ticket, AppError> {
        verify(SECRET, ticket, room, role, now(), DAY)
    }

    #[test]
    fn a_ticket_for_this_room_and_role_is_accepted() {
        let ok = check(Some(&valid("r1", "host")), "r1", Role::Host).unwrap();
        assert_eq!(ok.jti, None);
        let once = ticket(
            json!({"room": "r1", "role": "host", "exp": now() + 60, "jti": "t-1"}),
            SECRET,
            Algorithm::HS256,
        );
        let ok = check(Some(&once), "r1", Role::Host).unwrap();
        assert_eq!(ok.jti.as_deref(), Some("t-1"));
    }

    #[test]
    fn a_ticket_not_valid_yet_or_living_too_long_is_refused() {
        let cases = [
            (
                json!({"room": "r1", "role": "host", "exp": now() + 600, "nbf": now() + 300}),
                "not valid yet",
            ),
            (
                json!({"room": "r1", "role": "host", "exp": now() + 2 * DAY}),
                "longer",
            ),
            (
                json!({"room": "r1", "role": "host", "exp": u64::MAX / 2}),
                "longer",
            ),
            (
                json!({"room": "r1", "role": "host", "exp": now() + 60, "jti": ""}),
                "jti",
            ),
        ];
        for (claims, why) in cases {
            let t = ticket(claims, SECRET, Algorithm::HS256);
            let err = check(Some(&t), "r1", Role::Host).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn no_ticket_is_ticket_required() {
        let err = check(None, "r1", Role::Peer).unwrap_err();
        assert_eq!(err.code().as_str(), "ticket_required");
        let err = check(Some(""), "r1", Role::Peer).unwrap_err();
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
            let err = check(Some(&ticket), "r1", Role::Host).unwrap_err();
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
        let err = check(Some(&forged), "r1", Role::Host).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_ticket");
    }
}
