//! Command-line flags, each with a `CALLROOM_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// callroom-server: signaling for callroom video calls, and the demo pages.
#[derive(Debug, Clone, Parser)]
#[command(name = "callroom-server", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CALLROOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Runtime worker threads; default: one per CPU core.
    #[arg(long, env = "CALLROOM_WORKERS")]
    pub workers: Option<usize>,

    /// SQLite database file; `:memory:` for a throwaway server.
    #[arg(long, env = "CALLROOM_DB", default_value = "callroom.db")]
    pub db: String,

    /// Folder served at `/` (the demo pages).
    #[arg(long, env = "CALLROOM_DEMO_DIR", default_value = "demo")]
    pub demo_dir: PathBuf,

    /// Folder served at `/pkg/` (the built npm package).
    #[arg(long, env = "CALLROOM_PKG_DIR", default_value = "pkg")]
    pub pkg_dir: PathBuf,

    /// Origin allowed to call the API from a browser (repeatable). Without any, same-origin
    /// pages and http(s)://localhost, 127.0.0.1 and [::1] on any port are allowed.
    #[arg(
        long = "allow-origin",
        env = "CALLROOM_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// A peer that has not polled for this long is removed from its room.
    #[arg(long, env = "CALLROOM_PEER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub peer_timeout: Duration,

    /// Undelivered messages older than this are dropped.
    #[arg(long, env = "CALLROOM_MESSAGE_TTL", default_value = "1h", value_parser = parse_duration)]
    pub message_ttl: Duration,

    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests, before it is closed.
    #[arg(long, env = "CALLROOM_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// How long a request's body may take to arrive (longer: 408 `request_timeout`).
    #[arg(long, env = "CALLROOM_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Most connections open at once; more get a quick 503 `server_busy` and are closed.
    /// Default: the open-file limit (raised to its hard limit at start) less 128.
    #[arg(long, env = "CALLROOM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Largest request body, in bytes (larger: 413 `body_too_large`).
    #[arg(long, env = "CALLROOM_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,

    /// Most peers in one room (more: 409 `room_full`).
    #[arg(long, env = "CALLROOM_ROOM_CAPACITY", default_value_t = 16)]
    pub room_capacity: u32,

    /// Relayed messages per second a peer may send, sustained (more: 429 `rate_limited`).
    #[arg(long, env = "CALLROOM_RELAY_RATE", default_value_t = 50.0)]
    pub relay_rate: f64,

    /// Relayed messages a peer may send in one burst (a negotiation's ICE candidates).
    #[arg(long, env = "CALLROOM_RELAY_BURST", default_value_t = 200.0)]
    pub relay_burst: f64,

    /// Joins per second one client address may make, sustained (more: 429 `rate_limited`).
    #[arg(long, env = "CALLROOM_JOIN_RATE", default_value_t = 2.0)]
    pub join_rate: f64,

    /// Joins one client address may make at once.
    #[arg(long, env = "CALLROOM_JOIN_BURST", default_value_t = 60.0)]
    pub join_burst: f64,

    /// Joins per second into one room, sustained (more: 429 `rate_limited`).
    #[arg(long, env = "CALLROOM_ROOM_JOIN_RATE", default_value_t = 2.0)]
    pub room_join_rate: f64,

    /// Joins into one room at once.
    #[arg(long, env = "CALLROOM_ROOM_JOIN_BURST", default_value_t = 40.0)]
    pub room_join_burst: f64,

    /// Behind a reverse proxy: take the client's address from the last `X-Forwarded-For`
    /// entry (the one the proxy added) for join limits, and this server's public host from
    /// `X-Forwarded-Host` for the same-origin check. Without a proxy, leave it off, or anyone
    /// can claim any address.
    #[arg(long, env = "CALLROOM_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Messages a recipient may have unacknowledged before relays to it are refused
    /// (429 `recipient_backlog`), so no peer can fill the disk through another.
    #[arg(long, env = "CALLROOM_MAX_BACKLOG", default_value_t = 1000)]
    pub max_backlog: u64,

    /// Bytes of payloads a recipient may have unacknowledged before relays to it are refused
    /// (429 `recipient_backlog`).
    #[arg(long, env = "CALLROOM_MAX_BACKLOG_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_backlog_bytes: u64,

    /// Bytes the database may hold before relays are refused (507 `storage_full`); joins,
    /// polls and everything else keep working, and the space comes back as messages are
    /// read or expire.
    #[arg(long, env = "CALLROOM_MAX_STORAGE", default_value_t = 1024 * 1024 * 1024)]
    pub max_storage: u64,

    /// Long-polls one peer may hold open at once (more: 429 `too_many_polls`).
    #[arg(long, env = "CALLROOM_MAX_POLLS_PER_PEER", default_value_t = 2)]
    pub max_polls_per_peer: u32,

    /// With a secret, joining needs a ticket: an HS256 JWT `{room, role, exp}` signed with it
    /// by the embedding app's backend. Without one, rooms are open.
    #[arg(long, env = "CALLROOM_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,

    /// Longest a ticket may live: one whose `exp` is further away is refused. A ticket with
    /// a `jti` works once (remembered until it expires); `nbf` is honoured.
    #[arg(long, env = "CALLROOM_MAX_TICKET_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    pub max_ticket_lifetime: Duration,

    /// Static ICE servers handed to clients, as a JSON array of
    /// `{urls, username?, credential?}`. Default: none (loopback and LAN need none).
    #[arg(long, env = "CALLROOM_ICE_SERVERS")]
    pub ice_servers: Option<String>,

    /// Shared secret of a TURN server using the TURN REST scheme (coturn `use-auth-secret`):
    /// clients get a time-limited username and an HMAC credential.
    #[arg(long, env = "CALLROOM_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// TURN URLs for `--turn-secret` (repeatable), e.g. `turn:turn.example.org:3478`.
    #[arg(long = "turn-url", env = "CALLROOM_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// Cloudflare TURN key id; with `--cf-turn-api-token`, ICE servers come from Cloudflare.
    #[arg(long, env = "CALLROOM_CF_TURN_KEY_ID")]
    pub cf_turn_key_id: Option<String>,

    /// Cloudflare TURN key API token. Stays on the server.
    #[arg(long, env = "CALLROOM_CF_TURN_API_TOKEN", hide_env_values = true)]
    pub cf_turn_api_token: Option<String>,

    /// Base URL of Cloudflare's Realtime API.
    #[arg(
        long,
        env = "CALLROOM_CF_API_BASE",
        default_value = "https://rtc.live.cloudflare.com/v1"
    )]
    pub cf_api_base: String,

    /// `local`: run the embedded SFU and serve its Calls API at `/v1`. `cloudflare`: send the
    /// room-scoped Calls proxy to Cloudflare (`--cf-api-base`) with the app id and secret.
    /// `off`: no SFU rooms.
    #[arg(long, env = "CALLROOM_SFU", default_value = "local", value_parser = ["local", "cloudflare", "off"])]
    pub sfu: String,

    /// UDP address the embedded SFU binds (one socket serves every session).
    #[arg(long, env = "CALLROOM_SFU_UDP", default_value = "0.0.0.0:0")]
    pub sfu_udp: SocketAddr,

    /// Address written into the embedded SFU's ICE candidates (repeatable). Default: this
    /// machine's non-loopback interface addresses (loopback when it has none).
    #[arg(
        long = "sfu-public-ip",
        env = "CALLROOM_SFU_PUBLIC_IPS",
        value_delimiter = ','
    )]
    pub sfu_public_ips: Vec<std::net::IpAddr>,

    /// Calls app id: the embedded SFU's own (default `callroom`), or Cloudflare's.
    #[arg(long, env = "CALLROOM_CALLS_APP_ID")]
    pub calls_app_id: Option<String>,

    /// Calls app secret (the `Authorization: Bearer` of the Calls API). For the embedded SFU a
    /// random one is made when none is given. Never sent to browsers.
    #[arg(long, env = "CALLROOM_CALLS_APP_SECRET", hide_env_values = true)]
    pub calls_app_secret: Option<String>,

    /// Lifetime of TURN credentials handed out.
    #[arg(long, env = "CALLROOM_TURN_TTL", default_value = "24h", value_parser = parse_duration)]
    pub turn_ttl: Duration,
}

impl Config {
    /// The join budgets of these flags.
    pub fn join_limits(&self) -> crate::live::JoinLimits {
        crate::live::JoinLimits {
            address_rate: self.join_rate,
            address_burst: self.join_burst,
            room_rate: self.room_join_rate,
            room_burst: self.room_join_burst,
        }
    }

    /// Defaults as if started with no arguments, except: a throwaway in-memory database and
    /// an ephemeral port.
    pub fn for_tests() -> Self {
        let mut config = Self::parse_from(["callroom-server"]);
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.db = ":memory:".into();
        config
    }
}

pub use callroom_rules::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_means_the_documented_defaults() {
        let config = Config::parse_from(["callroom-server"]);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.db, "callroom.db");
        assert_eq!(config.peer_timeout, Duration::from_secs(30));
        assert_eq!(config.message_ttl, Duration::from_secs(3600));
        assert_eq!(config.max_body, 65_536);
        assert_eq!(config.room_capacity, 16);
        assert!(config.ticket_secret.is_none());
        assert!(config.allow_origins.is_empty());
    }
}
