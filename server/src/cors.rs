//! Which browser origins may call the API, and what a state-changing request must look like.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use callroom_rules::is_listed_origin as is_listed;

use crate::error::AppError;
use crate::state::AppState;

/// Configured origins exactly; with none, loopback origins on any port (development).
pub fn layer(allowed: &[String]) -> CorsLayer {
    let allowed = allowed.to_vec();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| is_listed(&allowed, o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// Whether a request carrying these headers may change state: a body, if any, sent as
/// `application/json` (which a foreign page cannot send without a preflight, so CORS decides),
/// and an `Origin`, if any, that is allowed or this server itself.
///
/// Behind a trusted proxy (`trust_forwarded`), this server's own host is the one the proxy
/// forwarded (`X-Forwarded-Host`), not the one it connected to.
pub fn check(
    allowed: &[String],
    trust_forwarded: bool,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let forwarded = trust_forwarded
            .then(|| headers.get("x-forwarded-host"))
            .flatten();
        let host = forwarded
            .or_else(|| headers.get(header::HOST))
            .and_then(|h| h.to_str().ok());
        let same_origin = host.is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        });
        if !same_origin && !is_listed(allowed, origin) {
            let shown: String = origin.chars().take(60).collect();
            return Err(AppError::OriginNotAllowed(
                shown.escape_default().to_string(),
            ));
        }
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|n| n.as_bytes() != b"0");
    let json = !has_body
        || headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType)
    }
}

/// Middleware: every POST and PUT of the API passes [`check`] before its handler runs.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::POST | Method::PUT) {
        let config = &state.config;
        if let Err(error) = check(
            &config.allow_origins,
            config.trust_forwarded_for,
            request.headers(),
        ) {
            return error.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_state_change_needs_json_and_an_allowed_or_own_origin() {
        let json = ("content-type", "application/json; charset=utf-8");
        let none: &[String] = &[];
        assert!(
            check(none, false, &headers(&[json])).is_ok(),
            "no origin: not a browser page"
        );
        assert!(check(
            none,
            false,
            &headers(&[json, ("origin", "http://localhost:5173")])
        )
        .is_ok());
        let own = [
            json,
            ("origin", "http://198.18.0.2:8080"),
            ("host", "198.18.0.2:8080"),
        ];
        assert!(check(none, false, &headers(&own)).is_ok(), "same origin");
        let foreign = [
            json,
            ("origin", "https://evil.example"),
            ("host", "calls.example"),
        ];
        assert!(matches!(
            check(none, false, &headers(&foreign)),
            Err(AppError::OriginNotAllowed(_))
        ));
        // Behind a proxy that connects to 127.0.0.1:8080, the page's own host is forwarded.
        let proxied = [
            json,
            ("origin", "https://calls.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "calls.example"),
        ];
        assert!(check(none, true, &headers(&proxied)).is_ok());
        assert!(
            check(none, false, &headers(&proxied)).is_err(),
            "only from a trusted proxy"
        );
        let listed = ["https://app.example/".to_owned()];
        let app = [json, ("origin", "https://app.example")];
        assert!(check(&listed, false, &headers(&app)).is_ok());
        assert!(check(
            &listed,
            false,
            &headers(&[json, ("origin", "http://localhost:5173")])
        )
        .is_err());
        let body = ("content-length", "42");
        for plain in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            assert!(matches!(
                check(none, false, &headers(&[body, ("content-type", plain)])),
                Err(AppError::UnsupportedMediaType)
            ));
        }
        assert!(matches!(
            check(none, false, &headers(&[body])),
            Err(AppError::UnsupportedMediaType)
        ));
        assert!(matches!(
            check(none, false, &headers(&[("transfer-encoding", "chunked")])),
            Err(AppError::UnsupportedMediaType)
        ));
        assert!(
            check(none, false, &headers(&[])).is_ok(),
            "no body, nothing to decode"
        );
    }
}
