//! The Worker's front door: every API request is checked (origin, content type, size) and
//! handed to its room's Durable Object, found from the join's room or from the token; the
//! demo pages and the package are static assets.

use callroom_protocol::is_valid_room_id;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::config::Config;
use crate::cors;
use crate::error::ApiError;
use crate::http::{cached_settings, error_response, json_response, read_body};
use crate::ids;

/// The Durable Object namespace binding of rooms.
pub const ROOMS: &str = "ROOMS";
/// Smallest body limit of Calls proxy requests, as callroom-server's.
pub const CALLS_MAX_BODY: usize = 512 * 1024;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let api = is_api_path(&path);
    if !api {
        let assets = env.assets("ASSETS")?;
        // A folder's page is its index.html, as callroom-server serves it.
        if path.ends_with('/') {
            let mut url = req.url()?;
            url.set_path(&format!("{path}index.html"));
            return assets.fetch(url.to_string(), None).await;
        }
        return assets.fetch_request(req).await;
    }
    let origin = req.headers().get("origin")?;
    let config = match cached_settings(&env) {
        Ok(config) => config,
        Err(message) => {
            worker::console_error!("configuration: {message}");
            return error_response(&ApiError::internal());
        }
    };
    let preflight = req.method() == Method::Options;
    let mut response = if preflight {
        Response::empty()?.with_status(204)
    } else {
        match route(req, &env, &config).await {
            Ok(response) => response,
            Err(error) => error_response(&error)?,
        }
    };
    let headers = response.headers_mut();
    for (name, value) in cors::headers(&config.allow_origins, origin.as_deref(), preflight) {
        headers.set(name, &value)?;
    }
    Ok(response)
}

fn is_api_path(path: &str) -> bool {
    matches!(
        path,
        "/signaling" | "/messages" | "/turn-credentials" | "/healthz" | "/livez"
    ) || path.starts_with("/sfu/")
}

async fn route(
    mut req: Request,
    env: &Env,
    config: &Config,
) -> std::result::Result<Response, ApiError> {
    let path = req.path();
    let method = req.method();
    let changes_state = matches!(method, Method::Post | Method::Put);
    if changes_state {
        let headers = req.headers();
        let get = |name: &str| headers.get(name).ok().flatten();
        let (origin, host, content_type) = (get("origin"), get("host"), get("content-type"));
        // HTTP/2 and HTTP/3 bodies may come without either header: the stream tells.
        let has_body = get("transfer-encoding").is_some()
            || get("content-length").is_some_and(|n| n != "0")
            || (get("content-length").is_none() && req.inner().body().is_some());
        cors::check(
            &config.allow_origins,
            cors::Sent {
                origin: origin.as_deref(),
                host: host.as_deref(),
                content_type: content_type.as_deref(),
                has_body,
            },
        )?;
    }
    match (path.as_str(), method.clone()) {
        ("/healthz" | "/livez", Method::Get | Method::Head) => json_response(
            200,
            &serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
        ),
        ("/signaling", Method::Post) => {
            let body = read_body(&mut req, config.max_body).await?;
            let room = match crate::signal::classify(&body)? {
                crate::signal::Kind::Join => room_of_join(&body)?,
                crate::signal::Kind::Leave | crate::signal::Kind::Relay(_) => token_room(&req)?,
            };
            to_room(env, &room, "/signaling", Method::Post, &req, Some(body)).await
        }
        ("/messages", Method::Get) => {
            let room = token_room(&req)?;
            let query = req.url().ok().and_then(|u| u.query().map(str::to_owned));
            let target = match query {
                Some(q) => format!("/messages?{q}"),
                None => "/messages".to_owned(),
            };
            to_room(env, &room, &target, Method::Get, &req, None).await
        }
        ("/turn-credentials", Method::Post) => {
            let room = token_room(&req)?;
            to_room(env, &room, "/turn-credentials", Method::Post, &req, None).await
        }
        (sfu, Method::Post | Method::Put | Method::Get) if sfu.starts_with("/sfu/") => {
            // Refusals on these paths are Calls errors, as the Calls API answers them.
            let forwarded = async {
                let room = token_room(&req)?;
                let body = if method == Method::Get {
                    None
                } else {
                    Some(read_body(&mut req, config.max_body.max(CALLS_MAX_BODY)).await?)
                };
                to_room(env, &room, &path, method, &req, body).await
            };
            match forwarded.await {
                Ok(response) => Ok(response),
                Err(error) => crate::http::calls_error_response(
                    error.status(),
                    error.code.as_str(),
                    &error.message,
                )
                .map_err(|_| ApiError::internal()),
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A join's room (checked here: it names the Durable Object).
fn room_of_join(body: &[u8]) -> std::result::Result<String, ApiError> {
    let join = crate::signal::join_request(body)?;
    if !is_valid_room_id(&join.room) {
        return Err(ApiError::invalid_input(
            "room must match [A-Za-z0-9_-]{1,64}",
        ));
    }
    Ok(join.room)
}

/// The room named by the request's bearer token.
fn token_room(req: &Request) -> std::result::Result<String, ApiError> {
    let header = req.headers().get("authorization").ok().flatten();
    ids::bearer(header.as_deref())
        .and_then(ids::room_of_token)
        .map(str::to_owned)
        .ok_or_else(ApiError::unauthorized)
}

/// Hands the request to `room`'s Durable Object.
async fn to_room(
    env: &Env,
    room: &str,
    target: &str,
    method: Method,
    req: &Request,
    body: Option<Vec<u8>>,
) -> std::result::Result<Response, ApiError> {
    let internal = |e: worker::Error| {
        worker::console_error!("room {room}: {e}");
        ApiError::internal()
    };
    let stub = env
        .durable_object(ROOMS)
        .and_then(|ns| ns.id_from_name(room)?.get_stub())
        .map_err(internal)?;
    let headers = Headers::new();
    if let Some(auth) = req.headers().get("authorization").ok().flatten() {
        headers.set("authorization", &auth).map_err(internal)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        let bytes = js_sys::Uint8Array::from(body.as_slice());
        init.with_body(Some(bytes.into()));
    }
    let request =
        Request::new_with_init(&format!("https://room{target}"), &init).map_err(internal)?;
    let mut answer = stub.fetch_with_request(request).await.map_err(internal)?;
    // The object's response has immutable headers; ours gets CORS headers added.
    let body = answer.bytes().await.map_err(internal)?;
    let headers = Headers::new();
    for (name, value) in answer.headers().entries() {
        headers.set(&name, &value).map_err(internal)?;
    }
    Ok(Response::from_bytes(body)
        .map_err(internal)?
        .with_status(answer.status_code())
        .with_headers(headers))
}
