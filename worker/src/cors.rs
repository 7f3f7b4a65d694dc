//! Which browser origins may call the API, and what a state-changing request must look like:
//! callroom-server's rules (`server/src/cors.rs`), over plain header values.

use callroom_protocol::ErrorCode;
use callroom_rules::is_listed_origin;

use crate::error::ApiError;

/// The headers that decide.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent<'a> {
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Host`.
    pub host: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// A body was sent (`Content-Length` other than 0, or chunked).
    pub has_body: bool,
}

/// Whether a POST or PUT may change state: a body, if any, sent as `application/json`, and an
/// `Origin`, if any, that is allowed or this deployment itself.
pub fn check(allowed: &[String], sent: Sent<'_>) -> Result<(), ApiError> {
    if let Some(origin) = sent.origin {
        let same_origin = sent.host.is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        });
        if !same_origin && !is_listed_origin(allowed, origin) {
            let shown: String = origin.chars().take(60).collect();
            return Err(ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!(
                    "origin `{}` may not call this server (see CALLROOM_ALLOW_ORIGIN)",
                    shown.escape_default()
                ),
            ));
        }
    }
    let json = !sent.has_body
        || sent
            .content_type
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "requests that change state must be sent as application/json",
        ))
    }
}

/// The CORS headers a response to a request from `origin` carries (none for an origin that
/// is not allowed); `preflight` adds what an `OPTIONS` answer needs.
pub fn headers(
    allowed: &[String],
    origin: Option<&str>,
    preflight: bool,
) -> Vec<(&'static str, String)> {
    let mut out = vec![("vary", "origin".to_owned())];
    let Some(origin) = origin.filter(|o| is_listed_origin(allowed, o)) else {
        return out;
    };
    out.push(("access-control-allow-origin", origin.to_owned()));
    if preflight {
        out.push(("access-control-allow-methods", "GET,POST,PUT".to_owned()));
        out.push((
            "access-control-allow-headers",
            "content-type,authorization".to_owned(),
        ));
        out.push(("access-control-max-age", "600".to_owned()));
    } else {
        out.push(("access-control-expose-headers", "retry-after".to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn a_state_change_needs_json_and_an_allowed_or_own_origin() {
        let none: &[String] = &[];
        let sent = |origin, host, content_type, has_body| Sent {
            origin,
            host,
            content_type,
            has_body,
        };
        assert!(check(none, sent(None, None, JSON, true)).is_ok());
        assert!(check(none, sent(Some("http://localhost:5173"), None, JSON, true)).is_ok());
        assert!(check(
            none,
            sent(
                Some("https://calls.example"),
                Some("calls.example"),
                JSON,
                true
            )
        )
        .is_ok());
        let foreign = check(
            none,
            sent(
                Some("https://evil.example"),
                Some("calls.example"),
                JSON,
                true,
            ),
        );
        assert_eq!(foreign.unwrap_err().code, ErrorCode::OriginNotAllowed);
        let plain = check(none, sent(None, None, Some("text/plain"), true));
        assert_eq!(plain.unwrap_err().code, ErrorCode::UnsupportedMediaType);
        assert!(check(none, sent(None, None, None, false)).is_ok());
    }

    #[test]
    fn only_allowed_origins_get_cors_headers() {
        let listed = ["https://app.example".to_owned()];
        let names =
            |h: Vec<(&'static str, String)>| h.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(headers(&listed, Some("https://evil.example"), false)),
            ["vary"]
        );
        let allowed = headers(&listed, Some("https://app.example"), true);
        assert!(allowed.contains(&("access-control-allow-origin", "https://app.example".into())));
        assert!(names(allowed).contains(&"access-control-allow-methods"));
    }
}
