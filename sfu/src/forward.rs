//! The per-frame decision for one subscriber (forward, drop, or drop and ask for a keyframe) and
//! the RTP clock rewrite that keeps a layer switch invisible to the subscriber's jitter buffer.

use str0m::media::{MediaKind, MediaTime, Rid};

use crate::session::Pulled;

/// What to do with one incoming frame for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Write it to the subscriber.
    Forward,
    /// Not for this subscriber.
    Drop,
    /// The subscriber waits for a keyframe of this layer: drop, and ask the publisher for one.
    NeedKeyframe,
}

/// Decide for a frame of layer `rid` (`None`: no simulcast). Starting and switching wait for a
/// keyframe of the target layer, so the subscriber's decoder never sees a delta frame it cannot
/// use; meanwhile the current layer keeps flowing.
pub(crate) fn decide(
    pulled: &mut Pulled,
    kind: MediaKind,
    rid: Option<Rid>,
    keyframe: bool,
) -> Decision {
    if !pulled.negotiated || pulled.source_gone {
        return Decision::Drop;
    }
    if kind == MediaKind::Audio {
        pulled.current = Some(rid);
        return Decision::Forward;
    }
    let target = pulled.target.unwrap_or(rid);
    if pulled.current == Some(rid) && target == rid {
        return Decision::Forward;
    }
    if target == rid {
        if keyframe {
            pulled.current = Some(rid);
            pulled.target = Some(rid);
            return Decision::Forward;
        }
        return if pulled.current == Some(rid) {
            Decision::Forward
        } else {
            Decision::NeedKeyframe
        };
    }
    if pulled.current == Some(rid) {
        // Still on the old layer until the target's keyframe arrives.
        return Decision::Forward;
    }
    Decision::Drop
}

/// The RTP time to send a frame with: incoming time shifted so that the outgoing clock continues
/// where it left off when the layer (and with it the sender's clock origin) changed.
pub(crate) fn outgoing_time(pulled: &mut Pulled, switched: bool, time: MediaTime) -> MediaTime {
    let incoming = time.numer() as i64;
    if switched {
        if let Some(last) = pulled.last_out_time {
            // One 30 fps frame later at 90 kHz; audio never switches.
            let step = i64::from(time.denom()) / 30;
            pulled.time_offset = last as i64 + step - incoming;
        }
    }
    let out = (incoming + pulled.time_offset).max(0) as u64;
    pulled.last_out_time = Some(out);
    MediaTime::new(out, time.frequency())
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::Mid;

    fn pulled() -> Pulled {
        Pulled {
            mid: Mid::from("0"),
            name: "cam".into(),
            publisher: 1,
            publisher_id: "p".into(),
            kind: MediaKind::Video,
            preference: None,
            negotiated: true,
            source_gone: false,
            current: None,
            target: None,
            time_offset: 0,
            last_out_time: None,
            last_forwarded: None,
        }
    }

    fn rid(s: &str) -> Option<Rid> {
        Some(Rid::from(s))
    }

    #[test]
    fn a_new_subscriber_waits_for_a_keyframe_then_forwards() {
        let mut p = pulled();
        p.target = Some(None);
        assert_eq!(
            decide(&mut p, MediaKind::Video, None, false),
            Decision::NeedKeyframe
        );
        assert_eq!(
            decide(&mut p, MediaKind::Video, None, true),
            Decision::Forward
        );
        assert_eq!(
            decide(&mut p, MediaKind::Video, None, false),
            Decision::Forward
        );
    }

    #[test]
    fn a_switch_keeps_the_old_layer_until_the_new_one_has_a_keyframe() {
        let mut p = pulled();
        p.target = Some(rid("h"));
        assert_eq!(
            decide(&mut p, MediaKind::Video, rid("h"), true),
            Decision::Forward
        );
        p.target = Some(rid("l"));
        assert_eq!(
            decide(&mut p, MediaKind::Video, rid("h"), false),
            Decision::Forward
        );
        assert_eq!(
            decide(&mut p, MediaKind::Video, rid("l"), false),
            Decision::NeedKeyframe
        );
        assert_eq!(
            decide(&mut p, MediaKind::Video, rid("l"), true),
            Decision::Forward
        );
        assert_eq!(
            decide(&mut p, MediaKind::Video, rid("h"), true),
            Decision::Drop
        );
        assert_eq!(p.current, Some(rid("l")));
    }

    #[test]
    fn nothing_is_forwarded_before_negotiation_or_after_the_source_is_gone() {
        let mut p = pulled();
        p.negotiated = false;
        assert_eq!(decide(&mut p, MediaKind::Audio, None, true), Decision::Drop);
        p.negotiated = true;
        p.source_gone = true;
        assert_eq!(decide(&mut p, MediaKind::Video, None, true), Decision::Drop);
    }

    #[test]
    fn the_outgoing_clock_continues_across_a_layer_switch() {
        let mut p = pulled();
        let t = |n| MediaTime::new(n, str0m::media::Frequency::NINETY_KHZ);
        assert_eq!(outgoing_time(&mut p, true, t(1_000)).numer(), 1_000);
        assert_eq!(outgoing_time(&mut p, false, t(4_000)).numer(), 4_000);
        // The new layer's clock starts elsewhere; output goes on one frame later.
        assert_eq!(outgoing_time(&mut p, true, t(500_000)).numer(), 7_000);
        assert_eq!(outgoing_time(&mut p, false, t(503_000)).numer(), 10_000);
    }
}
