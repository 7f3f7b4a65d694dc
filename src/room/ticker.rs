//! The once-a-second ticker: drives connection recovery, and measures quality every
//! `statsIntervalMs`.

use std::rc::Weak;

use super::state::{with, Shared};
use super::RoomEvent;
use crate::core::speaking::Level;
use crate::web::audio::{Meter, Source};
use crate::web::js;
use crate::web::js::spawn;

pub(crate) fn tick(weak: &Weak<Shared>) {
    let now = js::now_ms();
    let Some((plane, measure, probe)) = with(weak, |inner| {
        inner.ticks = inner.ticks.wrapping_add(1);
        let every = (inner.options.stats_interval_ms / 1000).max(1);
        let probe = inner
            .signaling
            .as_mut()
            .is_some_and(|s| s.poll.probe_due(now))
            .then(|| (inner.http.clone(), inner.epoch));
        (inner.plane(), inner.ticks % every == 0, probe)
    }) else {
        return;
    };
    if let Some((http, epoch)) = probe {
        spawn(Box::pin(super::signaling::probe(weak.clone(), http, epoch)));
    }
    let Some(plane) = plane else { return };
    plane.tick(now);
    if measure {
        let weak = weak.clone();
        spawn(Box::pin(async move {
            let reports = plane.measure().await;
            if reports.is_empty() {
                return;
            }
            with(&weak, |inner| {
                inner.view.touch();
                for (peer_id, report) in reports {
                    inner.events.push(RoomEvent::Quality { peer_id, report });
                }
            });
        }));
    }
}

/// How often audio levels are read: each reading covers about the last 0.2 s.
pub(crate) const LEVELS_EVERY_MS: u32 = 200;

/// One round of audio levels: ours (0 while muted) and every remote participant's, into
/// `speaking` flags and the active speaker.
pub(crate) fn listen(weak: &Weak<Shared>) {
    let now = js::now_ms();
    with(weak, |inner| {
        let changes = match inner.view.session.as_ref() {
            // Between sessions (rejoining, or failed): nobody to hear, nothing to hold.
            None => {
                inner.meter = None;
                inner.speakers.update(&[], now)
            }
            Some(session) => {
                let me = session.peer_id.clone();
                let remotes = session.plane.remote_streams(&session.roster);
                let muted = !inner.view.mic_enabled;
                let local = inner.local_stream().filter(|_| !muted);
                let mut sources: Vec<Source<'_>> = remotes
                    .iter()
                    .map(|r| Source {
                        key: &r.peer_id,
                        stream: &r.stream,
                        remote: true,
                    })
                    .collect();
                if let Some(stream) = &local {
                    sources.push(Source {
                        key: &me,
                        stream,
                        remote: false,
                    });
                }
                let measured = measure(&mut inner.meter, &sources);
                let level_of = |id: &str| {
                    measured
                        .iter()
                        .find(|(key, _)| key == id)
                        .map_or(0.0, |(_, level)| *level)
                };
                let mut levels: Vec<Level<'_>> = remotes
                    .iter()
                    .map(|r| Level {
                        id: &r.peer_id,
                        level: level_of(&r.peer_id),
                        muted: false,
                    })
                    .collect();
                levels.push(Level {
                    id: &me,
                    level: level_of(&me),
                    muted,
                });
                inner.speakers.update(&levels, now)
            }
        };
        if changes.changed || changes.active.is_some() {
            inner.view.touch();
        }
        if let Some(active) = changes.active {
            inner.events.push(RoomEvent::ActiveSpeaker(active));
        }
    });
}

/// Levels of `sources` from the room's meter, made at the first round with audio to measure
/// (and never again once Web Audio failed).
fn measure(meter: &mut Option<Result<Meter, ()>>, sources: &[Source<'_>]) -> Vec<(String, f32)> {
    if meter.is_none() && !sources.is_empty() {
        *meter = Some(Meter::new().map_err(|_| ()));
    }
    match meter {
        Some(Ok(meter)) => meter.measure(sources),
        _ => Vec::new(),
    }
}
