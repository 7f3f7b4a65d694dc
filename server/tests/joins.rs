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
async fn joins_refused_for_their_own_sake_do_not_spend_the_rooms_budget() {
    let app = TestApp::with(|c| {
        c.room_join_burst = 3.0;
        c.room_join_rate = 0.01;
        c.room_capacity = 2;
    });
    for _ in 0..10 {
        let reply = app
            .post(
                None,
                json!({"type": "join", "room": "r", "role": "peer", "name": "\u{202e}x"}),
            )
            .await;
        assert_eq!(reply.code(), "invalid_input");
    }
    app.join("r", "peer", "").await;
    app.join("r", "peer", "").await;
    // Full: refused, and the token it took is given back.
    for _ in 0..5 {
        let reply = app
            .post(None, json!({"type": "join", "room": "r", "role": "peer"}))
            .await;
        assert_eq!(reply.code(), "room_full");
    }
}

#[tokio::test]
async fn forwarded_addresses_with_ports_or_brackets_count_and_an_ipv6_64_is_one_client() {
    let app = TestApp::with(|c| {
        c.trust_forwarded_for = true;
        c.join_burst = 1.0;
        c.join_rate = 0.01;
    });
    let ok = app.request(join_from("a", Some("203.0.113.7:5678"))).await;
    assert_eq!(ok.status, StatusCode::OK);
    let again = app.request(join_from("b", Some("203.0.113.7"))).await;
    assert_eq!(again.code(), "rate_limited", "the port is no new client");
    let v6 = app
        .request(join_from("c", Some("[2001:db8:1:2::1]:443")))
        .await;
    assert_eq!(v6.status, StatusCode::OK);
    let same_64 = app
        .request(join_from("d", Some("2001:db8:1:2::ffff")))
        .await;
    assert_eq!(same_64.code(), "rate_limited", "same /64");
    let other_64 = app.request(join_from("e", Some("2001:db8:1:3::1"))).await;
    assert_eq!(other_64.status, StatusCode::OK);
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
