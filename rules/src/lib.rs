//! Pure rules that callroom-server and the callroom Worker both enforce, defined once: rate
//! budgets, which browser origins may call, and what a display name may hold.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod rate;
pub mod sdp;
pub mod sfu;

use std::time::Duration;

use callroom_protocol::NAME_MAX_LEN;

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
    fn listed_origins_match_exactly_and_none_listed_means_loopback() {
        let listed = ["https://app.example/".to_owned()];
        assert!(is_listed_origin(&listed, "https://app.example"));
        assert!(!is_listed_origin(&listed, "http://localhost:5173"));
        assert!(is_listed_origin(&[], "http://localhost:5173"));
        assert!(!is_listed_origin(&[], "https://app.example"));
    }
}
