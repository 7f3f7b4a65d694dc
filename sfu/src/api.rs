//! The Calls operations on a session: `tracks/new`, `renegotiate`, `tracks/close`,
//! `tracks/update` and the session state.

use std::collections::HashSet;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid};

use crate::calls::{
    CloseTrackObject, CloseTracksRequest, CloseTracksResponse, Location, RenegotiateResponse,
    SdpType, SessionDescription, SessionStateResponse, TrackObject, TracksRequest, TracksResponse,
    UpdateTracksRequest,
};
use crate::error::{codes, CallsError, TrackError};
use crate::session::{Published, Pulled, SessionKey};
use crate::{Sfu, SfuEvent, TrackRemovedReason, MAX_TRACKS_PER_CALL};

/// Longest accepted track name, in bytes.
const MAX_TRACK_NAME_LEN: usize = 256;

impl Sfu {
    /// `POST /sessions/{id}/tracks/new`: push the client's tracks (with its offer: the answer
    /// comes back; without: the SFU offers) or pull other sessions' tracks (the SFU offers, and
    /// the client must answer through [`Sfu::renegotiate`]).
    pub fn tracks_new(
        &mut self,
        now: Instant,
        session_id: &str,
        request: TracksRequest,
    ) -> Result<TracksResponse, CallsError> {
        let key = self.key(session_id)?;
        let auto = request.auto_discover == Some(true);
        if request.tracks.is_empty() && !auto {
            return Err(CallsError::invalid_params("tracks must not be empty"));
        }
        if request.tracks.len() > MAX_TRACKS_PER_CALL {
            return Err(CallsError::invalid_params(format!(
                "Expecting at most {MAX_TRACKS_PER_CALL} tracks in the request"
            )));
        }
        let local = request
            .tracks
            .iter()
            .filter(|t| t.location == Some(Location::Local))
            .count();
        let remote = request
            .tracks
            .iter()
            .filter(|t| t.location == Some(Location::Remote))
            .count();
        if local + remote != request.tracks.len() {
            return Err(CallsError::invalid_params(
                "every track needs location local or remote",
            ));
        }
        if local > 0 && remote > 0 {
            return Err(CallsError::invalid_params(
                "tracks must be all local or all remote",
            ));
        }
        if self.sessions.get(&key).is_some_and(|s| s.pending.is_some()) {
            return Err(CallsError::invalid_params(
                "the SFU's last offer is not answered yet; call renegotiate first",
            ));
        }
        let result = match (&request.session_description, remote > 0) {
            (Some(_), true) => Err(CallsError::invalid_params(
                "pulling remote tracks takes no session description",
            )),
            (Some(desc), false) => self.push_with_offer(now, key, desc, &request.tracks, auto),
            (None, true) => self.pull(now, key, &request.tracks),
            (None, false) => self.push_without_offer(now, key, &request.tracks),
        };
        self.drive(now);
        result
    }

    fn push_with_offer(
        &mut self,
        now: Instant,
        key: SessionKey,
        desc: &SessionDescription,
        tracks: &[TrackObject],
        auto: bool,
    ) -> Result<TracksResponse, CallsError> {
        if desc.kind != SdpType::Offer {
            return Err(CallsError::invalid_params(
                "tracks/new takes an offer, not an answer",
            ));
        }
        let offer = SdpOffer::from_sdp_string(&desc.sdp)
            .map_err(|e| CallsError::invalid_sdp(format!("the offer does not parse: {e}")))?;
        let offered_mids = mids_in(&desc.sdp);
        let max_tracks = self.config.max_tracks_per_session;
        let s = self.sessions.get_mut(&key).ok_or_else(gone)?;

        let answer = match s.guard(|rtc| rtc.sdp_api().accept_offer(offer)) {
            Some(Ok(answer)) => answer,
            Some(Err(e)) => return Err(CallsError::invalid_sdp(format!("offer rejected: {e}"))),
            None => return Err(CallsError::internal("the session failed")),
        };

        let mut results = Vec::with_capacity(tracks.len());
        let mut published = Vec::new();
        let mut names_in_call = HashSet::new();
        for t in tracks {
            let outcome = (|| {
                check_name(&t.track_name)?;
                if !names_in_call.insert(t.track_name.clone())
                    || s.published_by_name(&t.track_name).is_some()
                {
                    return Err(TrackError::new(
                        codes::REPEATED_LOCAL_TRACK_ERROR,
                        "this session already has a local track with this name",
                    ));
                }
                let given = t.mid.as_deref().unwrap_or("");
                let mid = resolve_offered_mid(s, given, &offered_mids)?;
                if s.published.iter().any(|p| p.mid == mid) {
                    return Err(TrackError::new(
                        codes::REPEATED_LOCAL_TRACK_ERROR,
                        "this mid already carries a local track",
                    ));
                }
                let kind = receivable_kind(&s.rtc, mid)?;
                if s.track_count() + published.len() >= max_tracks {
                    return Err(TrackError::new(
                        codes::INVALID_PARAMS,
                        "the session has too many tracks",
                    ));
                }
                Ok((mid, kind))
            })();
            match outcome {
                Ok((mid, kind)) => {
                    published.push((t.track_name.clone(), mid, kind));
                    results.push(TrackObject {
                        mid: Some(mid.to_string()),
                        track_name: t.track_name.clone(),
                        ..Default::default()
                    });
                }
                Err(e) => results.push(track_failure(t, e)),
            }
        }
        if auto {
            for m in &offered_mids {
                let mid = Mid::from(m.as_str());
                let known = s.published.iter().any(|p| p.mid == mid)
                    || s.pulled.iter().any(|p| p.mid == mid)
                    || published.iter().any(|(_, pm, _)| *pm == mid);
                if known || s.track_count() + published.len() >= max_tracks {
                    continue;
                }
                if let Ok(kind) = receivable_kind(&s.rtc, mid) {
                    let name = random_name();
                    results.push(TrackObject {
                        mid: Some(mid.to_string()),
                        track_name: name.clone(),
                        ..Default::default()
                    });
                    published.push((name, mid, kind));
                }
            }
        }
        let session_id = s.id.clone();
        let mut events = Vec::new();
        for (name, mid, kind) in published {
            s.published.push(Published {
                name: name.clone(),
                mid,
                kind,
                negotiated: true,
                created: now,
                last_packet: None,
                layers: Default::default(),
                last_keyframe_request: None,
            });
            events.push(SfuEvent::TrackPublished {
                session_id: session_id.clone(),
                track_name: name,
                kind: kind_str(kind),
            });
        }
        for e in events {
            self.emit(e);
        }
        self.kick(key, now);
        Ok(TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: Some(SessionDescription::answer(answer.to_sdp_string())),
            tracks: results,
        })
    }

    fn push_without_offer(
        &mut self,
        now: Instant,
        key: SessionKey,
        tracks: &[TrackObject],
    ) -> Result<TracksResponse, CallsError> {
        for t in tracks {
            parse_kind(t.kind.as_deref())?;
        }
        let max_tracks = self.config.max_tracks_per_session;
        let s = self.sessions.get_mut(&key).ok_or_else(gone)?;
        let mut results = Vec::with_capacity(tracks.len());
        let mut adds = Vec::new();
        let mut names_in_call = HashSet::new();
        for t in tracks {
            let outcome = (|| {
                check_name(&t.track_name)?;
                if !names_in_call.insert(t.track_name.clone())
                    || s.published_by_name(&t.track_name).is_some()
                {
                    return Err(TrackError::new(
                        codes::REPEATED_LOCAL_TRACK_ERROR,
                        "this session already has a local track with this name",
                    ));
                }
                if s.track_count() + adds.len() >= max_tracks {
                    return Err(TrackError::new(
                        codes::INVALID_PARAMS,
                        "the session has too many tracks",
                    ));
                }
                Ok(())
            })();
            match outcome {
                Ok(()) => {
                    adds.push((results.len(), t));
                    results.push(TrackObject::default());
                }
                Err(e) => results.push(track_failure(t, e)),
            }
        }
        if adds.is_empty() {
            return Ok(TracksResponse {
                requires_immediate_renegotiation: false,
                session_description: None,
                tracks: results,
            });
        }
        let session_id = s.id.clone();
        let applied = s.guard(|rtc| {
            let mut api = rtc.sdp_api();
            let mids: Vec<Mid> = adds
                .iter()
                .map(|(_, t)| {
                    let kind = parse_kind(t.kind.as_deref()).unwrap_or(MediaKind::Video);
                    api.add_media(
                        kind,
                        Direction::RecvOnly,
                        Some(session_id.clone()),
                        Some(t.track_name.clone()),
                        None,
                    )
                })
                .collect();
            api.apply().map(|(offer, pending)| (offer, pending, mids))
        });
        let Some(Some((offer, pending, mids))) = applied else {
            return Err(CallsError::internal("the SFU could not make an offer"));
        };
        s.pending = Some(pending);
        for ((slot, t), mid) in adds.iter().zip(mids) {
            let kind = parse_kind(t.kind.as_deref()).unwrap_or(MediaKind::Video);
            s.published.push(Published {
                name: t.track_name.clone(),
                mid,
                kind,
                negotiated: false,
                created: now,
                last_packet: None,
                layers: Default::default(),
                last_keyframe_request: None,
            });
            results[*slot] = TrackObject {
                mid: Some(mid.to_string()),
                track_name: t.track_name.clone(),
                ..Default::default()
            };
        }
        self.kick(key, now);
        Ok(TracksResponse {
            requires_immediate_renegotiation: true,
            session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
            tracks: results,
        })
    }

    fn pull(
        &mut self,
        now: Instant,
        key: SessionKey,
        tracks: &[TrackObject],
    ) -> Result<TracksResponse, CallsError> {
        let _ = now;
        let max_tracks = self.config.max_tracks_per_session;
        // Resolve every requested track against its publisher first (immutable pass).
        let mut results = Vec::with_capacity(tracks.len());
        let mut adds: Vec<(usize, SessionKey, String, MediaKind)> = Vec::new();
        let count = self.sessions.get(&key).ok_or_else(gone)?.track_count();
        for t in tracks {
            let outcome = (|| {
                let publisher_id = t.session_id.as_deref().unwrap_or("");
                if publisher_id.is_empty() || t.track_name.is_empty() {
                    return Err(TrackError::new(
                        codes::EMPTY_TRACK_ERROR,
                        "a remote track needs sessionId and trackName",
                    ));
                }
                if t.mid.is_some() {
                    return Err(TrackError::new(
                        codes::INVALID_PARAMS,
                        "pulling into an existing transceiver (mid) is not supported",
                    ));
                }
                let publisher = self.key(publisher_id).map_err(|_| {
                    TrackError::new(codes::NOT_FOUND_TRACK_ERROR, "no such publisher session")
                })?;
                let track = self
                    .sessions
                    .get(&publisher)
                    .and_then(|p| p.published_by_name(&t.track_name))
                    .ok_or_else(|| {
                        TrackError::new(codes::NOT_FOUND_TRACK_ERROR, "no such track")
                    })?;
                if let Some(kind) = t.kind.as_deref() {
                    if parse_kind(Some(kind)).ok() != Some(track.kind) {
                        return Err(TrackError::new(
                            codes::INVALID_PARAMS,
                            "kind does not match the published track",
                        ));
                    }
                }
                if count + adds.len() >= max_tracks {
                    return Err(TrackError::new(
                        codes::INVALID_PARAMS,
                        "the session has too many tracks",
                    ));
                }
                Ok((publisher, track.kind))
            })();
            match outcome {
                Ok((publisher, kind)) => {
                    adds.push((results.len(), publisher, t.track_name.clone(), kind));
                    results.push(TrackObject::default());
                }
                Err(e) => results.push(track_failure(t, e)),
            }
        }
        if adds.is_empty() {
            return Ok(TracksResponse {
                requires_immediate_renegotiation: false,
                session_description: None,
                tracks: results,
            });
        }
        let publisher_ids: Vec<String> = adds
            .iter()
            .map(|(_, p, _, _)| {
                self.sessions
                    .get(p)
                    .map(|s| s.id.clone())
                    .unwrap_or_default()
            })
            .collect();
        let s = self.sessions.get_mut(&key).ok_or_else(gone)?;
        let applied = s.guard(|rtc| {
            let mut api = rtc.sdp_api();
            let mids: Vec<Mid> = adds
                .iter()
                .zip(&publisher_ids)
                .map(|((_, _, name, kind), pid)| {
                    api.add_media(
                        *kind,
                        Direction::SendOnly,
                        Some(pid.clone()),
                        Some(name.clone()),
                        None,
                    )
                })
                .collect();
            api.apply().map(|(offer, pending)| (offer, pending, mids))
        });
        let Some(Some((offer, pending, mids))) = applied else {
            return Err(CallsError::internal("the SFU could not make an offer"));
        };
        s.pending = Some(pending);
        let mut routes = Vec::new();
        for (((slot, publisher, name, kind), mid), pid) in
            adds.into_iter().zip(mids).zip(publisher_ids)
        {
            let preference = tracks[slot].simulcast.clone();
            s.pulled.push(Pulled {
                mid,
                name: name.clone(),
                publisher,
                publisher_id: pid.clone(),
                kind,
                preference,
                negotiated: false,
                source_gone: false,
                current: None,
                target: None,
                time_offset: 0,
                last_out_time: None,
                last_forwarded: None,
            });
            results[slot] = TrackObject {
                mid: Some(mid.to_string()),
                session_id: Some(pid),
                track_name: name.clone(),
                ..Default::default()
            };
            routes.push((publisher, name, mid));
        }
        for (publisher, name, mid) in routes {
            self.route(publisher, &name, key, mid);
        }
        self.kick(key, now);
        Ok(TracksResponse {
            requires_immediate_renegotiation: true,
            session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
            tracks: results,
        })
    }

    fn route(&mut self, publisher: SessionKey, name: &str, sub: SessionKey, sub_mid: Mid) {
        let Some(mid) = self
            .sessions
            .get(&publisher)
            .and_then(|p| p.published_by_name(name))
            .map(|t| t.mid)
        else {
            return;
        };
        let subs = self.routes.entry((publisher, mid)).or_default();
        if !subs.contains(&(sub, sub_mid)) {
            subs.push((sub, sub_mid));
        }
    }

    /// `PUT /sessions/{id}/renegotiate`: the client's answer to the SFU's last offer. If the
    /// answer is rejected, the tracks that offer added are dropped (a new `tracks/new` is needed).
    pub fn renegotiate(
        &mut self,
        now: Instant,
        session_id: &str,
        description: SessionDescription,
    ) -> Result<RenegotiateResponse, CallsError> {
        let key = self.key(session_id)?;
        if description.kind != SdpType::Answer {
            return Err(CallsError::invalid_params(
                "renegotiate takes the answer to the SFU's offer",
            ));
        }
        let s = self.sessions.get_mut(&key).ok_or_else(gone)?;
        if s.pending.is_none() {
            return Err(CallsError::invalid_params("there is no offer to answer"));
        }
        let answer = SdpAnswer::from_sdp_string(&description.sdp)
            .map_err(|e| CallsError::invalid_sdp(format!("the answer does not parse: {e}")))?;
        let Some(pending) = s.pending.take() else {
            return Err(CallsError::invalid_params("there is no offer to answer"));
        };
        let result = s.guard(|rtc| rtc.sdp_api().accept_answer(pending, answer));
        let outcome = match result {
            Some(Ok(())) => {
                let session_id = s.id.clone();
                let mut published = Vec::new();
                for p in s.published.iter_mut().filter(|p| !p.negotiated) {
                    p.negotiated = true;
                    p.created = now;
                    published.push((p.name.clone(), p.kind));
                }
                for p in s.pulled.iter_mut() {
                    p.negotiated = true;
                }
                for (track_name, kind) in published {
                    self.emit(SfuEvent::TrackPublished {
                        session_id: session_id.clone(),
                        track_name,
                        kind: kind_str(kind),
                    });
                }
                Ok(RenegotiateResponse {})
            }
            Some(Err(e)) => {
                self.drop_unnegotiated(key);
                Err(CallsError::invalid_sdp(format!("answer rejected: {e}")))
            }
            None => Err(CallsError::internal("the session failed")),
        };
        self.kick(key, now);
        self.drive(now);
        outcome
    }

    fn drop_unnegotiated(&mut self, key: SessionKey) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        s.published.retain(|p| p.negotiated);
        let dropped: Vec<(SessionKey, String, Mid)> = s
            .pulled
            .iter()
            .filter(|p| !p.negotiated)
            .map(|p| (p.publisher, p.name.clone(), p.mid))
            .collect();
        s.pulled.retain(|p| p.negotiated);
        for (publisher, name, mid) in dropped {
            self.unroute_subscriber(publisher, &name, key, mid);
        }
    }

    /// `PUT /sessions/{id}/tracks/close`: stop pushing or pulling the given mids. Without
    /// `force` the client's offer (transceivers stopped) is required and answered.
    pub fn tracks_close(
        &mut self,
        now: Instant,
        session_id: &str,
        request: CloseTracksRequest,
    ) -> Result<CloseTracksResponse, CallsError> {
        let key = self.key(session_id)?;
        if request.tracks.is_empty() {
            return Err(CallsError::invalid_params("tracks must not be empty"));
        }
        if request.tracks.len() > MAX_TRACKS_PER_CALL {
            return Err(CallsError::invalid_params(format!(
                "Expecting at most {MAX_TRACKS_PER_CALL} tracks in the request"
            )));
        }
        let offer = match (&request.session_description, request.force) {
            (Some(d), _) if d.kind == SdpType::Offer => {
                Some(SdpOffer::from_sdp_string(&d.sdp).map_err(|e| {
                    CallsError::invalid_sdp(format!("the offer does not parse: {e}"))
                })?)
            }
            (Some(_), _) => {
                return Err(CallsError::invalid_params(
                    "tracks/close takes the client's offer",
                ))
            }
            (None, true) => None,
            (None, false) => {
                return Err(CallsError::invalid_params(
                    "a close without force needs the client's offer",
                ))
            }
        };
        if self.sessions.get(&key).is_some_and(|s| s.pending.is_some()) {
            return Err(CallsError::invalid_params(
                "the SFU's last offer is not answered yet; call renegotiate first",
            ));
        }
        let mut results = Vec::with_capacity(request.tracks.len());
        for t in &request.tracks {
            let closed = Mid::try_from_str(&t.mid).is_some_and(|mid| self.close_mid(key, mid));
            results.push(if closed {
                CloseTrackObject {
                    mid: t.mid.clone(),
                    ..Default::default()
                }
            } else {
                CloseTrackObject {
                    mid: t.mid.clone(),
                    error_code: Some(codes::CLOSE_TRACK_ERROR.into()),
                    error_description: Some("no open track with this mid".into()),
                }
            });
        }
        let answer = match offer {
            Some(offer) => {
                let s = self.sessions.get_mut(&key).ok_or_else(gone)?;
                match s.guard(|rtc| rtc.sdp_api().accept_offer(offer)) {
                    Some(Ok(a)) => Some(SessionDescription::answer(a.to_sdp_string())),
                    Some(Err(e)) => {
                        return Err(CallsError::invalid_sdp(format!("offer rejected: {e}")))
                    }
                    None => return Err(CallsError::internal("the session failed")),
                }
            }
            None => None,
        };
        self.kick(key, now);
        self.drive(now);
        Ok(CloseTracksResponse {
            session_description: answer,
            requires_immediate_renegotiation: false,
            tracks: results,
        })
    }

    fn close_mid(&mut self, key: SessionKey, mid: Mid) -> bool {
        if self.remove_published(key, mid, TrackRemovedReason::Closed) {
            return true;
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some(i) = s.pulled.iter().position(|p| p.mid == mid) else {
            return false;
        };
        let p = s.pulled.remove(i);
        self.unroute_subscriber(p.publisher, &p.name, key, p.mid);
        true
    }

    /// `PUT /sessions/{id}/tracks/update`: change the simulcast preference of pulled tracks
    /// (found by `mid`), or point a mid at another published track of the same kind.
    pub fn tracks_update(
        &mut self,
        now: Instant,
        session_id: &str,
        request: UpdateTracksRequest,
    ) -> Result<TracksResponse, CallsError> {
        let key = self.key(session_id)?;
        if request.tracks.len() > MAX_TRACKS_PER_CALL {
            return Err(CallsError::invalid_params(format!(
                "Expecting at most {MAX_TRACKS_PER_CALL} tracks in the request"
            )));
        }
        let mut results = Vec::with_capacity(request.tracks.len());
        for t in &request.tracks {
            match self.update_one(now, key, t) {
                Ok(r) => results.push(r),
                Err(e) => results.push(track_failure(t, e)),
            }
        }
        self.drive(now);
        Ok(TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: None,
            tracks: results,
        })
    }

    fn update_one(
        &mut self,
        now: Instant,
        key: SessionKey,
        t: &TrackObject,
    ) -> Result<TrackObject, TrackError> {
        let not_found =
            || TrackError::new(codes::UPDATE_TRACK_ERROR, "no pulled track with this mid");
        if t.location == Some(Location::Local) {
            return Err(TrackError::new(
                codes::UPDATE_TRACK_ERROR,
                "only remote tracks can be updated",
            ));
        }
        let mid = t
            .mid
            .as_deref()
            .and_then(Mid::try_from_str)
            .ok_or_else(not_found)?;
        let s = self.sessions.get(&key).ok_or_else(not_found)?;
        let p = s
            .pulled
            .iter()
            .find(|p| p.mid == mid)
            .ok_or_else(not_found)?;
        let (old_publisher, old_name, kind) = (p.publisher, p.name.clone(), p.kind);

        // A different source: re-route if it exists and has the same kind.
        let new_publisher_id = t
            .session_id
            .clone()
            .unwrap_or_else(|| p.publisher_id.clone());
        let new_name = if t.track_name.is_empty() {
            old_name.clone()
        } else {
            t.track_name.clone()
        };
        let new_publisher = self
            .key(&new_publisher_id)
            .map_err(|_| TrackError::new(codes::UPDATE_TRACK_ERROR, "no such publisher session"))?;
        let source_changed = new_publisher != old_publisher || new_name != old_name;
        if source_changed {
            let track_kind = self
                .sessions
                .get(&new_publisher)
                .and_then(|s| s.published_by_name(&new_name))
                .map(|t| t.kind)
                .ok_or_else(|| TrackError::new(codes::NOT_FOUND_TRACK_ERROR, "no such track"))?;
            if track_kind != kind {
                return Err(TrackError::new(
                    codes::UPDATE_TRACK_ERROR,
                    "the new track's kind differs",
                ));
            }
            self.unroute_subscriber(old_publisher, &old_name, key, mid);
            self.route(new_publisher, &new_name, key, mid);
        }
        let s = self.sessions.get_mut(&key).ok_or_else(not_found)?;
        let p = s
            .pulled
            .iter_mut()
            .find(|p| p.mid == mid)
            .ok_or_else(not_found)?;
        if source_changed {
            p.publisher = new_publisher;
            p.publisher_id = new_publisher_id.clone();
            p.name = new_name.clone();
            p.source_gone = false;
            // Continue the outgoing clock from the old source at the next keyframe.
            p.current = None;
        }
        if t.simulcast.is_some() {
            p.preference = t.simulcast.clone();
        }
        // Choose now rather than at the next sweep, so the switch starts at once.
        p.target = None;
        let (publisher, name, current, preference) =
            (p.publisher, p.name.clone(), p.current, p.preference.clone());
        let budget = s.bandwidth;
        let target = self
            .sessions
            .get(&publisher)
            .and_then(|ps| ps.published_by_name(&name))
            .and_then(|track| {
                track
                    .layers
                    .choose(preference.as_ref(), current.as_ref(), budget, now)
            });
        if let Some(p) = self
            .sessions
            .get_mut(&key)
            .and_then(|s| s.pulled.iter_mut().find(|p| p.mid == mid))
        {
            p.target = target;
        }
        Ok(TrackObject {
            location: Some(Location::Remote),
            mid: Some(mid.to_string()),
            session_id: Some(new_publisher_id),
            track_name: new_name,
            simulcast: t.simulcast.clone(),
            ..Default::default()
        })
    }

    /// `GET /sessions/{id}`: every pushed and pulled track with its status.
    pub fn session_state(
        &self,
        now: Instant,
        session_id: &str,
    ) -> Result<SessionStateResponse, CallsError> {
        let key = self.key(session_id)?;
        let s = self.sessions.get(&key).ok_or_else(gone)?;
        let mut tracks = Vec::with_capacity(s.track_count());
        for p in &s.published {
            tracks.push(TrackObject {
                location: Some(Location::Local),
                mid: Some(p.mid.to_string()),
                track_name: p.name.clone(),
                status: Some(p.status(now)),
                ..Default::default()
            });
        }
        for p in &s.pulled {
            tracks.push(TrackObject {
                location: Some(Location::Remote),
                mid: Some(p.mid.to_string()),
                session_id: Some(p.publisher_id.clone()),
                track_name: p.name.clone(),
                status: Some(p.status()),
                ..Default::default()
            });
        }
        Ok(SessionStateResponse {
            tracks,
            data_channels: Vec::new(),
        })
    }
}

fn gone() -> CallsError {
    CallsError::session_gone("no such session, or it is closed")
}

fn check_name(name: &str) -> Result<(), TrackError> {
    if name.is_empty() {
        return Err(TrackError::new(
            codes::EMPTY_TRACK_ERROR,
            "trackName must not be empty",
        ));
    }
    if name.len() > MAX_TRACK_NAME_LEN {
        return Err(TrackError::new(
            codes::INVALID_PARAMS,
            "trackName is too long",
        ));
    }
    Ok(())
}

fn track_failure(t: &TrackObject, e: TrackError) -> TrackObject {
    TrackObject {
        mid: Some(String::new()),
        session_id: t.session_id.clone(),
        track_name: t.track_name.clone(),
        error_code: Some(e.code.to_string()),
        error_description: Some(e.description),
        ..Default::default()
    }
}

fn parse_kind(kind: Option<&str>) -> Result<MediaKind, CallsError> {
    match kind {
        Some("audio") => Ok(MediaKind::Audio),
        Some("video") => Ok(MediaKind::Video),
        _ => Err(CallsError::invalid_params(
            "kind (audio or video) is required when the SFU makes the offer",
        )),
    }
}

fn kind_str(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// The `a=mid:` values of an SDP, in order.
fn mids_in(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .map(str::to_string)
        .take(1024)
        .collect()
}

/// The mid a pushed track names: a plain mid of the offer, or `#name` for the m-line whose
/// msid track id is `name`.
fn resolve_offered_mid(
    s: &crate::session::Session,
    given: &str,
    offered: &[String],
) -> Result<Mid, TrackError> {
    if given.is_empty() {
        return Err(TrackError::new(
            codes::EMPTY_TRACK_ERROR,
            "a local track pushed with an offer needs its mid",
        ));
    }
    let not_offered = || TrackError::new(codes::NOT_FOUND_TRACK_ERROR, "the offer has no such mid");
    if let Some(name) = given.strip_prefix('#') {
        return offered
            .iter()
            .filter_map(|m| Mid::try_from_str(m))
            .find(|mid| s.rtc.media(*mid).is_some_and(|m| m.track_id() == name))
            .ok_or_else(not_offered);
    }
    if !offered.iter().any(|m| m == given) {
        return Err(not_offered());
    }
    Mid::try_from_str(given).ok_or_else(not_offered)
}

/// The kind of an m-line the SFU receives on, or why it cannot carry a pushed track.
fn receivable_kind(rtc: &str0m::Rtc, mid: Mid) -> Result<MediaKind, TrackError> {
    let media = rtc.media(mid).ok_or_else(|| {
        TrackError::new(codes::NOT_FOUND_TRACK_ERROR, "the offer has no such mid")
    })?;
    match media.direction() {
        Direction::RecvOnly | Direction::SendRecv => Ok(media.kind()),
        _ => Err(TrackError::new(
            codes::INVALID_PARAMS,
            "this mid does not send media to the SFU",
        )),
    }
}

fn random_name() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Mid::from` silently rewrites and truncates; only exact round trips are accepted.
trait MidExt {
    fn try_from_str(s: &str) -> Option<Mid>;
}

impl MidExt for Mid {
    fn try_from_str(s: &str) -> Option<Mid> {
        if s.is_empty() {
            return None;
        }
        let mid = Mid::from(s);
        (&*mid == s).then_some(mid)
    }
}
