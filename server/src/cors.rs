//! Which browser origins may call the API.

use axum::http::{header, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Configured origins exactly; with none, loopback origins on any port (development).
pub fn layer(allowed: &[String]) -> CorsLayer {
    let allowed: Vec<String> = allowed
        .iter()
        .map(|o| o.trim_end_matches('/').to_owned())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            if allowed.is_empty() {
                is_loopback_origin(origin)
            } else {
                allowed.iter().any(|a| a == origin)
            }
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
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

#[cfg(test)]
mod tests {
    use super::is_loopback_origin;

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
}
