//! The once-a-second ticker: drives connection recovery, and measures quality every
//! `statsIntervalMs`.

use std::rc::Weak;

use wasm_bindgen_futures::spawn_local;

use super::state::{with, Shared};
use super::RoomEvent;
use crate::web::js;

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
        spawn_local(super::signaling::probe(weak.clone(), http, epoch));
    }
    let Some(plane) = plane else { return };
    plane.tick(now);
    if measure {
        let weak = weak.clone();
        spawn_local(async move {
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
        });
    }
}
