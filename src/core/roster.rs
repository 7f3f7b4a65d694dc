//! Who is in the room, whom we link to, and how the room's connection state reads.

use callroom_protocol::{HostReset, LeaveReason, PeerInfo, PeerLeft, Role, Topology};

/// The room's connection to the service, as an app shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not in a room (before join, after leave).
    Disconnected,
    /// Joining.
    Connecting,
    /// Joined and signaling works.
    Connected,
    /// Signaling is failing and being retried; existing calls keep their media.
    Reconnecting,
    /// Gave up: the server refused us for good (room full, bad ticket, ...).
    Failed,
}

impl ConnectionState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Failed => "failed",
        }
    }
}

/// A change to the room's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Someone joined; `link` says whether we connect to them.
    Joined {
        /// Who.
        peer: PeerInfo,
        /// True when our topology links us.
        link: bool,
    },
    /// Someone left; close any link to them.
    Left {
        /// Who.
        peer_id: String,
        /// Why.
        reason: LeaveReason,
    },
}

/// The room as we know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    me: String,
    role: Role,
    topology: Topology,
    members: Vec<PeerInfo>,
}

impl Roster {
    /// The room right after our join.
    pub fn new(me: &str, role: Role, topology: Topology, peers: Vec<PeerInfo>) -> Self {
        let mut roster = Self {
            me: me.to_owned(),
            role,
            topology,
            members: Vec::new(),
        };
        for peer in peers {
            roster.add(peer);
        }
        roster
    }

    /// Our peer id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The room's topology.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// Everyone else, in join order.
    pub fn members(&self) -> &[PeerInfo] {
        &self.members
    }

    /// The member with this id.
    pub fn member(&self, peer_id: &str) -> Option<&PeerInfo> {
        self.members.iter().find(|m| m.peer_id == peer_id)
    }

    /// True when our topology connects us to a member with `role`: everyone in a mesh; in a
    /// hub, the host to each guest and each guest to the host.
    pub fn links_to(&self, role: Role) -> bool {
        self.topology.links(self.role, role)
    }

    /// The members we connect to.
    pub fn links(&self) -> Vec<&PeerInfo> {
        self.members
            .iter()
            .filter(|m| self.links_to(m.role))
            .collect()
    }

    fn add(&mut self, peer: PeerInfo) -> bool {
        if peer.peer_id == self.me || self.member(&peer.peer_id).is_some() {
            return false;
        }
        self.members.push(peer);
        true
    }

    fn remove(&mut self, peer_id: &str) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.peer_id != peer_id);
        self.members.len() != before
    }

    /// `peer-joined`.
    pub fn joined(&mut self, peer: PeerInfo) -> Vec<Change> {
        let link = self.links_to(peer.role);
        if self.add(peer.clone()) {
            vec![Change::Joined { peer, link }]
        } else {
            Vec::new()
        }
    }

    /// `peer-left`.
    pub fn left(&mut self, left: PeerLeft) -> Vec<Change> {
        if self.remove(&left.peer_id) {
            vec![Change::Left {
                peer_id: left.peer_id,
                reason: left.reason,
            }]
        } else {
            Vec::new()
        }
    }

    /// `host-reset`: the old host is gone, the new one is here.
    pub fn host_reset(&mut self, reset: HostReset) -> Vec<Change> {
        let mut changes = self.left(PeerLeft {
            peer_id: reset.previous_peer_id,
            reason: LeaveReason::Reset,
        });
        changes.extend(self.joined(reset.host));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, role: Role) -> PeerInfo {
        PeerInfo {
            peer_id: id.into(),
            role,
            name: id.to_uppercase(),
        }
    }

    #[test]
    fn in_a_mesh_everyone_links_to_everyone() {
        let roster = Roster::new(
            "pa",
            Role::Peer,
            Topology::Mesh,
            vec![info("pb", Role::Peer), info("pc", Role::Peer)],
        );
        let links: Vec<&str> = roster.links().iter().map(|m| m.peer_id.as_str()).collect();
        assert_eq!(links, ["pb", "pc"]);
    }

    #[test]
    fn in_a_hub_guests_link_only_to_the_host_and_the_host_to_every_guest() {
        let peers = vec![info("ph", Role::Host), info("pg2", Role::Guest)];
        let guest = Roster::new("pg1", Role::Guest, Topology::Hub, peers);
        let links: Vec<&str> = guest.links().iter().map(|m| m.peer_id.as_str()).collect();
        assert_eq!(links, ["ph"]);
        assert_eq!(
            guest.members().len(),
            2,
            "the other guest is still a participant"
        );

        let mut host = Roster::new(
            "ph",
            Role::Host,
            Topology::Hub,
            vec![info("pg1", Role::Guest)],
        );
        assert_eq!(host.links().len(), 1);
        assert_eq!(
            host.joined(info("pg2", Role::Guest)),
            vec![Change::Joined {
                peer: info("pg2", Role::Guest),
                link: true
            }]
        );
    }

    #[test]
    fn joins_and_leaves_are_idempotent_and_ignore_ourselves() {
        let mut roster = Roster::new("pa", Role::Peer, Topology::Mesh, vec![]);
        assert_eq!(roster.joined(info("pb", Role::Peer)).len(), 1);
        assert!(
            roster.joined(info("pb", Role::Peer)).is_empty(),
            "duplicate join"
        );
        assert!(
            roster.joined(info("pa", Role::Peer)).is_empty(),
            "ourselves"
        );
        let left = PeerLeft {
            peer_id: "pb".into(),
            reason: LeaveReason::Timeout,
        };
        assert_eq!(
            roster.left(left.clone()),
            vec![Change::Left {
                peer_id: "pb".into(),
                reason: LeaveReason::Timeout
            }]
        );
        assert!(roster.left(left).is_empty(), "already gone");
    }

    #[test]
    fn a_host_reset_swaps_the_host_for_a_guest() {
        let mut guest = Roster::new(
            "pg",
            Role::Guest,
            Topology::Hub,
            vec![info("ph1", Role::Host)],
        );
        let changes = guest.host_reset(HostReset {
            host: info("ph2", Role::Host),
            previous_peer_id: "ph1".into(),
        });
        assert_eq!(
            changes,
            vec![
                Change::Left {
                    peer_id: "ph1".into(),
                    reason: LeaveReason::Reset
                },
                Change::Joined {
                    peer: info("ph2", Role::Host),
                    link: true
                },
            ]
        );
        assert_eq!(guest.links()[0].peer_id, "ph2");
    }

    #[test]
    fn connection_states_have_their_documented_names() {
        let names: Vec<&str> = [
            ConnectionState::Disconnected,
            ConnectionState::Connecting,
            ConnectionState::Connected,
            ConnectionState::Reconnecting,
            ConnectionState::Failed,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "disconnected",
                "connecting",
                "connected",
                "reconnecting",
                "failed"
            ]
        );
    }
}
