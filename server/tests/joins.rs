//! Join limits: per room, and per client address (the socket's, or behind a trusted proxy the
//! one it forwarded), so one client cannot flood the server with peers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use serde_json::json;

fn join_from(room: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let body = json!({"type": "join", "room": room, "role": "peer"}).to_string();
    let mut builder = Request::builder()
        .method("POST")
        .uri("/signaling")
        .header("content-type", "application/json")
        .header("content-length", body.len());
    if let Some(address) = forwarded_for {
        builder = builder.header("x-forwarded-for", address);
    }
    builder.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn joins_into_one_room_past_its_burst_are_429_and_other_rooms_still_open() {
    let app = TestApp::with(|c| {
        c.room_join_burst = 3.0;
        c.room_join_rate = 0.01;
    });
    for _ in 0..3 {
        app.join("r", "peer", "").await;
    }
    let reply = app
        .post(None, json!({"type": "join", "room": "r", "role": "peer"}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(reply.headers.contains_key("retry-after"));
    app.join("s", "peer", "").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_join_budget() {
    let app = TestApp::with(|c| {
        c.trust_forwarded_for = true;
        c.join_burst = 2.0;
        c.join_rate = 0.01;
    });
    for room in ["a", "b"] {
        let reply = app
            .request(join_from(room, Some("10.0.0.1, 203.0.113.7")))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    }
    let reply = app.request(join_from("c", Some("203.0.113.7"))).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "the proxy's (last) entry counts, not what the client claimed before it"
    );
    let reply = app.request(join_from("c", Some("203.0.113.8"))).await;
    assert_eq!(reply.status, StatusCode::OK);
}
