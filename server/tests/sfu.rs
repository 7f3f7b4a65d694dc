//! The embedded SFU's Calls API and the room-scoped Calls proxy, through the real router with
//! real SDP from str0m clients. Every authorization rule of the proxy has a test that a
//! forged, foreign or cross-room request is refused.

mod common;

use axum::http::{Method, StatusCode};
use common::{peer_id, token, types, Reply, TestApp};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};
use str0m::Rtc;

const APP: &str = "test-app";
const SECRET: &str = "test-secret-0123456789";

fn app() -> TestApp {
    TestApp::with(|c| {
        c.calls_app_id = Some(APP.into());
        c.calls_app_secret = Some(SECRET.into());
        c.sfu_public_ips = vec!["127.0.0.1".parse().unwrap()];
        c.sfu_udp = "127.0.0.1:0".parse().unwrap();
    })
}

/// A client offer sending one video track with `rids` (simulcast when not empty) and audio.
fn offer(rids: &[&str]) -> (Rtc, str0m::change::SdpPendingOffer, String, Vec<String>) {
    let mut rtc = Rtc::builder().build(std::time::Instant::now());
    let mut api = rtc.sdp_api();
    let simulcast = (!rids.is_empty()).then(|| {
        let mut s = Simulcast::new();
        for r in rids {
            s.add_send_layer(SimulcastLayer::new(r));
        }
        s
    });
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast);
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().expect("an offer");
    let sdp = offer.to_sdp_string();
    (
        rtc,
        pending,
        sdp,
        vec![video.to_string(), audio.to_string()],
    )
}

async fn calls(app: &TestApp, method: Method, path: &str, secret: &str, body: Value) -> Reply {
    let body = (method != Method::GET).then(|| body.to_string());
    app.call(
        method,
        &format!("/v1/apps/{APP}/{path}"),
        Some(secret),
        body,
    )
    .await
}

async fn proxy(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Reply {
    let body = (method != Method::GET).then(|| body.to_string());
    app.call(method, &format!("/sfu/{path}"), Some(token), body)
        .await
}

fn calls_code(reply: &Reply) -> &str {
    reply.json["errorCode"].as_str().unwrap_or("<no errorCode>")
}

async fn join_sfu(app: &TestApp, room: &str) -> Value {
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": room, "role": "peer", "topology": "sfu"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["topology"], "sfu");
    reply.json
}

/// A proxy session for `joined` that pushes camera (with `rids`) and microphone; returns the
/// session id and the pushed track names.
async fn push(app: &TestApp, joined: &Value, rids: &[&str]) -> (String, Vec<String>) {
    let t = token(joined);
    let created = proxy(app, Method::POST, "sessions/new", t, json!({})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let sid = created.json["sessionId"].as_str().unwrap().to_owned();
    let (mut rtc, pending, sdp, mids) = offer(rids);
    let reply = proxy(
        app,
        Method::POST,
        &format!("sessions/{sid}/tracks/new"),
        t,
        json!({"sessionDescription": {"type": "offer", "sdp": sdp},
               "tracks": [{"location": "local", "mid": mids[0], "trackName": "cam"},
                          {"location": "local", "mid": mids[1], "trackName": "mic"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let answer = reply.json["sessionDescription"]["sdp"].as_str().unwrap();
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(answer).unwrap())
        .expect("the SFU's answer is valid SDP for the offer");
    let names = reply.json["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trackName"].as_str().unwrap().to_owned())
        .collect();
    (sid, names)
}

#[tokio::test]
async fn the_calls_api_needs_the_app_id_and_secret() {
    let app = app();
    let ok = calls(&app, Method::POST, "sessions/new", SECRET, json!({})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.json);
    assert!(ok.json["sessionId"].as_str().unwrap().len() >= 16);
    let wrong = calls(&app, Method::POST, "sessions/new", "guess", json!({})).await;
    assert_eq!(
        (wrong.status, calls_code(&wrong)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let other_app = app
        .call(
            Method::POST,
            "/v1/apps/other/sessions/new",
            Some(SECRET),
            Some("{}".into()),
        )
        .await;
    assert_eq!(other_app.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_calls_api_pushes_with_an_answer_and_pulls_with_an_offer() {
    let app = app();
    let a = calls(&app, Method::POST, "sessions/new", SECRET, json!({})).await;
    let a = a.json["sessionId"].as_str().unwrap().to_owned();
    let (_rtc, _pending, sdp, mids) = offer(&[]);
    let pushed = calls(
        &app,
        Method::POST,
        &format!("sessions/{a}/tracks/new"),
        SECRET,
        json!({"sessionDescription": {"type": "offer", "sdp": sdp},
               "tracks": [{"location": "local", "mid": mids[0], "trackName": "video"}],
               "someFutureField": true}),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.json);
    assert_eq!(pushed.json["requiresImmediateRenegotiation"], false);
    assert_eq!(pushed.json["sessionDescription"]["type"], "answer");
    assert_eq!(pushed.json["tracks"][0]["trackName"], "video");

    let b = calls(&app, Method::POST, "sessions/new", SECRET, json!({})).await;
    let b = b.json["sessionId"].as_str().unwrap().to_owned();
    let pulled = calls(
        &app,
        Method::POST,
        &format!("sessions/{b}/tracks/new"),
        SECRET,
        json!({"tracks": [{"location": "remote", "sessionId": a, "trackName": "video"}]}),
    )
    .await;
    assert_eq!(pulled.status, StatusCode::OK, "{}", pulled.json);
    assert_eq!(pulled.json["requiresImmediateRenegotiation"], true);
    assert_eq!(pulled.json["sessionDescription"]["type"], "offer");

    let state = calls(
        &app,
        Method::GET,
        &format!("sessions/{a}"),
        SECRET,
        json!(null),
    )
    .await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.json);
    assert_eq!(state.json["tracks"][0]["trackName"], "video");
}

#[tokio::test]
async fn calls_api_errors_have_cloudflares_codes_and_statuses() {
    let app = app();
    let unknown = calls(
        &app,
        Method::GET,
        "sessions/0123456789abcdef",
        SECRET,
        json!(null),
    )
    .await;
    assert_eq!(
        (unknown.status.as_u16(), calls_code(&unknown)),
        (410, "session_error")
    );
    let s = calls(&app, Method::POST, "sessions/new", SECRET, json!({})).await;
    let s = s.json["sessionId"].as_str().unwrap().to_owned();
    let garbage = app
        .call(
            Method::POST,
            &format!("/v1/apps/{APP}/sessions/{s}/tracks/new"),
            Some(SECRET),
            Some("{not json".into()),
        )
        .await;
    assert_eq!(
        (garbage.status.as_u16(), calls_code(&garbage)),
        (400, "decoding_error")
    );
    let bad_sdp = calls(
        &app,
        Method::POST,
        &format!("sessions/{s}/tracks/new"),
        SECRET,
        json!({"sessionDescription": {"type": "offer", "sdp": "v=0 nonsense"},
               "tracks": [{"location": "local", "mid": "0", "trackName": "x"}]}),
    )
    .await;
    assert_eq!(
        calls_code(&bad_sdp),
        "invalid_session_description",
        "{}",
        bad_sdp.json
    );
    let too_big = app
        .call(
            Method::POST,
            &format!("/v1/apps/{APP}/sessions/{s}/tracks/new"),
            Some(SECRET),
            Some(format!(
                "{{\"tracks\": [], \"pad\": \"{}\"}}",
                "x".repeat(600_000)
            )),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_push_through_the_proxy_is_named_by_the_server_and_announced_to_the_room() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let bob = join_sfu(&app, "r").await;
    let (sid, names) = push(&app, &ann, &["f", "h", "q"]).await;
    let ann_id = peer_id(&ann);
    assert_eq!(names, [format!("{ann_id}-cam"), format!("{ann_id}-mic")]);

    let messages = app.messages(token(&bob), 0).await;
    let announced = messages
        .iter()
        .find(|m| m["type"] == "sfu-tracks")
        .expect("announced");
    assert_eq!(announced["from"], Value::Null);
    assert_eq!(
        announced["payload"],
        json!({"peerId": ann_id, "sessionId": sid, "tracks": [
            {"trackName": format!("{ann_id}-cam"), "kind": "video", "rids": ["f", "h", "q"]},
            {"trackName": format!("{ann_id}-mic"), "kind": "audio"}]})
    );
    let own = app.messages(token(&ann), 0).await;
    assert!(
        !types(&own).contains(&"sfu-tracks"),
        "the publisher is not told its own tracks"
    );

    // A newcomer hears what is already published.
    let cleo = join_sfu(&app, "r").await;
    let heard = app.messages(token(&cleo), 0).await;
    assert_eq!(types(&heard), ["sfu-tracks"]);
    assert_eq!(heard[0]["payload"]["peerId"], ann_id);
}

#[tokio::test]
async fn track_names_from_clients_are_validated_and_auto_discover_is_refused() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let t = token(&ann);
    let sid = proxy(&app, Method::POST, "sessions/new", t, json!({})).await;
    let sid = sid.json["sessionId"].as_str().unwrap().to_owned();
    let (_rtc, _pending, sdp, mids) = offer(&[]);
    for name in ["../p0000000000000000-cam", "", &"x".repeat(33), "a b"] {
        let reply = proxy(
            &app,
            Method::POST,
            &format!("sessions/{sid}/tracks/new"),
            t,
            json!({"sessionDescription": {"type": "offer", "sdp": sdp},
                   "tracks": [{"location": "local", "mid": mids[0], "trackName": name}]}),
        )
        .await;
        assert_eq!(
            (reply.status.as_u16(), calls_code(&reply)),
            (406, "invalid_params"),
            "{name}"
        );
    }
    let reply = proxy(
        &app,
        Method::POST,
        &format!("sessions/{sid}/tracks/new"),
        t,
        json!({"sessionDescription": {"type": "offer", "sdp": sdp}, "autoDiscover": true, "tracks": []}),
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), calls_code(&reply)),
        (406, "invalid_params")
    );
}

#[tokio::test]
async fn pulls_from_another_room_or_of_unpublished_tracks_are_refused() {
    let app = app();
    let ann = join_sfu(&app, "room1").await;
    let (ann_sid, names) = push(&app, &ann, &[]).await;
    let eve = join_sfu(&app, "room2").await;
    let eve_t = token(&eve);
    let eve_sid = proxy(&app, Method::POST, "sessions/new", eve_t, json!({})).await;
    let eve_sid = eve_sid.json["sessionId"].as_str().unwrap().to_owned();
    let pull = |track: String| json!({"tracks": [{"location": "remote", "sessionId": ann_sid, "trackName": track}]});
    let cross = proxy(
        &app,
        Method::POST,
        &format!("sessions/{eve_sid}/tracks/new"),
        eve_t,
        pull(names[0].clone()),
    )
    .await;
    assert_eq!(
        (cross.status, calls_code(&cross)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let update = proxy(
        &app,
        Method::PUT,
        &format!("sessions/{eve_sid}/tracks/update"),
        eve_t,
        json!({"tracks": [{"location": "remote", "sessionId": ann_sid, "trackName": names[0], "mid": "0",
                           "simulcast": {"preferredRid": "f"}}]}),
    )
    .await;
    assert_eq!(
        (update.status, calls_code(&update)),
        (StatusCode::FORBIDDEN, "forbidden")
    );

    // In the same room: allowed, with an SFU offer; a name never published is refused.
    let bob = join_sfu(&app, "room1").await;
    let bob_t = token(&bob);
    let bob_sid = proxy(&app, Method::POST, "sessions/new", bob_t, json!({})).await;
    let bob_sid = bob_sid.json["sessionId"].as_str().unwrap().to_owned();
    let ok = proxy(
        &app,
        Method::POST,
        &format!("sessions/{bob_sid}/tracks/new"),
        bob_t,
        pull(names[0].clone()),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["requiresImmediateRenegotiation"], true);
    let forged = proxy(
        &app,
        Method::POST,
        &format!("sessions/{bob_sid}/tracks/new"),
        bob_t,
        pull("p0000000000000000-cam".into()),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_peer_may_use_only_its_own_session() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let (ann_sid, _) = push(&app, &ann, &[]).await;
    let mallory = join_sfu(&app, "r").await;
    let m = token(&mallory);
    proxy(&app, Method::POST, "sessions/new", m, json!({})).await;
    for (method, path) in [
        (Method::GET, format!("sessions/{ann_sid}")),
        (Method::PUT, format!("sessions/{ann_sid}/tracks/close")),
        (Method::PUT, format!("sessions/{ann_sid}/renegotiate")),
        (Method::PUT, format!("sessions/{ann_sid}/tracks/update")),
        (Method::POST, format!("sessions/{ann_sid}/tracks/new")),
    ] {
        let reply = proxy(
            &app,
            method.clone(),
            &path,
            m,
            json!({"tracks": [{"mid": "0"}], "force": true}),
        )
        .await;
        assert_eq!(
            (reply.status, calls_code(&reply)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}"
        );
    }
    let ann_state = proxy(
        &app,
        Method::GET,
        &format!("sessions/{ann_sid}"),
        token(&ann),
        json!(null),
    )
    .await;
    assert_eq!(
        ann_state.status,
        StatusCode::OK,
        "the owner still can: {}",
        ann_state.json
    );
}

#[tokio::test]
async fn the_proxy_needs_a_peer_token_of_an_sfu_room() {
    let app = app();
    let none = app
        .call(Method::POST, "/sfu/sessions/new", None, Some("{}".into()))
        .await;
    assert_eq!(
        (none.status, calls_code(&none)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let secret = app
        .call(
            Method::POST,
            "/sfu/sessions/new",
            Some(SECRET),
            Some("{}".into()),
        )
        .await;
    assert_eq!(
        secret.status,
        StatusCode::UNAUTHORIZED,
        "the app secret is no peer token"
    );
    let mesh = app.join("m", "peer", "").await;
    let reply = proxy(&app, Method::POST, "sessions/new", token(&mesh), json!({})).await;
    assert_eq!(
        (reply.status, calls_code(&reply)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
}

#[tokio::test]
async fn sfu_rooms_admit_peers_and_forbid_relays_between_them() {
    let app = app();
    let a = join_sfu(&app, "r").await;
    let b = join_sfu(&app, "r").await;
    let reply = app.relay(token(&a), peer_id(&b), "offer", json!({})).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let host = app
        .post(None, json!({"type": "join", "room": "r", "role": "host"}))
        .await;
    assert_eq!(host.code(), "role_mismatch");
}

#[tokio::test]
async fn leaving_ends_the_peers_session_and_a_new_session_replaces_the_old() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let bob = join_sfu(&app, "r").await;
    let (first, _) = push(&app, &ann, &[]).await;
    let second = proxy(&app, Method::POST, "sessions/new", token(&ann), json!({})).await;
    let second = second.json["sessionId"].as_str().unwrap().to_owned();
    let gone = calls(
        &app,
        Method::GET,
        &format!("sessions/{first}"),
        SECRET,
        json!(null),
    )
    .await;
    assert_eq!(
        gone.status.as_u16(),
        410,
        "the first session was ended: {}",
        gone.json
    );
    let heard = app.messages(token(&bob), 0).await;
    let last = heard
        .iter()
        .rev()
        .find(|m| m["type"] == "sfu-tracks")
        .unwrap();
    assert_eq!(
        last["payload"]["tracks"],
        json!([]),
        "the room hears the tracks went"
    );

    app.post(Some(token(&ann)), json!({"type": "leave"})).await;
    // The session is ended in the background.
    for _ in 0..50 {
        let state = calls(
            &app,
            Method::GET,
            &format!("sessions/{second}"),
            SECRET,
            json!(null),
        )
        .await;
        if state.status.as_u16() == 410 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the session of a peer that left is still open");
}

#[tokio::test]
async fn with_sfu_cloudflare_the_proxy_sends_calls_requests_upstream_with_the_app_secret() {
    // Upstream: a real callroom-server with the embedded SFU, reached over HTTP like
    // rtc.live.cloudflare.com would be.
    let mut config = common::test_config();
    config.calls_app_id = Some(APP.into());
    config.calls_app_secret = Some(SECRET.into());
    config.sfu_public_ips = vec!["127.0.0.1".parse().unwrap()];
    let upstream = callroom_server::AppState::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(callroom_server::serve(
        listener,
        upstream,
        std::future::pending(),
    ));

    let proxying = |secret: &'static str| {
        let base = base.clone();
        TestApp::with(move |c| {
            c.sfu = "cloudflare".into();
            c.cf_api_base = base;
            c.calls_app_id = Some(APP.into());
            c.calls_app_secret = Some(secret.into());
        })
    };
    let app = proxying(SECRET);
    let ann = join_sfu(&app, "r").await;
    let bob = join_sfu(&app, "r").await;
    let (sid, names) = push(&app, &ann, &[]).await;
    assert_eq!(names.len(), 2, "pushed upstream and answered");
    let heard = app.messages(token(&bob), 0).await;
    assert_eq!(heard.last().unwrap()["payload"]["sessionId"], sid);
    let local = calls(&app, Method::POST, "sessions/new", SECRET, json!({})).await;
    assert_eq!(
        local.status,
        StatusCode::NOT_FOUND,
        "no embedded Calls API in cloudflare mode"
    );

    let wrong = proxying("not-the-secret");
    let eve = join_sfu(&wrong, "r").await;
    let refused = proxy(&wrong, Method::POST, "sessions/new", token(&eve), json!({})).await;
    assert_eq!(
        (refused.status, calls_code(&refused)),
        (StatusCode::BAD_GATEWAY, "internal_error"),
        "the server's own credentials failed, not the peer's token: {}",
        refused.json
    );
}

#[tokio::test]
async fn browsers_may_put_to_the_proxy_from_an_allowed_origin() {
    let app = app();
    let request = axum::http::Request::builder()
        .method(Method::OPTIONS)
        .uri("/sfu/sessions/abc/renegotiate")
        .header("origin", "http://127.0.0.1:41234")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = app.request(request).await;
    let methods = reply
        .headers
        .get("access-control-allow-methods")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        methods.contains("PUT"),
        "renegotiate and close are PUTs: {methods}"
    );
}

#[tokio::test]
async fn a_push_the_sfu_offers_is_announced_with_the_kind_the_client_named() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let bob = join_sfu(&app, "r").await;
    let t = token(&ann);
    let sid = proxy(&app, Method::POST, "sessions/new", t, json!({})).await;
    let sid = sid.json["sessionId"].as_str().unwrap().to_owned();
    let reply = proxy(
        &app,
        Method::POST,
        &format!("sessions/{sid}/tracks/new"),
        t,
        json!({"tracks": [{"location": "local", "trackName": "cam", "kind": "video"}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["requiresImmediateRenegotiation"], true);
    let heard = app.messages(token(&bob), 0).await;
    let announced = heard
        .iter()
        .find(|m| m["type"] == "sfu-tracks")
        .expect("announced");
    assert_eq!(
        announced["payload"]["tracks"],
        json!([{"trackName": format!("{}-cam", peer_id(&ann)), "kind": "video"}])
    );
}

#[tokio::test]
async fn a_peers_own_session_that_is_gone_answers_session_error_so_clients_rebuild() {
    let app = app();
    let ann = join_sfu(&app, "r").await;
    let t = token(&ann);
    let first = proxy(&app, Method::POST, "sessions/new", t, json!({})).await;
    let first = first.json["sessionId"].as_str().unwrap().to_owned();
    proxy(&app, Method::POST, "sessions/new", t, json!({})).await;
    let reply = proxy(
        &app,
        Method::GET,
        &format!("sessions/{first}"),
        t,
        json!(null),
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), calls_code(&reply)),
        (410, "session_error"),
        "{}",
        reply.json
    );
}

#[tokio::test]
async fn without_an_sfu_sfu_rooms_are_refused_at_join() {
    let app = TestApp::with(|c| c.sfu = "off".into());
    let reply = app
        .post(
            None,
            json!({"type": "join", "room": "r", "role": "peer", "topology": "sfu"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert!(reply.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no SFU"));
}
