//! The once-a-second ticker: drives connection recovery, and measures quality every
//! `statsIntervalMs`.

use std::rc::Weak;

use wasm_bindgen_futures::spawn_local;

use super::state::{with, Shared};
use super::RoomEvent;
use crate::web::js;

pub(crate) fn tick(weak: &Weak<Shared>) {
    let Some((plane, measure)) = with(weak, |inner| {
        inner.ticks = inner.ticks.wrapping_add(1);
        let every = (inner.options.stats_interval_ms / 1000).max(1);
        (inner.plane(), inner.ticks % every == 0)
    }) else {
        return;
    };
    super::signaling::probe(weak);
    let Some(plane) = plane else { return };
    plane.tick(js::now_ms());
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
