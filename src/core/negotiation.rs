//! The perfect negotiation pattern's decisions: who is polite, and what to do with an
//! incoming description. Both sides may offer at any time; collisions resolve without glare.

/// The polite side of a pair yields on offer collisions. Both sides compute the same answer
/// from the two peer ids, so exactly one of them is polite.
pub fn is_polite(my_id: &str, their_id: &str) -> bool {
    my_id < their_id
}

/// Signaling state as the browser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    /// No negotiation in progress.
    Stable,
    /// Any other state (`have-local-offer`, `have-remote-offer`, ...).
    Negotiating,
    /// The connection is closed.
    Closed,
}

/// What to do with a remote description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDescription {
    /// Apply it; for an offer, answer afterwards.
    Apply {
        /// True for offers, which need an answer.
        answer: bool,
    },
    /// An offer collided with ours and we are impolite: ignore it (and the candidates that
    /// follow it), the other side will roll back and take our offer.
    Ignore,
    /// The connection is closed; drop it.
    Drop,
}

/// Per-link negotiation bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiator {
    polite: bool,
    making_offer: bool,
    ignoring_offer: bool,
}

impl Negotiator {
    /// A negotiator for the link between `my_id` and `their_id`.
    pub fn new(my_id: &str, their_id: &str) -> Self {
        Self {
            polite: is_polite(my_id, their_id),
            making_offer: false,
            ignoring_offer: false,
        }
    }

    /// True when this side yields on collisions.
    pub fn polite(&self) -> bool {
        self.polite
    }

    /// We start creating an offer.
    pub fn begin_offer(&mut self) {
        self.making_offer = true;
    }

    /// Our offer is set locally and sent, or failed.
    pub fn end_offer(&mut self) {
        self.making_offer = false;
    }

    /// Decides what to do with a remote description of type `kind`.
    pub fn on_description(&mut self, kind: &str, state: SignalingState) -> OnDescription {
        if state == SignalingState::Closed {
            return OnDescription::Drop;
        }
        let is_offer = kind == "offer";
        let collision = is_offer && (self.making_offer || state != SignalingState::Stable);
        self.ignoring_offer = !self.polite && collision;
        if self.ignoring_offer {
            OnDescription::Ignore
        } else {
            OnDescription::Apply { answer: is_offer }
        }
    }

    /// True while candidates that fail to apply belong to an offer we ignored (expected, silent).
    pub fn ignoring_offer(&self) -> bool {
        self.ignoring_offer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_side_of_a_pair_is_polite() {
        for (a, b) in [("p1", "p2"), ("pabc", "pab"), ("x", "y")] {
            assert_ne!(is_polite(a, b), is_polite(b, a), "{a} {b}");
        }
    }

    #[test]
    fn without_collision_offers_are_answered_and_answers_applied() {
        let mut n = Negotiator::new("pa", "pb");
        assert_eq!(
            n.on_description("offer", SignalingState::Stable),
            OnDescription::Apply { answer: true }
        );
        n.begin_offer();
        assert_eq!(
            n.on_description("answer", SignalingState::Negotiating),
            OnDescription::Apply { answer: false }
        );
    }

    #[test]
    fn on_collision_the_impolite_side_ignores_and_the_polite_side_yields() {
        // "pb" > "pa": pb is impolite towards pa.
        let mut impolite = Negotiator::new("pb", "pa");
        let mut polite = Negotiator::new("pa", "pb");
        assert!(!impolite.polite() && polite.polite());
        impolite.begin_offer();
        polite.begin_offer();
        assert_eq!(
            impolite.on_description("offer", SignalingState::Negotiating),
            OnDescription::Ignore
        );
        assert!(impolite.ignoring_offer());
        // The polite side applies the colliding offer (the browser rolls its own back).
        assert_eq!(
            polite.on_description("offer", SignalingState::Negotiating),
            OnDescription::Apply { answer: true }
        );
        assert!(!polite.ignoring_offer());
    }

    #[test]
    fn an_offer_during_our_own_negotiation_is_a_collision_even_when_not_making_one() {
        let mut impolite = Negotiator::new("pz", "pa");
        assert_eq!(
            impolite.on_description("offer", SignalingState::Negotiating),
            OnDescription::Ignore
        );
        // Once stable again, the next offer is taken.
        assert_eq!(
            impolite.on_description("offer", SignalingState::Stable),
            OnDescription::Apply { answer: true }
        );
        assert!(!impolite.ignoring_offer());
    }

    #[test]
    fn a_closed_connection_drops_everything() {
        let mut n = Negotiator::new("pa", "pb");
        assert_eq!(
            n.on_description("offer", SignalingState::Closed),
            OnDescription::Drop
        );
    }
}
