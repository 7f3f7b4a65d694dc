//! Pure rules that callroom-server and the callroom Worker both enforce, defined once: rate
//! budgets, which browser origins may call, and what a display name may hold.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod rate;
pub mod sdp;
pub mod sfu;

use std::time::Duration;

use callroom_protocol::{IceServer, Role, NAME_MAX_LEN};
use serde::Deserialize;

/// True when a (trimmed) display name is at most [`NAME_MAX_LEN`] characters and holds no
/// hidden characters.
pub fn is_valid_name(name: &str) -> bool {
    name.chars().count() <= NAME_MAX_LEN && !name.chars().any(is_hidden_char)
}

/// Characters a display name must not hold: controls, and the invisible ones that reorder or
/// hide text (bidi overrides and isolates, zero-width characters, the byte-order mark), with
/// which one participant could pass for another.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

/// Whether `origin` is one of `allowed` (a trailing `/` ignored), or with none configured, a
/// loopback origin.
pub fn is_listed_origin(allowed: &[String], origin: &str) -> bool {
    if allowed.is_empty() {
        is_loopback_origin(origin)
    } else {
        allowed.iter().any(|a| a.trim_end_matches('/') == origin)
    }
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, with or without a port.
pub fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if rest.starts_with('[') {
        rest.split_inclusive(']').next().unwrap_or(rest)
    } else {
        rest.split(':').next().unwrap_or(rest)
    };
    let port = &rest[host.len()..];
    // A real port: digits only, 1..=65535 (`:99999` is no port, so no loopback origin).
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
        });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") && port_ok
}

/// Parses `250ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 30s, 5m or 1h"))?;
    let millis = match unit {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s, m or h)"
            ))
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Most characters of an error message: messages can quote what the caller sent (serde's
/// `unknown variant`, for one), which may be of any size.
const MAX_MESSAGE_CHARS: usize = 240;

/// `message`, cut to [`MAX_MESSAGE_CHARS`], with anything that is not printable ASCII escaped
/// so no control or bidi character reaches a log or a page.
pub fn bounded(message: &str) -> String {
    let mut out = String::new();
    for c in message.chars() {
        if out.len() >= MAX_MESSAGE_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// The ICE servers in an answer of Cloudflare's TURN API, which has come both as one server
/// object and as an array of them.
pub fn turn_answer(body: &[u8]) -> Result<Vec<IceServer>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<IceServer>),
        One(IceServer),
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "iceServers")]
        ice_servers: OneOrMany,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("Cloudflare TURN response: {e}"))?;
    Ok(match answer.ice_servers {
        OneOrMany::Many(servers) => servers,
        OneOrMany::One(server) => vec![server],
    })
}

/// Checks a verified ticket's claims against the join: its room and role, a lifetime of at
/// most `max_lifetime` seconds from `now`, and a `jti` of 1 to 256 bytes. `Err` says why not.
#[allow(clippy::too_many_arguments)]
pub fn check_ticket_claims(
    ticket_room: &str,
    ticket_role: Role,
    exp: u64,
    jti: Option<&str>,
    room: &str,
    role: Role,
    now: u64,
    max_lifetime: u64,
) -> Result<(), String> {
    const MAX_JTI_LEN: usize = 256;
    if ticket_room != room {
        return Err("ticket is for another room".into());
    }
    if ticket_role != role {
        return Err("ticket is for another role".into());
    }
    if exp > now.saturating_add(max_lifetime) {
        return Err(format!(
            "ticket lives longer than this server allows ({max_lifetime} s)"
        ));
    }
    if jti.is_some_and(|j| j.is_empty() || j.len() > MAX_JTI_LEN) {
        return Err(format!("ticket `jti` must be 1 to {MAX_JTI_LEN} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn loopback_origins_on_any_port_are_recognised() {
        for ok in [
            "http://localhost",
            "http://localhost:5173",
            "https://127.0.0.1:8443",
            "http://[::1]:3000",
        ] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io",
            "http://evil.com",
            "http://localhost:",
            "http://localhost:80/path",
            "http://localhost:99999",
            "http://localhost:0",
            "http://127.0.0.1:+80",
            "file://localhost",
            "null",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }

    #[test]
    fn names_hold_no_hidden_characters_and_at_most_64_characters() {
        assert!(is_valid_name("Ann Lee"));
        assert!(is_valid_name(&"é".repeat(64)));
        assert!(!is_valid_name(&"é".repeat(65)));
        for hidden in ["a\u{202e}b", "a\u{200b}", "\u{feff}x", "tab\there"] {
            assert!(!is_valid_name(hidden), "{hidden:?}");
        }
    }

    #[test]
    fn messages_are_bounded_and_escaped() {
        let shown = bounded(&"é\u{202e}".repeat(500));
        assert!(shown.len() <= 260, "{}", shown.len());
        assert!(shown.is_ascii());
    }

    #[test]
    fn turn_answers_come_as_one_server_or_many() {
        let one = br#"{"iceServers":{"urls":["turn:a"],"username":"u","credential":"c"}}"#;
        assert_eq!(turn_answer(one).unwrap().len(), 1);
        let many = br#"{"iceServers":[{"urls":["stun:a"]},{"urls":["turn:b"]}]}"#;
        assert_eq!(turn_answer(many).unwrap().len(), 2);
        assert!(turn_answer(b"{}").is_err());
    }

    #[test]
    fn ticket_claims_must_match_the_join() {
        let check = |room, role, exp, jti| {
            check_ticket_claims(room, role, exp, jti, "r1", Role::Guest, 1_000, 3_600)
        };
        assert_eq!(check("r1", Role::Guest, 1_060, Some("id")), Ok(()));
        assert!(check("r2", Role::Guest, 1_060, None)
            .unwrap_err()
            .contains("room"));
        assert!(check("r1", Role::Host, 1_060, None)
            .unwrap_err()
            .contains("role"));
        assert!(check("r1", Role::Guest, 9_999, None)
            .unwrap_err()
            .contains("longer"));
        assert!(check("r1", Role::Guest, 1_060, Some(""))
            .unwrap_err()
            .contains("jti"));
    }

    #[test]
    fn listed_origins_match_exactly_and_none_listed_means_loopback() {
        let listed = ["https://app.example/".to_owned()];
        assert!(is_listed_origin(&listed, "https://app.example"));
        assert!(!is_listed_origin(&listed, "http://localhost:5173"));
        assert!(is_listed_origin(&[], "http://localhost:5173"));
        assert!(!is_listed_origin(&[], "https://app.example"));
    }
}
