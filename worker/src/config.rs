//! The Worker's settings: the same `CALLROOM_*` names, formats and defaults as
//! callroom-server's environment variables, read from Worker vars and secrets.

use callroom_protocol::IceServer;
use callroom_rules::parse_duration;

/// Settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Origins allowed to call the API (none: loopback origins).
    pub allow_origins: Vec<String>,
    /// A peer that has not polled for this long (ms) is removed.
    pub peer_timeout_ms: i64,
    /// Undelivered messages older than this (ms) are dropped.
    pub message_ttl_ms: i64,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Most peers in one room.
    pub room_capacity: u32,
    /// Relays per second per peer, sustained.
    pub relay_rate: f64,
    /// Relays per peer in one burst.
    pub relay_burst: f64,
    /// Joins per second into one room, sustained.
    pub room_join_rate: f64,
    /// Joins into one room at once.
    pub room_join_burst: f64,
    /// Unacknowledged messages one recipient may have.
    pub max_backlog: u64,
    /// Unacknowledged payload bytes one recipient may have.
    pub max_backlog_bytes: u64,
    /// Bytes one room's storage may hold before relays are refused.
    pub max_storage: u64,
    /// Long-polls one peer may hold at once.
    pub max_polls_per_peer: u32,
    /// Join ticket secret; with one, joins need a ticket.
    pub ticket_secret: Option<String>,
    /// Longest a ticket may live, seconds.
    pub max_ticket_lifetime_s: u64,
    /// Static ICE servers handed to every client.
    pub ice_servers: Vec<IceServer>,
    /// Cloudflare TURN key id and its API token.
    pub cf_turn: Option<(String, String)>,
    /// Cloudflare's API base (TURN and Calls).
    pub cf_api_base: String,
    /// TURN credential lifetime, seconds.
    pub turn_ttl_s: u64,
    /// The Calls API the proxy forwards to: base, app id, app secret.
    pub calls: Option<Calls>,
}

/// Where the room-scoped Calls proxy forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calls {
    /// `https://rtc.live.cloudflare.com/v1` or a Calls-compatible SFU (callroom-server's).
    pub base: String,
    /// The Calls app id.
    pub app_id: String,
    /// The app secret (a Worker secret).
    pub app_secret: String,
}

impl Config {
    /// Reads every setting through `get` (a Worker var or secret by name); a malformed value
    /// is an error naming it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let text = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let duration_ms = |name: &str, default: &str| -> Result<i64, String> {
            let value = text(name).unwrap_or_else(|| default.to_owned());
            let duration = parse_duration(&value).map_err(|e| format!("{name}: {e}"))?;
            Ok(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
        };
        fn number<T: std::str::FromStr>(
            text: &dyn Fn(&str) -> Option<String>,
            name: &str,
            default: T,
        ) -> Result<T, String> {
            match text(name) {
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{name}: `{v}` is not a number")),
                None => Ok(default),
            }
        }
        let ice_servers = match text("CALLROOM_ICE_SERVERS") {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                format!("CALLROOM_ICE_SERVERS must be a JSON array of {{urls, username?, credential?}}: {e}")
            })?,
            None => Vec::new(),
        };
        let cf_turn = match (
            text("CALLROOM_CF_TURN_KEY_ID"),
            text("CALLROOM_CF_TURN_API_TOKEN"),
        ) {
            (Some(id), Some(token)) => Some((id, token)),
            (Some(_), None) => {
                return Err("CALLROOM_CF_TURN_KEY_ID needs CALLROOM_CF_TURN_API_TOKEN".into())
            }
            _ => None,
        };
        let cf_api_base = text("CALLROOM_CF_API_BASE")
            .unwrap_or_else(|| "https://rtc.live.cloudflare.com/v1".to_owned());
        let calls = match (
            text("CALLROOM_CALLS_APP_ID"),
            text("CALLROOM_CALLS_APP_SECRET"),
        ) {
            (Some(app_id), Some(app_secret)) => Some(Calls {
                base: text("CALLROOM_CALLS_API_BASE").unwrap_or_else(|| cf_api_base.clone()),
                app_id,
                app_secret,
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "sfu rooms need both CALLROOM_CALLS_APP_ID and CALLROOM_CALLS_APP_SECRET"
                        .into(),
                )
            }
            (None, None) => None,
        };
        let config = Self {
            allow_origins: text("CALLROOM_ALLOW_ORIGIN")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            peer_timeout_ms: duration_ms("CALLROOM_PEER_TIMEOUT", "30s")?,
            message_ttl_ms: duration_ms("CALLROOM_MESSAGE_TTL", "1h")?,
            max_body: number(&text, "CALLROOM_MAX_BODY", 64 * 1024)?,
            room_capacity: number(&text, "CALLROOM_ROOM_CAPACITY", 16)?,
            relay_rate: number(&text, "CALLROOM_RELAY_RATE", 50.0)?,
            relay_burst: number(&text, "CALLROOM_RELAY_BURST", 200.0)?,
            room_join_rate: number(&text, "CALLROOM_ROOM_JOIN_RATE", 2.0)?,
            room_join_burst: number(&text, "CALLROOM_ROOM_JOIN_BURST", 40.0)?,
            max_backlog: number(&text, "CALLROOM_MAX_BACKLOG", 1000)?,
            max_backlog_bytes: number(&text, "CALLROOM_MAX_BACKLOG_BYTES", 4 * 1024 * 1024)?,
            max_storage: number(&text, "CALLROOM_MAX_STORAGE", 256 * 1024 * 1024)?,
            max_polls_per_peer: number(&text, "CALLROOM_MAX_POLLS_PER_PEER", 2)?,
            ticket_secret: text("CALLROOM_TICKET_SECRET"),
            max_ticket_lifetime_s: u64::try_from(
                duration_ms("CALLROOM_MAX_TICKET_LIFETIME", "24h")? / 1000,
            )
            .unwrap_or(0),
            ice_servers,
            cf_turn,
            cf_api_base,
            turn_ttl_s: u64::try_from(duration_ms("CALLROOM_TURN_TTL", "24h")? / 1000).unwrap_or(0),
            calls,
        };
        if config.room_capacity < 2 {
            return Err("CALLROOM_ROOM_CAPACITY must be at least 2".into());
        }
        if config.max_polls_per_peer < 1 {
            return Err("CALLROOM_MAX_POLLS_PER_PEER must be at least 1".into());
        }
        Ok(config)
    }

    /// How often a room's alarm sweeps: a third of the peer timeout, within 100 ms .. 5 s,
    /// as callroom-server's sweeper.
    pub fn sweep_interval_ms(&self) -> i64 {
        (self.peer_timeout_ms / 3).clamp(100, 5_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_set_means_callroom_servers_defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.peer_timeout_ms, 30_000);
        assert_eq!(c.message_ttl_ms, 3_600_000);
        assert_eq!(
            (c.max_body, c.room_capacity, c.max_backlog),
            (65_536, 16, 1000)
        );
        assert_eq!(c.max_polls_per_peer, 2);
        assert!(c.ticket_secret.is_none() && c.calls.is_none() && c.cf_turn.is_none());
        assert_eq!(c.sweep_interval_ms(), 5_000);
    }

    #[test]
    fn values_use_the_servers_formats_and_bad_ones_are_named() {
        let c = config(&[
            ("CALLROOM_PEER_TIMEOUT", "900ms"),
            (
                "CALLROOM_ALLOW_ORIGIN",
                "https://a.example, https://b.example",
            ),
            ("CALLROOM_CALLS_APP_ID", "app"),
            ("CALLROOM_CALLS_APP_SECRET", "s"),
            ("CALLROOM_CALLS_API_BASE", "http://127.0.0.1:9/v1"),
        ])
        .unwrap();
        assert_eq!(c.peer_timeout_ms, 900);
        assert_eq!(c.sweep_interval_ms(), 300);
        assert_eq!(c.allow_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.calls.unwrap().base, "http://127.0.0.1:9/v1");
        assert!(config(&[("CALLROOM_ROOM_CAPACITY", "many")])
            .unwrap_err()
            .contains("CALLROOM_ROOM_CAPACITY"));
        assert!(config(&[("CALLROOM_ROOM_CAPACITY", "1")]).is_err());
        assert!(config(&[("CALLROOM_CALLS_APP_ID", "app")]).is_err());
        assert!(config(&[("CALLROOM_ICE_SERVERS", "{")]).is_err());
    }
}
