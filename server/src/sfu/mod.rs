//! SFU rooms: the Calls API backend (the embedded SFU, or Cloudflare's), the Calls API the
//! embedded SFU serves at `/v1/apps/{appId}/…` ([`calls_api`]), and the room-scoped proxy our
//! own clients use with their peer token ([`proxy`]). The app secret never leaves the server.

pub mod calls_api;
mod cloudflare;
mod local;
pub mod proxy;
pub use callroom_rules::sdp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use callroom_sfu::calls::{
    CloseTrackObject, CloseTracksRequest, CloseTracksResponse, NewSessionResponse,
    RenegotiateRequest, RenegotiateResponse, SessionStateResponse, TracksRequest, TracksResponse,
    UpdateTracksRequest,
};
use callroom_sfu::CallsError;

use crate::config::Config;
pub use local::LocalSfu;
use proxy::Registry;

/// Where Calls requests go.
pub enum Backend {
    /// The SFU embedded in this process.
    Local(std::sync::Arc<LocalSfu>),
    /// Cloudflare's Calls API.
    Cloudflare(cloudflare::Client),
}

/// The SFU side of the server: its backend, its credentials and who publishes what.
pub struct SfuService {
    /// Where Calls requests go.
    pub backend: Backend,
    /// The Calls app id.
    pub app_id: String,
    /// The Calls app secret.
    pub app_secret: String,
    /// Peers' Calls sessions and published tracks.
    pub registry: Mutex<Registry>,
}

impl SfuService {
    /// The service `config` asks for; `None` with `--sfu off`.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let (backend, app_id, app_secret) = match config.sfu.as_str() {
            "off" => return Ok(None),
            "cloudflare" => {
                let (Some(app_id), Some(secret)) = (&config.calls_app_id, &config.calls_app_secret)
                else {
                    return Err(
                        "--sfu cloudflare needs --calls-app-id and --calls-app-secret".into(),
                    );
                };
                let client = cloudflare::Client::new(&config.cf_api_base, app_id, secret)?;
                (Backend::Cloudflare(client), app_id.clone(), secret.clone())
            }
            _ => {
                let public = if config.sfu_public_ips.is_empty() {
                    interface_addresses()
                } else {
                    config.sfu_public_ips.clone()
                };
                let sfu = LocalSfu::bind(config.sfu_udp, &public).map_err(|e| {
                    format!("cannot bind the SFU's UDP socket {}: {e}", config.sfu_udp)
                })?;
                let secret = match &config.calls_app_secret {
                    Some(secret) => secret.clone(),
                    None => crate::ids::new_token().map_err(|e| e.to_string())?,
                };
                let app_id = config
                    .calls_app_id
                    .clone()
                    .unwrap_or_else(|| "callroom".into());
                (Backend::Local(sfu), app_id, secret)
            }
        };
        Ok(Some(Self {
            backend,
            app_id,
            app_secret,
            registry: Mutex::new(Registry::default()),
        }))
    }

    /// The registry, whatever a panicking holder left (it holds no invariant a panic breaks).
    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `POST sessions/new`.
    pub async fn new_session(&self) -> Result<NewSessionResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => sfu
                .with(|sfu, now| sfu.new_session(now))
                .map(|session_id| NewSessionResponse { session_id }),
            Backend::Cloudflare(cf) => cf.post("sessions/new", &serde_json::json!({})).await,
        }
    }

    /// `POST sessions/{sid}/tracks/new`.
    pub async fn tracks_new(
        &self,
        sid: &str,
        request: TracksRequest,
    ) -> Result<TracksResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => sfu.with(|sfu, now| sfu.tracks_new(now, sid, request)),
            Backend::Cloudflare(cf) => {
                cf.post(&format!("sessions/{sid}/tracks/new"), &request)
                    .await
            }
        }
    }

    /// `PUT sessions/{sid}/renegotiate`.
    pub async fn renegotiate(
        &self,
        sid: &str,
        request: RenegotiateRequest,
    ) -> Result<RenegotiateResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => {
                sfu.with(|sfu, now| sfu.renegotiate(now, sid, request.session_description))
            }
            Backend::Cloudflare(cf) => {
                cf.put(&format!("sessions/{sid}/renegotiate"), &request)
                    .await
            }
        }
    }

    /// `PUT sessions/{sid}/tracks/close`.
    pub async fn tracks_close(
        &self,
        sid: &str,
        request: CloseTracksRequest,
    ) -> Result<CloseTracksResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => sfu.with(|sfu, now| sfu.tracks_close(now, sid, request)),
            Backend::Cloudflare(cf) => {
                cf.put(&format!("sessions/{sid}/tracks/close"), &request)
                    .await
            }
        }
    }

    /// `PUT sessions/{sid}/tracks/update`.
    pub async fn tracks_update(
        &self,
        sid: &str,
        request: UpdateTracksRequest,
    ) -> Result<TracksResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => sfu.with(|sfu, now| sfu.tracks_update(now, sid, request)),
            Backend::Cloudflare(cf) => {
                cf.put(&format!("sessions/{sid}/tracks/update"), &request)
                    .await
            }
        }
    }

    /// `GET sessions/{sid}`.
    pub async fn session_state(&self, sid: &str) -> Result<SessionStateResponse, CallsError> {
        match &self.backend {
            Backend::Local(sfu) => sfu.with(|sfu, now| sfu.session_state(now, sid)),
            Backend::Cloudflare(cf) => cf.get(&format!("sessions/{sid}")).await,
        }
    }

    /// Ends a session whose peer is gone: the embedded SFU closes it; Cloudflare's API has no
    /// session delete, so every track of it is force-closed (the session then idles out).
    pub async fn end_session(&self, sid: &str, mids: Vec<String>) {
        let result = match &self.backend {
            Backend::Local(sfu) => sfu.with(|sfu, now| sfu.close_session(now, sid)),
            Backend::Cloudflare(_) if mids.is_empty() => Ok(()),
            Backend::Cloudflare(cf) => {
                let request = CloseTracksRequest {
                    tracks: mids
                        .into_iter()
                        .map(|mid| CloseTrackObject {
                            mid,
                            ..Default::default()
                        })
                        .collect(),
                    force: true,
                    ..Default::default()
                };
                cf.put::<_, CloseTracksResponse>(&format!("sessions/{sid}/tracks/close"), &request)
                    .await
                    .map(drop)
            }
        };
        if let Err(err) = result {
            tracing::debug!(%err, session = sid, "ending an SFU session");
        }
    }
}

/// This machine's non-loopback interface addresses (IPv4 first), or loopback when it has none.
fn interface_addresses() -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            // Link-local IPv6 needs a scope id that candidates cannot carry.
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        })
        .collect();
    addrs.sort_by_key(|ip| ip.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        addrs.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    addrs
}

/// The addresses to write into candidates: each public ip at the socket's port.
fn candidate_addrs(public: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    public.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
}
