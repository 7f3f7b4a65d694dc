//! Every endpoint and every error code, through the real router without a socket.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{peer_id, token, types, TestApp};
use serde_json::json;

// ---------------------------------------------------------------- join

#[tokio::test]
async fn join_mints_a_peer_id_and_token_and_fixes_the_topology() {
    let app = TestApp::new();
    let joined = app.join("standup", "peer", "Ann").await;
    assert!(peer_id(&joined).starts_with('p'));
    assert_eq!(token(&joined).len(), 32);
    assert_eq!(joined["room"], "standup");
    assert_eq!(joined["topology"], "mesh");
    assert_eq!(joined["role"], "peer");
    assert_eq!(joined["peers"], json!([]));
    assert_eq!(joined["cursor"], 0);
    assert_eq!(joined["iceServers"], json!([]));
}

#[tokio::test]
async fn a_joiner_sees_who_is_there_and_they_hear_peer_joined() {
    let app = TestApp::new();
    let ann = app.join("r", "peer", "Ann").await;
    let bob = app.join("r", "peer", "Bob").await;
    assert_eq!(
        bob["peers"],
        json!([{"peerId": peer_id(&ann), "role": "peer", "name": "Ann"}])
    );
    let messages = app.messages(token(&ann), 0).await;
    assert_eq!(
        messages,
        vec![json!({"seq": 1, "type": "peer-joined", "from": null,
                    "payload": {"peerId": peer_id(&bob), "role": "peer", "name": "Bob"}})]
    );
}

#[tokio::test]
async fn roles_that_do_not_fit_the_rooms_topology_are_refused() {
    let app = TestApp::new();
    app.join("mesh-room", "peer", "").await;
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": "mesh-room", "role": "host"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "role_mismatch")
    );

    app.join("hub-room", "guest", "").await;
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": "hub-room", "role": "peer"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "role_mismatch")
    );
}

#[tokio::test]
async fn the_first_joiner_names_the_topology_and_unknown_ones_are_invalid_input() {
    let app = TestApp::new();
    let join = |room: &str, role: &str, topology: serde_json::Value| json!({"type": "join", "room": room, "role": role, "topology": topology});
    let reply = app.post(None, join("h", "host", json!("hub"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["topology"], "hub");

    let reply = app.post(None, join("m", "peer", json!("star"))).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "an unknown topology never silently becomes a mesh"
    );
    assert!(reply.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("star"));

    let reply = app.post(None, join("m", "guest", json!("mesh"))).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "a guest cannot create a mesh"
    );

    // The room `h` is a hub: asking for a mesh as a peer meets the room's own topology.
    let reply = app.post(None, join("h", "peer", json!("mesh"))).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "role_mismatch")
    );
    // An SFU room admits peers, but a peer expecting a mesh would never see media there.
    app.post(None, join("s", "peer", json!("sfu"))).await;
    let reply = app
        .post(None, json!({"type": "join", "room": "s", "role": "peer"}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "topology_mismatch")
    );
    assert!(reply.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sfu"));
}

#[tokio::test]
async fn a_full_room_refuses_the_next_joiner() {
    let app = TestApp::with(|c| c.room_capacity = 2);
    app.join("r", "peer", "a").await;
    app.join("r", "peer", "b").await;
    let reply = app
        .post(None, json!({"type": "join", "room": "r", "role": "peer"}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "room_full")
    );
}

#[tokio::test]
async fn invalid_join_fields_are_rejected_with_codes() {
    let app = TestApp::new();
    let cases = [
        (
            json!({"type": "join", "room": "bad room", "role": "peer"}),
            "invalid_input",
        ),
        (
            json!({"type": "join", "room": "x".repeat(65), "role": "peer"}),
            "invalid_input",
        ),
        (
            json!({"type": "join", "room": "", "role": "peer"}),
            "invalid_input",
        ),
        (
            json!({"type": "join", "room": "r", "role": "admin"}),
            "invalid_json",
        ),
        (json!({"type": "join", "role": "peer"}), "invalid_json"),
        (
            json!({"type": "join", "room": "r", "role": "peer", "name": "n".repeat(65)}),
            "invalid_input",
        ),
        (
            json!({"type": "join", "room": "r", "role": "peer", "name": "a\u{0}b"}),
            "invalid_input",
        ),
    ];
    for (body, code) in cases {
        let reply = app.post(None, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_database_stores_a_hash_of_the_token_not_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let app = TestApp::with(|c| c.db = db.to_string_lossy().into_owned());
    let joined = app.join("r", "peer", "").await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT token_hash FROM peers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32, "a SHA-256");
    let token = token(&joined);
    assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()));
    let dump: String = conn
        .query_row(
            "SELECT group_concat(id || name || room) FROM peers",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains(token));
}

// ---------------------------------------------------------------- relay

#[tokio::test]
async fn a_relayed_offer_arrives_with_sender_and_payload_unchanged() {
    let app = TestApp::new();
    let ann = app.join("r", "peer", "Ann").await;
    let bob = app.join("r", "peer", "Bob").await;
    let payload = json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    let reply = app
        .relay(token(&bob), peer_id(&ann), "offer", payload.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let messages = app.messages(token(&ann), 0).await;
    assert_eq!(types(&messages), ["peer-joined", "offer"]);
    assert_eq!(messages[1]["seq"], 2);
    assert_eq!(messages[1]["from"], peer_id(&bob));
    assert_eq!(messages[1]["payload"], payload);
}

#[tokio::test]
async fn a_spoofed_from_is_ignored() {
    let app = TestApp::new();
    let ann = app.join("r", "peer", "Ann").await;
    let bob = app.join("r", "peer", "Bob").await;
    let eve = app.join("r", "peer", "Eve").await;
    let reply = app
        .post(
            Some(token(&eve)),
            json!({"type": "offer", "to": peer_id(&ann), "from": peer_id(&bob), "payload": {}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let messages = app.messages(token(&ann), 0).await;
    let offer = messages.iter().find(|m| m["type"] == "offer").unwrap();
    assert_eq!(offer["from"], peer_id(&eve), "the token decides the sender");
}

#[tokio::test]
async fn a_peer_cannot_reach_or_read_another_room() {
    let app = TestApp::new();
    let a = app.join("room-a", "peer", "").await;
    let b = app.join("room-b", "peer", "").await;
    let b2 = app.join("room-b", "peer", "").await;
    let reply = app.relay(token(&a), peer_id(&b), "offer", json!({})).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::NOT_FOUND, "peer_not_found")
    );
    app.relay(token(&b2), peer_id(&b), "offer", json!({"secret": 1}))
        .await;
    // Each token reads only its own queue; nothing of room B reaches A.
    let seen_by_a = app.messages(token(&a), 0).await;
    assert!(seen_by_a.is_empty(), "{seen_by_a:?}");
}

#[tokio::test]
async fn relays_to_unknown_peers_or_oneself_are_refused() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let reply = app
        .relay(token(&a), "p0000000000000000", "offer", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::NOT_FOUND, "peer_not_found")
    );
    let reply = app.relay(token(&a), "../../etc", "offer", json!({})).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::NOT_FOUND, "peer_not_found")
    );
    let reply = app.relay(token(&a), peer_id(&a), "offer", json!({})).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
}

#[tokio::test]
async fn relay_types_are_open_but_server_and_malformed_types_are_refused() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for kind in ["offer", "answer", "candidate", "ice-restart", "renegotiate"] {
        let reply = app.relay(token(&a), peer_id(&b), kind, json!({})).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.json);
    }
    for kind in ["peer-joined", "peer-left", "host-reset", "Offer!", ""] {
        let reply = app.relay(token(&a), peer_id(&b), kind, json!({})).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "unknown_type"),
            "{kind}"
        );
    }
    let reply = app.post(Some(token(&a)), json!({"to": peer_id(&b)})).await;
    assert_eq!(reply.code(), "invalid_json", "no type at all");
    let reply = app
        .post(Some(token(&a)), json!({"type": "offer", "to": peer_id(&b)}))
        .await;
    assert_eq!(reply.code(), "invalid_json", "no payload");
}

#[tokio::test]
async fn in_a_hub_guests_reach_only_the_host() {
    let app = TestApp::new();
    let host = app.join("hub", "host", "H").await;
    let g1 = app.join("hub", "guest", "G1").await;
    let g2 = app.join("hub", "guest", "G2").await;
    assert_eq!(g1["topology"], "hub");
    let reply = app
        .relay(token(&g1), peer_id(&g2), "offer", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(
        app.relay(token(&g1), peer_id(&host), "offer", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.relay(token(&host), peer_id(&g2), "answer", json!({}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_peer_over_its_relay_budget_gets_429_with_retry_after() {
    let app = TestApp::with(|c| {
        c.relay_burst = 3.0;
        c.relay_rate = 0.5;
    });
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for _ in 0..3 {
        assert_eq!(
            app.relay(token(&a), peer_id(&b), "candidate", json!({}))
                .await
                .status,
            StatusCode::OK
        );
    }
    let reply = app
        .relay(token(&a), peer_id(&b), "candidate", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(reply.headers["retry-after"], "2");
    // Another peer's budget is its own.
    assert_eq!(
        app.relay(token(&b), peer_id(&a), "candidate", json!({}))
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn calls_without_a_valid_token_are_401() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let bogus = "0123456789abcdef0123456789abcdef";
    for reply in [
        app.post(None, json!({"type": "leave"})).await,
        app.post(Some(bogus), json!({"type": "leave"})).await,
        app.post(
            Some("junk"),
            json!({"type": "offer", "to": peer_id(&a), "payload": {}}),
        )
        .await,
        app.poll(bogus, 0, 0).await,
        app.call(Method::GET, "/messages", None, None).await,
        app.call(Method::POST, "/turn-credentials", None, None)
            .await,
        app.call(Method::POST, "/turn-credentials", Some(bogus), None)
            .await,
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
    let basic = Request::post("/signaling")
        .header("authorization", format!("Basic {}", token(&a)))
        .body(Body::from(r#"{"type":"leave"}"#))
        .unwrap();
    assert_eq!(app.request(basic).await.code(), "unauthorized");
}

// ---------------------------------------------------------------- leave and hub resets

#[tokio::test]
async fn leave_tells_the_room_and_ends_the_token() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let reply = app.post(Some(token(&b)), json!({"type": "leave"})).await;
    assert_eq!(reply.status, StatusCode::OK);
    let messages = app.messages(token(&a), 0).await;
    assert_eq!(types(&messages), ["peer-joined", "peer-left"]);
    assert_eq!(
        messages[1]["payload"],
        json!({"peerId": peer_id(&b), "reason": "left"})
    );
    assert_eq!(app.poll(token(&b), 0, 0).await.code(), "unauthorized");
}

#[tokio::test]
async fn an_emptied_room_is_gone_and_can_be_created_anew() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    app.post(Some(token(&a)), json!({"type": "leave"})).await;
    let host = app.join("r", "host", "").await;
    assert_eq!(host["topology"], "hub", "the next first joiner decides");
}

#[tokio::test]
async fn a_rejoining_host_resets_its_hub_and_nothing_else() {
    let app = TestApp::new();
    let old_host = app.join("hub", "host", "H").await;
    let guest = app.join("hub", "guest", "G").await;
    let other_host = app.join("other-hub", "host", "X").await;
    app.relay(token(&guest), peer_id(&old_host), "offer", json!({}))
        .await;

    let new_host = rejoin_host(&app, "hub", &old_host).await;
    assert_eq!(
        new_host["peers"],
        json!([{"peerId": peer_id(&guest), "role": "guest", "name": "G"}])
    );
    let messages = app.messages(token(&guest), 0).await;
    assert_eq!(types(&messages), ["host-reset"]);
    assert_eq!(messages[0]["payload"]["host"]["peerId"], peer_id(&new_host));
    assert_eq!(messages[0]["payload"]["previousPeerId"], peer_id(&old_host));
    // The old host learns it was replaced (not merely expired), so it need not fight back.
    let replaced = app.poll(token(&old_host), 0, 0).await;
    assert_eq!(
        (replaced.status, replaced.code()),
        (StatusCode::UNAUTHORIZED, "replaced")
    );
    // The other hub is untouched.
    assert_eq!(
        app.poll(token(&other_host), 0, 0).await.status,
        StatusCode::OK
    );
    assert_eq!(app.state.store.room_peers("other-hub").unwrap().len(), 1);
}

/// Joins `room` as host with the reclaim key `earlier` was given (a reload of that host).
async fn rejoin_host(app: &TestApp, room: &str, earlier: &serde_json::Value) -> serde_json::Value {
    let key = earlier["reclaimKey"]
        .as_str()
        .expect("a host gets a reclaim key");
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": room, "role": "host", "reclaim": key}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    reply.json
}

#[tokio::test]
async fn a_live_hosts_seat_is_not_taken_without_its_reclaim_key() {
    let app = TestApp::new();
    let host = app.join("hub", "host", "H").await;
    let guest = app.join("hub", "guest", "G").await;
    assert!(guest.get("reclaimKey").is_none(), "only hosts get one");
    for reclaim in [None, Some("guessed"), Some("")] {
        let mut body = json!({"type": "join", "room": "hub", "role": "host", "name": "Mallory"});
        if let Some(key) = reclaim {
            body["reclaim"] = json!(key);
        }
        let reply = app.post(None, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::CONFLICT, "host_taken"),
            "{reclaim:?}"
        );
    }
    // Nothing happened to the hub.
    assert_eq!(app.poll(token(&host), 0, 0).await.status, StatusCode::OK);
    assert!(app.messages(token(&guest), 0).await.is_empty());
    // With the key (a reload of the same host), the seat is taken back, and the key stays in
    // force: an answer lost on the way must not lock the host out of its own seat.
    let reloaded = rejoin_host(&app, "hub", &host).await;
    assert_eq!(reloaded["reclaimKey"], host["reclaimKey"]);
    let again = rejoin_host(&app, "hub", &host).await;
    // An empty seat (the host left) is anyone's, and its taker gets a new key: the old one
    // no longer proves anything.
    app.post(Some(token(&again)), json!({"type": "leave"}))
        .await;
    let new_host = app.join("hub", "host", "New").await;
    assert_ne!(new_host["reclaimKey"], host["reclaimKey"]);
    let stale = app
        .post(
            None,
            json!({"type": "join", "room": "hub", "role": "host", "reclaim": host["reclaimKey"]}),
        )
        .await;
    assert_eq!(stale.code(), "host_taken");
}

#[tokio::test]
async fn a_host_ticket_takes_a_live_hosts_seat() {
    let app = TestApp::with(|c| c.ticket_secret = Some("backend-secret".into()));
    let join = |name: &str| {
        json!({"type": "join", "room": "r", "role": "host", "name": name,
               "ticket": ticket("backend-secret", "r", "host")})
    };
    let first = app.post(None, join("A")).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = app.post(None, join("B")).await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "the app's backend vouches for B"
    );
    assert_eq!(
        app.poll(first.json["token"].as_str().unwrap(), 0, 0)
            .await
            .code(),
        "replaced"
    );
}

#[tokio::test]
async fn a_replaced_host_is_told_so_after_a_restart_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db").to_string_lossy().into_owned();
    let config = |c: &mut callroom_server::Config| c.db = db.clone();
    let old_host = {
        let app = TestApp::with(config);
        let old_host = app.join("hub", "host", "").await;
        rejoin_host(&app, "hub", &old_host).await;
        old_host
    };
    let app = TestApp::with(config);
    let reply = app.poll(token(&old_host), 0, 0).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "replaced"),
        "not unauthorized, which would make it rejoin and take the seat back"
    );
}

#[tokio::test]
async fn a_guest_joining_never_resets_a_hub() {
    let app = TestApp::new();
    let host = app.join("hub", "host", "").await;
    app.join("hub", "guest", "").await;
    app.join("hub", "guest", "").await;
    let messages = app.messages(token(&host), 0).await;
    assert_eq!(types(&messages), ["peer-joined", "peer-joined"]);
}

// ---------------------------------------------------------------- messages

#[tokio::test]
async fn seq_is_per_recipient_gapless_and_acknowledged_messages_are_gone() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for i in 0..5 {
        app.relay(token(&b), peer_id(&a), "candidate", json!({"i": i}))
            .await;
    }
    let all = app.messages(token(&a), 0).await;
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let reply = app.poll(token(&a), 3, 0).await;
    assert_eq!(reply.json["cursor"], 6);
    let rest: Vec<u64> = reply.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(rest, [4, 5, 6]);
    // 1..=3 were acknowledged by polling with since=3; the sweeper deletes them.
    app.state.sweep(callroom_server::state::now_ms()).unwrap();
    let after_ack: Vec<u64> = app
        .messages(token(&a), 0)
        .await
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(after_ack, [4, 5, 6]);
    let empty = app.poll(token(&a), 6, 0).await;
    assert_eq!(empty.json, json!({"messages": [], "cursor": 6}));
}

#[tokio::test]
async fn a_large_backlog_comes_in_batches_with_a_cursor() {
    let app = TestApp::with(|c| c.relay_burst = 1000.0);
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for i in 0..299 {
        app.relay(token(&b), peer_id(&a), "candidate", json!({"i": i}))
            .await;
    }
    let first = app.poll(token(&a), 0, 0).await;
    assert_eq!(first.json["messages"].as_array().unwrap().len(), 256);
    assert_eq!(first.json["cursor"], 256);
    let second = app.poll(token(&a), 256, 0).await;
    assert_eq!(second.json["messages"].as_array().unwrap().len(), 44);
    assert_eq!(second.json["cursor"], 300);
}

#[tokio::test]
async fn bad_cursors_and_queries_are_400() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let reply = app.poll(token(&a), 5, 0).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "cursor_ahead")
    );
    let reply = app
        .call(Method::GET, "/messages?since=abc", Some(token(&a)), None)
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let reply = app
        .call(Method::GET, "/messages?wait=-1", Some(token(&a)), None)
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_message_is_relayed() {
    let app = std::sync::Arc::new(TestApp::new());
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    app.messages(token(&a), 0).await; // the peer-joined event
    let waiting = {
        let app = app.clone();
        let token = token(&a).to_owned();
        tokio::spawn(async move { app.poll(&token, 1, 25_000).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.relay(token(&b), peer_id(&a), "offer", json!({"n": 1}))
        .await;
    let reply = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("the poll answered before its wait expired")
        .unwrap();
    assert_eq!(types(reply.json["messages"].as_array().unwrap()), ["offer"]);
}

#[tokio::test]
async fn too_many_concurrent_polls_per_peer_are_refused() {
    let app = std::sync::Arc::new(TestApp::with(|c| c.max_polls_per_peer = 1));
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    app.messages(token(&a), 0).await;
    let first = {
        let app = app.clone();
        let token = token(&a).to_owned();
        tokio::spawn(async move { app.poll(&token, 1, 25_000).await })
    };
    // Until the first poll holds its slot, a second one may still get in; wait for that.
    while !app.state.live.is_polling(peer_id(&a)) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = app.poll(token(&a), 1, 0).await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_polls")
    );
    assert!(second.headers.contains_key("retry-after"));
    app.relay(token(&b), peer_id(&a), "offer", json!({})).await;
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
}

// ---------------------------------------------------------------- presence and cleanup

#[tokio::test]
async fn a_silent_peer_times_out_and_the_room_hears_why() {
    let app = TestApp::with(|c| c.peer_timeout = std::time::Duration::from_secs(1));
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let later = callroom_server::state::now_ms() + 1_500;
    // a polls "now" (at `later`), b stays silent.
    app.state.live.touch(peer_id(&a), later);
    let swept = app.state.sweep(later).unwrap();
    assert_eq!(swept.timed_out, vec![peer_id(&b).to_owned()]);
    let messages = app.messages(token(&a), 0).await;
    assert_eq!(types(&messages), ["peer-joined", "peer-left"]);
    assert_eq!(messages[1]["payload"]["reason"], "timeout");
    assert_eq!(app.poll(token(&b), 0, 0).await.code(), "unauthorized");
}

#[tokio::test]
async fn a_sweep_of_many_silent_peers_runs_in_batches_that_release_the_database() {
    use callroom_server::store::SWEEP_BATCH;
    let app = TestApp::with(|c| c.peer_timeout = std::time::Duration::from_secs(1));
    let peers = 450;
    assert!(peers > 2 * SWEEP_BATCH);
    for i in 0..peers {
        app.join(&format!("room{}", i / 15), "peer", "").await;
    }
    let later = callroom_server::state::now_ms() + 1_500;
    let before = app.state.store.transactions();
    let swept = app.state.sweep(later).unwrap();
    assert_eq!(swept.timed_out.len(), peers);
    // At least three batches of peers, then one or more for each kind of leftover (old messages,
    // empty rooms, expired tickets); one transaction held the lock for all of it before.
    let transactions = app.state.store.transactions() - before;
    assert!(
        transactions >= 3 + 3,
        "{peers} peers went in {transactions} transaction(s)"
    );
    assert!(app.state.store.room_peers("room0").unwrap().is_empty());
}

#[tokio::test]
async fn a_new_peer_gets_a_full_timeout_before_its_first_poll() {
    // The server has been running for an hour: a peer that never polled would count as last
    // seen at the start, an hour ago, unless its join counts as its first heartbeat.
    let now = callroom_server::state::now_ms();
    let app = TestApp::started_at(now - 3_600_000, |c| {
        c.peer_timeout = std::time::Duration::from_secs(10)
    });
    let a = app.join("r", "peer", "").await;
    let swept = app.state.sweep(now + 5_000).unwrap();
    assert!(
        !swept.timed_out.contains(&peer_id(&a).to_owned()),
        "joined 5 s before the sweep, well within the 10 s timeout: {:?}",
        swept.timed_out
    );
    let swept = app.state.sweep(now + 11_000).unwrap();
    assert_eq!(
        swept.timed_out,
        [peer_id(&a).to_owned()],
        "silent for longer than the timeout after its join"
    );
}

#[tokio::test]
async fn a_peer_holding_a_long_poll_is_present() {
    let app = TestApp::with(|c| c.peer_timeout = std::time::Duration::from_secs(1));
    let a = app.join("r", "peer", "").await;
    let _slot = app.state.live.take_poll_slot(peer_id(&a), 2).unwrap();
    let swept = app
        .state
        .sweep(callroom_server::state::now_ms() + 5_000)
        .unwrap();
    assert!(swept.timed_out.is_empty());
}

#[tokio::test]
async fn messages_older_than_the_ttl_are_dropped() {
    let app = TestApp::with(|c| c.message_ttl = std::time::Duration::from_secs(60));
    let a = app.join("r", "peer", "").await;
    app.join("r", "peer", "").await;
    let later = callroom_server::state::now_ms() + 61_000;
    app.state.live.touch(peer_id(&a), later); // keep a present
    let swept = app.state.sweep(later).unwrap();
    assert_eq!(swept.expired_messages, 1);
}

#[tokio::test]
async fn a_poll_held_from_an_older_cursor_is_no_expiry() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    for _ in 0..3 {
        app.relay(token(&b), peer_id(&a), "candidate", json!({}))
            .await;
    }
    // A newer poll acknowledged everything; an older one (a second poll in flight) still
    // reads from 1, before the acknowledged messages are swept.
    app.poll(token(&a), 4, 0).await;
    let older = app.poll(token(&a), 1, 0).await;
    assert_eq!(older.status, StatusCode::OK, "{}", older.json);
}

#[tokio::test]
async fn a_poll_past_messages_that_expired_unread_is_410_cursor_expired_not_a_silent_hole() {
    let app = TestApp::with(|c| c.message_ttl = std::time::Duration::from_secs(60));
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    // a has `peer-joined` (seq 1) unread; it expires.
    let later = callroom_server::state::now_ms() + 61_000;
    app.state.live.touch(peer_id(&a), later);
    app.state.live.touch(peer_id(&b), later);
    app.state.sweep(later).unwrap();
    // A newer message arrives (seq 2): reading from 0 would skip seq 1 without a word.
    let reply = app.relay(token(&b), peer_id(&a), "offer", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = app.poll(token(&a), 0, 0).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::GONE, "cursor_expired")
    );
    // From the cursor after the hole (a rejoin reads from its new start), all is well.
    assert_eq!(app.messages(token(&a), 1).await.len(), 1);
    // And a cursor at the end is fine whatever expired before it.
    assert!(app.messages(token(&a), 2).await.is_empty());
}

// ---------------------------------------------------------------- bodies and methods

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let app = TestApp::new();
    for body in ["{", "not json", "[]", "{\"type\": 5}", ""] {
        let reply = app
            .call(Method::POST, "/signaling", None, Some(body.into()))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "invalid_json"),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn unknown_types_are_400_unknown_type() {
    let app = TestApp::new();
    let reply = app.post(None, json!({"type": "Launch Missiles"})).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "unknown_type")
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_in_json() {
    let app = TestApp::with(|c| c.max_body = 1024);
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let big = json!({"type": "offer", "to": peer_id(&b), "payload": {"sdp": "x".repeat(2000)}});
    let reply = app.post(Some(token(&a)), big).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    assert!(
        app.messages(token(&b), 0).await.is_empty(),
        "nothing was relayed"
    );
}

#[tokio::test]
async fn wrong_methods_are_405_in_json() {
    let app = TestApp::new();
    let reply = app.call(Method::GET, "/signaling", None, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let reply = app.call(Method::DELETE, "/messages", None, None).await;
    assert_eq!(reply.code(), "method_not_allowed");
}

// ---------------------------------------------------------------- tickets

fn ticket(secret: &str, room: &str, role: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"room": room, "role": role, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn with_a_ticket_secret_joins_need_a_matching_ticket() {
    let app = TestApp::with(|c| c.ticket_secret = Some("backend-secret".into()));
    let reply = app
        .post(None, json!({"type": "join", "room": "r", "role": "host"}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "ticket_required")
    );

    let good = ticket("backend-secret", "r", "host");
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": "r", "role": "host", "ticket": good}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);

    for (bad, why) in [
        (ticket("backend-secret", "other", "host"), "room"),
        (ticket("backend-secret", "r", "guest"), "role"),
        (ticket("forged-secret", "r", "host"), "signature"),
    ] {
        let reply = app
            .post(
                None,
                json!({"type": "join", "room": "r", "role": "host", "ticket": bad}),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::FORBIDDEN, "invalid_ticket"),
            "{why}"
        );
    }
    // A guest ticket cannot be used to take over the hub as host.
    let guest = ticket("backend-secret", "r", "guest");
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": "r", "role": "host", "ticket": guest}),
        )
        .await;
    assert_eq!(reply.code(), "invalid_ticket");
}

#[tokio::test]
async fn a_ticket_with_a_jti_joins_once_and_after_a_restart_still_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db").to_string_lossy().into_owned();
    let config = |c: &mut callroom_server::Config| {
        c.db = db.clone();
        c.ticket_secret = Some("backend-secret".into());
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let once = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"room": "r", "role": "peer", "exp": exp, "jti": "invite-42"}),
        &jsonwebtoken::EncodingKey::from_secret(b"backend-secret"),
    )
    .unwrap();
    let join = json!({"type": "join", "room": "r", "role": "peer", "ticket": once});
    {
        let app = TestApp::with(config);
        assert_eq!(app.post(None, join.clone()).await.status, StatusCode::OK);
        let again = app.post(None, join.clone()).await;
        assert_eq!(
            (again.status, again.code()),
            (StatusCode::FORBIDDEN, "invalid_ticket")
        );
        assert!(again.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used already"));
        // A ticket without a jti is for any number of joins, as before.
        let reusable = ticket("backend-secret", "r", "peer");
        for _ in 0..2 {
            let reply = app
                .post(
                    None,
                    json!({"type": "join", "room": "r", "role": "peer", "ticket": reusable}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    let app = TestApp::with(config);
    assert_eq!(app.post(None, join).await.code(), "invalid_ticket");
}

// ---------------------------------------------------------------- CORS

async fn preflight(app: &TestApp, origin: &str) -> Option<String> {
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/signaling")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap();
    app.request(request)
        .await
        .headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn by_default_loopback_origins_on_any_port_are_allowed_and_others_not() {
    let app = TestApp::new();
    assert_eq!(
        preflight(&app, "http://127.0.0.1:41234").await.as_deref(),
        Some("http://127.0.0.1:41234")
    );
    assert_eq!(
        preflight(&app, "http://localhost:5173").await.as_deref(),
        Some("http://localhost:5173")
    );
    assert_eq!(preflight(&app, "https://evil.example").await, None);
}

#[tokio::test]
async fn configured_origins_replace_the_default() {
    let app = TestApp::with(|c| c.allow_origins = vec!["https://app.example.com".into()]);
    assert_eq!(
        preflight(&app, "https://app.example.com").await.as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(preflight(&app, "http://localhost:5173").await, None);
}

// ---------------------------------------------------------------- TURN (static and REST modes)

#[tokio::test]
async fn turn_credentials_need_a_token_and_default_to_none() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let reply = app
        .call(Method::POST, "/turn-credentials", Some(token(&a)), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, json!({"iceServers": [], "ttl": 86400}));
}

#[tokio::test]
async fn static_ice_servers_reach_join_and_turn_credentials() {
    let app = TestApp::with(|c| {
        c.ice_servers = Some(r#"[{"urls":["stun:stun.example.org:3478"]}]"#.into())
    });
    let a = app.join("r", "peer", "").await;
    assert_eq!(
        a["iceServers"],
        json!([{"urls": ["stun:stun.example.org:3478"]}])
    );
    let reply = app
        .call(Method::POST, "/turn-credentials", Some(token(&a)), None)
        .await;
    assert_eq!(reply.json["iceServers"], a["iceServers"]);
}

#[tokio::test]
async fn turn_rest_mode_hands_out_time_limited_hmac_credentials_without_the_secret() {
    let app = TestApp::with(|c| {
        c.turn_secret = Some("coturn-shared-secret".into());
        c.turn_urls = vec!["turn:turn.example.org:3478?transport=udp".into()];
        c.turn_ttl = std::time::Duration::from_secs(600);
    });
    let a = app.join("r", "peer", "").await;
    let reply = app
        .call(Method::POST, "/turn-credentials", Some(token(&a)), None)
        .await;
    assert_eq!(reply.json["ttl"], 600);
    let server = &reply.json["iceServers"][0];
    assert_eq!(
        server["urls"],
        json!(["turn:turn.example.org:3478?transport=udp"])
    );
    let username = server["username"].as_str().unwrap();
    let (expiry, peer) = username.split_once(':').unwrap();
    assert_eq!(peer, peer_id(&a));
    let now = callroom_server::state::now_ms() as u64 / 1000;
    let expiry: u64 = expiry.parse().unwrap();
    assert!((now + 590..=now + 610).contains(&expiry), "expires in ~ttl");
    use base64::Engine;
    let mac = base64::engine::general_purpose::STANDARD
        .decode(server["credential"].as_str().unwrap())
        .unwrap();
    assert_eq!(mac.len(), 20, "an HMAC-SHA1");
    assert!(!reply.json.to_string().contains("coturn-shared-secret"));
    assert_eq!(
        a["iceServers"][0]["urls"], server["urls"],
        "join carries the same servers"
    );
}

#[tokio::test]
async fn contradictory_turn_flags_stop_the_server_from_starting() {
    let mut config = common::test_config();
    config.turn_secret = Some("s".into());
    assert!(
        callroom_server::AppState::new(config.clone()).is_err(),
        "secret without URL"
    );
    config.turn_urls = vec!["turn:x".into()];
    config.cf_turn_key_id = Some("k".into());
    config.cf_turn_api_token = Some("t".into());
    assert!(
        callroom_server::AppState::new(config).is_err(),
        "two TURN modes"
    );
    let mut config = common::test_config();
    config.ice_servers = Some("not json".into());
    assert!(callroom_server::AppState::new(config).is_err());
}

// ---------------------------------------------------------------- review fixes

#[tokio::test]
async fn a_replaced_hosts_pending_poll_learns_it_was_replaced() {
    let app = std::sync::Arc::new(TestApp::new());
    let old_host = app.join("hub", "host", "").await;
    let pending = {
        let app = app.clone();
        let token = token(&old_host).to_owned();
        tokio::spawn(async move { app.poll(&token, 0, 25_000).await })
    };
    while !app.state.live.is_polling(peer_id(&old_host)) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    rejoin_host(&app, "hub", &old_host).await;
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), pending)
        .await
        .expect("the pending poll answers")
        .unwrap();
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "replaced")
    );
}

#[tokio::test]
async fn a_cursor_too_large_for_sqlite_is_refused_and_sweeps_keep_working() {
    let app = TestApp::with(|c| c.peer_timeout = std::time::Duration::from_secs(1));
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let reply = app.poll(token(&a), u64::MAX, 0).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "cursor_ahead")
    );
    app.state
        .live
        .touch(peer_id(&a), callroom_server::state::now_ms() + 5_000);
    let swept = app
        .state
        .sweep(callroom_server::state::now_ms() + 5_000)
        .expect("sweep works");
    assert_eq!(
        swept.timed_out,
        vec![peer_id(&b).to_owned()],
        "presence still swept"
    );
}

#[tokio::test]
async fn relays_to_a_recipient_that_does_not_read_are_refused_past_the_backlog() {
    let app = TestApp::with(|c| c.max_backlog = 3);
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    // b polls once (acknowledging nothing), then stops reading.
    let seen = app.messages(token(&b), 0).await;
    assert!(seen.is_empty());
    for _ in 0..3 {
        assert_eq!(
            app.relay(token(&a), peer_id(&b), "candidate", json!({}))
                .await
                .status,
            StatusCode::OK
        );
    }
    let reply = app
        .relay(token(&a), peer_id(&b), "candidate", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "recipient_backlog")
    );
    assert!(reply.headers.contains_key("retry-after"));
    // Once b catches up, relays flow again.
    app.poll(token(&b), 3, 0).await;
    assert_eq!(
        app.relay(token(&a), peer_id(&b), "candidate", json!({}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn turn_credentials_share_the_relay_rate_budget() {
    let app = TestApp::with(|c| {
        c.relay_burst = 2.0;
        c.relay_rate = 0.5;
    });
    let a = app.join("r", "peer", "").await;
    for _ in 0..2 {
        let reply = app
            .call(Method::POST, "/turn-credentials", Some(token(&a)), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = app
        .call(Method::POST, "/turn-credentials", Some(token(&a)), None)
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn an_unknown_recipient_is_echoed_only_as_a_short_escaped_prefix() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let huge = format!("<script>{}", "x".repeat(60_000));
    let reply = app.relay(token(&a), &huge, "offer", json!({})).await;
    assert_eq!(reply.code(), "peer_not_found");
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.len() < 80, "bounded: {} bytes", message.len());
    assert!(message.contains("<script>xxxx"), "{message}");
}

#[tokio::test]
async fn a_peer_reset_storm_is_cut_to_a_few_per_recipient_and_other_relays_flow() {
    let app = TestApp::new();
    let a = app.join("r", "peer", "").await;
    let b = app.join("r", "peer", "").await;
    let c = app.join("r", "peer", "").await;
    for _ in 0..3 {
        let reply = app
            .relay(token(&a), peer_id(&b), "peer-reset", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = app
        .relay(token(&a), peer_id(&b), "peer-reset", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(reply.headers.contains_key("retry-after"));
    for (kind, to) in [("offer", peer_id(&b)), ("peer-reset", peer_id(&c))] {
        let reply = app.relay(token(&a), to, kind, json!({})).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}");
    }
}

#[tokio::test]
async fn no_error_echoes_more_than_a_short_prefix_of_what_was_sent() {
    let app = TestApp::new();
    let huge = format!("\u{202e}{}", "r".repeat(60_000));
    for body in [
        json!({"type": "join", "room": "r", "role": huge}),
        json!({"type": "join", "room": "r", "role": "peer", "topology": huge}),
        json!({"type": huge}),
        json!({"type": "join", "room": huge, "role": "peer"}),
    ] {
        let reply = app.post(None, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(
            message.len() <= 300,
            "{} bytes: {}",
            message.len(),
            reply.code()
        );
        assert!(!message.contains('\u{202e}'), "escaped: {message}");
    }
}

#[tokio::test]
async fn display_names_with_bidi_overrides_or_zero_width_characters_are_refused() {
    let app = TestApp::new();
    for name in [
        "Ann\u{202e}nimda",
        "Bo\u{200b}b",
        "\u{2066}Eve\u{2069}",
        "\u{feff}Zed",
        "tab\there",
    ] {
        let reply = app
            .post(
                None,
                json!({"type": "join", "room": "r", "role": "peer", "name": name}),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{name:?}"
        );
    }
    let ok = app
        .post(
            None,
            json!({"type": "join", "room": "r", "role": "peer", "name": "Zoë 李 🙂"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "ordinary Unicode stays welcome");
}
