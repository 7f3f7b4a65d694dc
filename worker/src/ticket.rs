//! Join tickets, checked exactly as callroom-server checks them: an HS256 JWT
//! `{room, role, exp, nbf?, jti?}` signed by the embedding app's backend with the ticket
//! secret, 5 s of clock leeway, and no longer-lived than the configured maximum.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callroom_protocol::{ErrorCode, Role};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::ApiError;

/// Clock difference allowed between the app's backend and this server, seconds.
pub const LEEWAY_SECS: u64 = 5;
/// Longest ticket read at all.
const MAX_TICKET_LEN: usize = 4096;

/// A ticket that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Its id, if it is single-use.
    pub jti: Option<String>,
    /// When it expires (unix seconds).
    pub exp: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    room: Option<String>,
    role: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    jti: Option<String>,
    /// Refused when present, as callroom-server (which names no audience) refuses it.
    aud: Option<serde_json::Value>,
}

fn malformed() -> ApiError {
    ApiError::invalid_ticket("ticket is malformed")
}

/// Checks `ticket` against `secret`, the join's room and role, and the clock (`now`, unix
/// seconds).
pub fn verify(
    secret: &str,
    ticket: Option<&str>,
    room: &str,
    role: Role,
    now: u64,
    max_lifetime: u64,
) -> Result<Ticket, ApiError> {
    let ticket = ticket.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TicketRequired,
            "this server requires a join ticket",
        )
    })?;
    if ticket.len() > MAX_TICKET_LEN {
        return Err(malformed());
    }
    let mut parts = ticket.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed());
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| malformed())?;
    if header.alg != "HS256" {
        return Err(ApiError::invalid_ticket("ticket must be signed with HS256"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| malformed())?;
    mac.update(&ticket.as_bytes()[..ticket.len() - signature.len() - 1]);
    if mac.verify_slice(&decode(signature)?).is_err() {
        return Err(ApiError::invalid_ticket("ticket signature is invalid"));
    }
    let claims: Claims = serde_json::from_slice(&decode(claims)?).map_err(|_| malformed())?;
    let exp = claims
        .exp
        .ok_or_else(|| ApiError::invalid_ticket("ticket lacks `exp`"))?;
    if exp.saturating_add(LEEWAY_SECS) < now {
        return Err(ApiError::invalid_ticket("ticket has expired"));
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(ApiError::invalid_ticket("ticket is not valid yet (nbf)"));
    }
    // Checked after the clock, as callroom-server's JWT library does.
    if claims.aud.is_some() {
        return Err(malformed());
    }
    let (Some(ticket_room), Some(ticket_role)) = (claims.room, claims.role) else {
        return Err(malformed());
    };
    let role_claimed = Role::parse(&ticket_role).ok_or_else(malformed)?;
    callroom_rules::check_ticket_claims(
        &ticket_room,
        role_claimed,
        exp,
        claims.jti.as_deref(),
        room,
        role,
        now,
        max_lifetime,
    )
    .map_err(ApiError::invalid_ticket)?;
    Ok(Ticket {
        jti: claims.jti,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app-backend-secret";
    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn sign(header: &str, claims: serde_json::Value, secret: &str) -> String {
        let head = URL_SAFE_NO_PAD.encode(header);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{head}.{body}.{sig}")
    }

    fn ticket(claims: serde_json::Value) -> String {
        sign(r#"{"alg":"HS256","typ":"JWT"}"#, claims, SECRET)
    }

    fn check(ticket: &str, room: &str, role: Role) -> Result<Ticket, ApiError> {
        verify(SECRET, Some(ticket), room, role, NOW, DAY)
    }

    fn message(result: Result<Ticket, ApiError>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn a_ticket_for_this_room_and_role_is_accepted_with_its_jti() {
        let t = ticket(
            serde_json::json!({"room": "r1", "role": "host", "exp": NOW + 60, "jti": "once"}),
        );
        assert_eq!(
            check(&t, "r1", Role::Host),
            Ok(Ticket {
                jti: Some("once".into()),
                exp: NOW + 60
            })
        );
    }

    #[test]
    fn forged_expired_early_and_misdirected_tickets_are_refused() {
        let claims = serde_json::json!({"room": "r1", "role": "guest", "exp": NOW + 60});
        let forged = sign(r#"{"alg":"HS256"}"#, claims.clone(), "another-secret");
        assert!(message(check(&forged, "r1", Role::Guest)).contains("signature"));
        let none = sign(r#"{"alg":"none"}"#, claims.clone(), SECRET);
        assert!(message(check(&none, "r1", Role::Guest)).contains("HS256"));
        let t = ticket(claims);
        assert!(message(check(&t, "r2", Role::Guest)).contains("another room"));
        assert!(message(check(&t, "r1", Role::Host)).contains("another role"));
        let old = ticket(serde_json::json!({"room": "r1", "role": "guest", "exp": NOW - 6}));
        assert!(message(check(&old, "r1", Role::Guest)).contains("expired"));
        let within_leeway =
            ticket(serde_json::json!({"room": "r1", "role": "guest", "exp": NOW - 4}));
        assert!(check(&within_leeway, "r1", Role::Guest).is_ok());
        let early = ticket(
            serde_json::json!({"room": "r1", "role": "guest", "exp": NOW + 60, "nbf": NOW + 60}),
        );
        assert!(message(check(&early, "r1", Role::Guest)).contains("nbf"));
        let long = ticket(serde_json::json!({"room": "r1", "role": "guest", "exp": NOW + 2 * DAY}));
        assert!(message(check(&long, "r1", Role::Guest)).contains("longer"));
        let no_exp = ticket(serde_json::json!({"room": "r1", "role": "guest"}));
        assert!(message(check(&no_exp, "r1", Role::Guest)).contains("exp"));
        assert!(message(check("a.b", "r1", Role::Guest)).contains("malformed"));
        let aud =
            ticket(serde_json::json!({"room": "r1", "role": "guest", "exp": NOW + 60, "aud": "x"}));
        assert!(message(check(&aud, "r1", Role::Guest)).contains("malformed"));
        let missing = verify(SECRET, None, "r1", Role::Guest, NOW, DAY).unwrap_err();
        assert_eq!(missing.code, ErrorCode::TicketRequired);
    }
}
