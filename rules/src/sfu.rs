//! Who in a room holds which Calls session and publishes what: the bookkeeping of the
//! room-scoped Calls proxy, shared by callroom-server and the Worker.

use std::collections::HashMap;

use callroom_protocol::calls::{Location, TrackObject, TracksRequest, TracksResponse};
use callroom_protocol::{SfuTrack, SfuTracks};

/// Most tracks one peer is known to publish.
pub const MAX_PUBLISHED: usize = 64;
/// A track a peer publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Full Calls track name.
    pub name: String,
    /// Its mid in the publisher's session.
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Simulcast layers.
    pub rids: Vec<String>,
}

/// A peer's Calls session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The peer's room.
    pub room: String,
    /// Its Calls session.
    pub session_id: String,
    /// What it publishes.
    pub tracks: Vec<Published>,
}

/// Who holds which Calls session and publishes what. One entry per peer at most, so it is as
/// bounded as the peers table.
#[derive(Debug, Default)]
pub struct Registry {
    peers: HashMap<String, Binding>,
    by_session: HashMap<String, String>,
}

impl Registry {
    /// Binds `session_id` to `peer`; returns the binding it replaced.
    pub fn bind(&mut self, peer: &str, room: &str, session_id: &str) -> Option<Binding> {
        let old = self.unbind(peer);
        self.by_session
            .insert(session_id.to_owned(), peer.to_owned());
        self.peers.insert(
            peer.to_owned(),
            Binding {
                room: room.to_owned(),
                session_id: session_id.to_owned(),
                tracks: Vec::new(),
            },
        );
        old
    }

    /// Forgets `peer`'s session.
    pub fn unbind(&mut self, peer: &str) -> Option<Binding> {
        let old = self.peers.remove(peer)?;
        self.by_session.remove(&old.session_id);
        Some(old)
    }

    /// The peer holding `session_id`.
    pub fn peer_of(&self, session_id: &str) -> Option<&str> {
        self.by_session.get(session_id).map(String::as_str)
    }

    /// `peer`'s binding.
    pub fn binding(&self, peer: &str) -> Option<&Binding> {
        self.peers.get(peer)
    }

    /// True when `track_name` of `session_id` is published by a member of `room`.
    pub fn pullable(&self, room: &str, session_id: &str, track_name: &str) -> bool {
        self.peer_of(session_id)
            .and_then(|peer| self.peers.get(peer))
            .is_some_and(|b| b.room == room && b.tracks.iter().any(|t| t.name == track_name))
    }

    /// Refuses (with the reason) unless every track in `tracks` is published now by a
    /// member of `room`.
    pub fn check_pullable(&self, room: &str, tracks: &[TrackObject]) -> Result<(), String> {
        match tracks.iter().find(|t| {
            let session = t.session_id.as_deref().unwrap_or_default();
            !self.pullable(room, session, &t.track_name)
        }) {
            Some(t) => Err(format!("`{}` is not published in your room", t.track_name)),
            None => Ok(()),
        }
    }

    /// Records tracks `peer` now publishes on `session_id`; the announcement when anything
    /// changed. Nothing happens when the peer has moved to another session meanwhile.
    pub fn publish(
        &mut self,
        peer: &str,
        session_id: &str,
        tracks: Vec<Published>,
    ) -> Option<SfuTracks> {
        let binding = self
            .peers
            .get_mut(peer)
            .filter(|b| b.session_id == session_id)?;
        let before = binding.tracks.clone();
        for track in tracks {
            let same = |t: &Published| t.name == track.name || t.mid == track.mid;
            match binding.tracks.iter().position(same) {
                Some(i) => binding.tracks[i] = track,
                None if binding.tracks.len() < MAX_PUBLISHED => binding.tracks.push(track),
                None => {}
            }
        }
        (binding.tracks != before)
            .then(|| self.announcement(peer))
            .flatten()
    }

    /// Forgets tracks of `peer`'s session `session_id` that `gone` picks; the announcement
    /// when any went.
    pub fn unpublish(
        &mut self,
        peer: &str,
        session_id: &str,
        gone: impl Fn(&Published) -> bool,
    ) -> Option<SfuTracks> {
        let binding = self
            .peers
            .get_mut(peer)
            .filter(|b| b.session_id == session_id)?;
        let before = binding.tracks.len();
        binding.tracks.retain(|t| !gone(t));
        (binding.tracks.len() != before)
            .then(|| self.announcement(peer))
            .flatten()
    }

    /// What `peer` publishes, as its room hears it.
    pub fn announcement(&self, peer: &str) -> Option<SfuTracks> {
        let binding = self.peers.get(peer)?;
        Some(SfuTracks {
            peer_id: peer.to_owned(),
            session_id: binding.session_id.clone(),
            tracks: binding
                .tracks
                .iter()
                .map(|t| SfuTrack {
                    track_name: t.name.clone(),
                    kind: t.kind.clone(),
                    rids: t.rids.clone(),
                })
                .collect(),
        })
    }

    /// What everyone in `room` publishes.
    pub fn room(&self, room: &str) -> Vec<SfuTracks> {
        self.peers
            .iter()
            .filter(|(_, b)| b.room == room && !b.tracks.is_empty())
            .filter_map(|(peer, _)| self.announcement(peer))
            .collect()
    }
}

/// Longest name a client gives a pushed track (the proxy prefixes its peer id).
pub const TRACK_LABEL_MAX_LEN: usize = 32;

/// The Calls name of a track `peer` pushes as `label`: `<peer>-<label>`, so nobody publishes
/// under another's name. A label outside `[A-Za-z0-9_-]{1,32}` is refused with the reason.
pub fn pushed_name(peer: &str, label: &str) -> Result<String, String> {
    let valid = !label.is_empty()
        && label.len() <= TRACK_LABEL_MAX_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(format!("{peer}-{label}"))
    } else {
        Err(format!(
            "track names given to the proxy match [A-Za-z0-9_-]{{1,{TRACK_LABEL_MAX_LEN}}}"
        ))
    }
}

/// A `tracks/new` request as the room proxy checked and rewrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTracks {
    /// It pushes tracks (they are then named after the peer).
    pub pushing: bool,
    /// The tracks it pulls, which must be published in the peer's room.
    pub remote: Vec<TrackObject>,
    /// The offer it carries, if any.
    pub offer: Option<String>,
    /// Kinds the client named, by track name: a push without an offer has no mid yet.
    pub kinds: HashMap<String, String>,
}

/// Checks a `tracks/new` request from `peer` and names what it pushes `<peer>-<label>`;
/// `Err` is the description of a 406 `invalid_params` (`autoDiscover`, a bad label).
pub fn check_tracks_new(request: &mut TracksRequest, peer: &str) -> Result<CheckedTracks, String> {
    if request.auto_discover == Some(true) {
        return Err("autoDiscover is not available through the room proxy: name each track".into());
    }
    for track in &mut request.tracks {
        if track.location == Some(Location::Local) {
            track.track_name = pushed_name(peer, &track.track_name)?;
        }
    }
    Ok(CheckedTracks {
        pushing: request
            .tracks
            .iter()
            .any(|t| t.location == Some(Location::Local)),
        remote: request
            .tracks
            .iter()
            .filter(|t| t.location == Some(Location::Remote))
            .cloned()
            .collect(),
        offer: request.session_description.as_ref().map(|d| d.sdp.clone()),
        kinds: request
            .tracks
            .iter()
            .filter_map(|t| Some((t.track_name.clone(), t.kind.clone()?)))
            .collect(),
    })
}

/// What a successful push published: each accepted track with its mid, its kind (from the
/// answer, the offer's section, or what the client named) and its simulcast layers.
pub fn pushed(
    response: &TracksResponse,
    offer: Option<&str>,
    kinds: &HashMap<String, String>,
) -> Vec<Published> {
    let sections = offer.map(crate::sdp::sections).unwrap_or_default();
    response
        .tracks
        .iter()
        .filter(|t| t.error_code.is_none())
        .filter_map(|t| {
            let mid = t.mid.clone().filter(|m| !m.is_empty())?;
            let section = sections.iter().find(|s| s.mid == mid);
            let kind = t
                .kind
                .clone()
                .or_else(|| section.map(|s| s.kind.clone()))
                .or_else(|| kinds.get(&t.track_name).cloned())?;
            Some(Published {
                name: t.track_name.clone(),
                rids: section.map(|s| s.rids.clone()).unwrap_or_default(),
                mid,
                kind,
            })
        })
        .collect()
}

/// What a failed Calls API call becomes for our clients: the API's status and code when the
/// code is one Cloudflare documents (anything else is `internal_error`, the original in the
/// text); a refusal of our own app id or secret (401, 403) is the server's fault, never the
/// caller's: 502 `internal_error`.
pub fn upstream_failure(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    use callroom_protocol::calls::{codes, ErrorResponse};
    const KNOWN: [&str; 11] = [
        codes::DECODING_ERROR,
        codes::INVALID_PARAMS,
        codes::SESSION_ERROR,
        codes::NOT_FOUND_TRACK_ERROR,
        codes::EMPTY_TRACK_ERROR,
        codes::REPEATED_LOCAL_TRACK_ERROR,
        codes::UPDATE_TRACK_ERROR,
        codes::CLOSE_TRACK_ERROR,
        codes::INVALID_SESSION_DESCRIPTION,
        codes::RETRYABLE_TRANSIENT_ERROR,
        codes::INTERNAL_ERROR,
    ];
    if matches!(status, 401 | 403) {
        return (
            502,
            codes::INTERNAL_ERROR,
            "the Calls API refused this server's credentials".into(),
        );
    }
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => match KNOWN.iter().find(|k| **k == e.error_code) {
            Some(code) => (status, code, e.error_description),
            None => (
                status,
                codes::INTERNAL_ERROR,
                format!("{}: {}", e.error_code, e.error_description),
            ),
        },
        Err(_) => (
            status,
            codes::INTERNAL_ERROR,
            format!("the Calls API answered {status}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(name: &str, mid: &str) -> Published {
        Published {
            name: name.into(),
            mid: mid.into(),
            kind: "video".into(),
            rids: vec![],
        }
    }

    #[test]
    fn upstream_failures_keep_known_codes_and_hide_credential_refusals() {
        let known = br#"{"errorCode":"session_error","errorDescription":"gone"}"#;
        assert_eq!(
            upstream_failure(410, known),
            (410, "session_error", "gone".into())
        );
        let odd = br#"{"errorCode":"odd_error","errorDescription":"?"}"#;
        assert_eq!(upstream_failure(400, odd).1, "internal_error");
        assert_eq!(upstream_failure(500, b"<html>").1, "internal_error");
        assert_eq!(upstream_failure(401, known).0, 502);
    }

    #[test]
    fn a_tracks_new_request_is_checked_and_its_pushes_renamed() {
        let mut request: TracksRequest = serde_json::from_value(serde_json::json!({
            "sessionDescription": {"type": "offer", "sdp": "v=0"},
            "tracks": [
                {"location": "local", "trackName": "cam", "mid": "0", "kind": "video"},
                {"location": "remote", "sessionId": "s9", "trackName": "pb-cam"}
            ]
        }))
        .unwrap();
        let checked = check_tracks_new(&mut request, "pa").unwrap();
        assert!(checked.pushing);
        assert_eq!(request.tracks[0].track_name, "pa-cam");
        assert_eq!(checked.remote.len(), 1);
        assert_eq!(checked.remote[0].track_name, "pb-cam");
        assert_eq!(checked.offer.as_deref(), Some("v=0"));
        assert_eq!(
            checked.kinds.get("pa-cam").map(String::as_str),
            Some("video")
        );
        let mut discover: TracksRequest =
            serde_json::from_value(serde_json::json!({"autoDiscover": true, "tracks": []}))
                .unwrap();
        assert!(check_tracks_new(&mut discover, "pa").is_err());
        let mut bad: TracksRequest = serde_json::from_value(
            serde_json::json!({"tracks": [{"location": "local", "trackName": "../x"}]}),
        )
        .unwrap();
        assert!(check_tracks_new(&mut bad, "pa").is_err());
    }

    #[test]
    fn pushed_tracks_are_named_after_their_peer_and_labels_are_checked() {
        assert_eq!(pushed_name("pa", "cam").as_deref(), Ok("pa-cam"));
        for bad in ["", "a b", "../x", &"x".repeat(33)] {
            assert!(pushed_name("pa", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_tracks_published_in_the_same_room_are_pullable() {
        let mut r = Registry::default();
        r.bind("pa", "room1", "sa");
        r.bind("pb", "room2", "sb");
        r.publish("pa", "sa", vec![track("pa-cam", "0")]);
        assert!(r.pullable("room1", "sa", "pa-cam"));
        assert!(!r.pullable("room2", "sa", "pa-cam"), "another room");
        assert!(!r.pullable("room1", "sa", "pa-mic"), "not published");
        assert!(!r.pullable("room1", "sb", "pa-cam"), "another session");
    }

    #[test]
    fn a_new_session_replaces_the_old_and_forgets_its_tracks() {
        let mut r = Registry::default();
        r.bind("pa", "room1", "s1");
        r.publish("pa", "s1", vec![track("pa-cam", "0")]);
        let old = r.bind("pa", "room1", "s2").expect("replaced");
        assert_eq!(old.session_id, "s1");
        assert_eq!(r.peer_of("s1"), None);
        assert!(!r.pullable("room1", "s2", "pa-cam"));
        assert_eq!(r.announcement("pa").unwrap().tracks, vec![]);
    }

    #[test]
    fn publishing_is_capped_and_announced_only_on_change() {
        let mut r = Registry::default();
        r.bind("pa", "room1", "s1");
        let many: Vec<Published> = (0..200)
            .map(|i| track(&format!("t{i}"), &i.to_string()))
            .collect();
        assert!(r.publish("pa", "s1", many.clone()).is_some());
        assert_eq!(r.binding("pa").unwrap().tracks.len(), MAX_PUBLISHED);
        assert!(
            r.publish("pa", "s1", many[..3].to_vec()).is_none(),
            "the same tracks again are no news"
        );
        assert!(r.unpublish("pa", "s1", |t| t.name == "nope").is_none());
        let after = r
            .unpublish("pa", "s1", |t| t.mid == "0")
            .expect("announced");
        assert_eq!(after.tracks.len(), MAX_PUBLISHED - 1);
    }

    #[test]
    fn late_results_of_a_replaced_session_change_nothing() {
        let mut r = Registry::default();
        r.bind("pa", "room1", "s1");
        r.bind("pa", "room1", "s2");
        r.publish("pa", "s2", vec![track("pa-cam", "0")]);
        assert!(r.publish("pa", "s1", vec![track("pa-old", "1")]).is_none());
        assert!(r.unpublish("pa", "s1", |t| t.mid == "0").is_none());
        assert!(
            r.pullable("room1", "s2", "pa-cam"),
            "s2's track survives s1's late close"
        );
    }
}
