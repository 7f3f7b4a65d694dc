//! The room's state and how changes reach the app.
//!
//! Everything a snapshot shows lives in [`View`], behind [`Tracked`]: any mutable access
//! marks the room changed, so no code path can change what apps see without the snapshot
//! version moving. [`update`] runs a closure on the state, then (with the borrow released)
//! bumps the version and calls subscribers. Rules that keep it sound: no `RefCell` borrow is
//! held across an `await` or while app callbacks run; tasks hold a `Weak` across awaits, so
//! dropping the last `Room` frees everything.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use web_sys::MediaStream;

use super::local::{Local, Screen};
use super::notify::Notifier;
use super::plane::Plane;
use super::signaling::Relay;
use super::{JoinOptions, RecordingStatus, RoomEvent, Snapshot};
use crate::core::backoff::Backoff;
use crate::core::roster::{ConnectionState, Roster};
use crate::core::session::PollPolicy;
use crate::core::speaking::Speakers;
use crate::media::Device;
use crate::web::audio::Meter;
use crate::web::http::{Deadline, Http};
use crate::Error;

/// A value whose every mutable access marks it changed.
pub(crate) struct Tracked<T> {
    value: T,
    changed: bool,
}

impl<T> Tracked<T> {
    fn new(value: T) -> Self {
        Self {
            value,
            changed: false,
        }
    }

    /// Marks a change the value cannot see itself (a connection's state, read live).
    pub(crate) fn touch(&mut self) {
        self.changed = true;
    }

    fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.value
    }
}

/// The joined session as the snapshot shows it.
pub(crate) struct Session {
    pub(crate) peer_id: String,
    pub(crate) roster: Roster,
    pub(crate) plane: Rc<Plane>,
}

/// Everything a snapshot shows.
pub(crate) struct View {
    pub(crate) state: ConnectionState,
    pub(crate) session: Option<Session>,
    pub(crate) local: Option<Local>,
    pub(crate) mic_enabled: bool,
    pub(crate) camera_enabled: bool,
    pub(crate) screen: Option<Screen>,
    pub(crate) devices: Vec<Device>,
    pub(crate) error: Option<Error>,
    pub(crate) recording: Option<RecordingStatus>,
}

/// The signaling side of a session, which snapshots do not show.
pub(crate) struct Signaling {
    pub(crate) token: String,
    pub(crate) poll: PollPolicy,
}

pub(crate) struct Inner {
    pub(crate) options: JoinOptions,
    pub(crate) http: Http,
    pub(crate) view: Tracked<View>,
    pub(crate) signaling: Option<Signaling>,
    /// Bumped by leave and by each rejoin: tasks of an older epoch stop.
    pub(crate) epoch: u32,
    /// Delays between failed joins.
    pub(crate) join_backoff: Backoff,
    /// The poll in flight: its deadline, which a failed probe also fires.
    pub(crate) poll_abort: Option<Deadline>,
    pub(crate) retry_timer: Option<Timeout>,
    pub(crate) ticker: Option<Interval>,
    pub(crate) ticks: u32,
    pub(crate) outbox: Vec<Relay>,
    /// The epoch whose outbox drainer is running, if any (a drainer of an older epoch stops
    /// by itself and must not keep a new one from starting).
    pub(crate) sending: Option<u32>,
    /// `devicechange`.
    pub(crate) device_listener: Option<EventListener>,
    pub(crate) events: Vec<RoomEvent>,
    /// The state of signaling; the room shows it, except `Connected` becomes `Reconnecting`
    /// while the media plane rebuilds its connection (`media_reconnecting`).
    pub(crate) signal_state: ConnectionState,
    pub(crate) media_reconnecting: bool,
    /// How the app shows each participant (SFU layers follow it).
    pub(crate) views: crate::core::layers::Views,
    /// Everyone's audio levels and who speaks. Outside `view` because most rounds change
    /// nothing shown; a round that does touches the view.
    pub(crate) speakers: Speakers,
    /// Measures the levels (made at the first round with audio to measure); `Err` once
    /// Web Audio failed, so it is not tried again every round.
    pub(crate) meter: Option<Result<Meter, ()>>,
    /// Takes a round of levels every [`super::ticker::LEVELS_EVERY_MS`].
    pub(crate) levels_timer: Option<Interval>,
    /// The kinds of track `join` is still capturing: links opened meanwhile make senders
    /// for them, so their first offer need not wait for the camera.
    pub(crate) coming: Vec<&'static str>,
}

impl Inner {
    pub(crate) fn new(options: JoinOptions) -> Self {
        let join_backoff = Backoff::new(
            f64::from(options.retry_base_ms),
            f64::from(options.retry_max_ms),
        );
        Self {
            http: Http::new(&options.server),
            options,
            view: Tracked::new(View {
                state: ConnectionState::Connecting,
                session: None,
                local: None,
                mic_enabled: false,
                camera_enabled: false,
                screen: None,
                devices: Vec::new(),
                error: None,
                recording: None,
            }),
            signaling: None,
            epoch: 0,
            join_backoff,
            poll_abort: None,
            retry_timer: None,
            ticker: None,
            ticks: 0,
            outbox: Vec::new(),
            sending: None,
            device_listener: None,
            events: Vec::new(),
            signal_state: ConnectionState::Connecting,
            media_reconnecting: false,
            views: crate::core::layers::Views::default(),
            speakers: Speakers::default(),
            meter: None,
            levels_timer: None,
            coming: Vec::new(),
        }
    }

    pub(crate) fn set_state(&mut self, state: ConnectionState) {
        self.signal_state = state;
        self.show_state();
    }

    /// The media plane lost its connection and is making a new one (`true`), or has it back.
    pub(crate) fn set_media_reconnecting(&mut self, reconnecting: bool) {
        self.media_reconnecting = reconnecting;
        self.show_state();
    }

    fn show_state(&mut self) {
        let shown = match self.signal_state {
            ConnectionState::Connected if self.media_reconnecting => ConnectionState::Reconnecting,
            state => state,
        };
        if self.view.state != shown {
            self.view.state = shown;
            self.events.push(RoomEvent::State(shown));
        }
    }

    pub(crate) fn report(&mut self, error: Error) {
        self.events.push(RoomEvent::Error(error.clone()));
        self.view.error = Some(error);
    }

    /// The current plane, to use after the room state is released.
    pub(crate) fn plane(&self) -> Option<Rc<Plane>> {
        self.view.session.as_ref().map(|s| s.plane.clone())
    }

    /// The stream we publish, if any.
    pub(crate) fn local_stream(&self) -> Option<MediaStream> {
        self.view.local.as_ref().map(|l| Clone::clone(l.stream()))
    }

    /// Stops everything that runs on its own and ends the session's connections; local
    /// media stays.
    pub(crate) fn stop_activity(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(abort) = self.poll_abort.take() {
            abort.abort();
        }
        self.retry_timer = None;
        self.outbox.clear();
        self.sending = None;
    }

    /// The snapshot of this state, at `version`.
    pub(crate) fn snapshot(&self, version: u64) -> Snapshot {
        let view = &*self.view;
        let session = view.session.as_ref();
        let mut remote_streams = session
            .map(|s| s.plane.remote_streams(&s.roster))
            .unwrap_or_default();
        for r in &mut remote_streams {
            (r.audio_level, r.speaking) = self.speakers.voice(&r.peer_id);
        }
        let (local_audio_level, local_speaking) =
            session.map_or((0.0, false), |s| self.speakers.voice(&s.peer_id));
        Snapshot {
            version,
            connection_state: view.state,
            session_id: session.map(|s| s.peer_id.clone()),
            room: self.options.room.clone(),
            role: self.options.role,
            topology: session.map(|s| s.roster.topology()),
            local_stream: self.local_stream(),
            remote_streams,
            participants: session
                .map(|s| s.roster.members().to_vec())
                .unwrap_or_default(),
            mic_enabled: view.mic_enabled,
            camera_enabled: view.camera_enabled,
            screen_sharing: view.screen.is_some(),
            local_screen: view.screen.as_ref().and_then(|s| s.stream()),
            devices: view.devices.clone(),
            error: view.error.clone(),
            local_audio_level,
            local_speaking,
            active_speaker: self.speakers.active().map(str::to_owned),
            recording: view.recording,
        }
    }
}

impl Drop for Inner {
    /// Dropping the last handle without `leave()` still leaves: the server is told (best
    /// effort) and every connection, track, timer and listener goes with `Inner`.
    fn drop(&mut self) {
        self.stop_activity();
        if let Some(signaling) = self.signaling.take() {
            super::signaling::end_session_later(&self.http, signaling.token);
        }
    }
}

pub(crate) struct Shared {
    pub(crate) inner: RefCell<Inner>,
    pub(crate) notify: Notifier,
}

/// Runs `f` on the room state, then publishes what it changed and the events it queued.
/// `None` when the room is gone or (a bug) already borrowed, rather than a panic.
pub(crate) fn update<R>(shared: &Shared, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    let result = f(&mut *shared.inner.try_borrow_mut().ok()?);
    publish(shared);
    Some(result)
}

/// The part of [`update`] that does not depend on its closure, kept out of line: `update`
/// has dozens of instances, and each would otherwise carry its own copy.
#[inline(never)]
fn publish(shared: &Shared) {
    let Ok(mut inner) = shared.inner.try_borrow_mut() else {
        return;
    };
    let events = std::mem::take(&mut inner.events);
    let changed = inner.view.take_changed();
    drop(inner);
    shared.notify.publish(events, changed);
}

/// [`update`] through a `Weak`, for tasks that must not keep the room alive.
pub(crate) fn with<R>(weak: &Weak<Shared>, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    update(&*weak.upgrade()?, f)
}

/// Reads the room state without publishing anything.
pub(crate) fn read<R>(shared: &Shared, f: impl FnOnce(&Inner) -> R) -> Option<R> {
    let inner = shared.inner.try_borrow().ok()?;
    Some(f(&inner))
}
