//! A page on another origin cannot change state: a "simple" cross-origin POST (text/plain,
//! no preflight) is refused before it is read, and so is JSON from an origin not allowed.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;

fn join(content_type: &str, origin: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method("POST")
        .uri("/signaling")
        .header("host", "calls.example:8080")
        .header("content-type", content_type);
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    let body = r#"{"type":"join","room":"hub1","role":"guest","name":"Mallory"}"#;
    builder
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn a_no_cors_text_plain_join_is_refused_and_joins_nobody() {
    let app = TestApp::new();
    let reply = app
        .request(join(
            "text/plain;charset=UTF-8",
            Some("https://evil.example"),
        ))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    let reply = app.request(join("text/plain;charset=UTF-8", None)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert!(app.state.store.room_peers("hub1").unwrap().is_empty());
}

#[tokio::test]
async fn json_from_an_origin_not_allowed_is_refused_and_the_servers_own_pages_work() {
    let app = TestApp::with(|c| c.allow_origins = vec!["https://app.example".into()]);
    let reply = app
        .request(join("application/json", Some("http://localhost:5173")))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    for origin in ["https://app.example", "http://calls.example:8080"] {
        let reply = app.request(join("application/json", Some(origin))).await;
        assert_eq!(reply.status, StatusCode::OK, "{origin}: {}", reply.json);
    }
}
