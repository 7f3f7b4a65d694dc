//! A deterministic in-process network: str0m client `Rtc`s talk to one `Sfu` through queues,
//! with time moved forward by hand. No sockets, no sleeping.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use callroom_sfu::calls::{
    Location, SessionDescription, SimulcastPreference, TrackObject, TracksRequest, TracksResponse,
};
use callroom_sfu::{Sfu, SfuConfig, SfuEvent};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{
    Direction, KeyframeRequest, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// The SFU's public address in every test.
pub fn sfu_addr() -> SocketAddr {
    (Ipv4Addr::new(192, 0, 2, 1), 3478).into()
}

/// A frame as a subscriber received it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub at: Instant,
    pub mid: Mid,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// One client: a str0m `Rtc` (full ICE) with its own address and an inbox.
pub struct Client {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub session_id: String,
    /// Datagrams on their way to this client: (arrival time, sender, contents).
    pub inbox: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    pub timeout: Instant,
    pub frames: Vec<Frame>,
    pub keyframe_requests: Vec<(Instant, KeyframeRequest)>,
    /// The next frame this client's "encoder" writes is a keyframe (set by a keyframe request).
    pub keyframe_due: bool,
    pub frame_no: u64,
    pub connected: bool,
    /// Stop answering (as if the network to this client vanished).
    pub unplugged: bool,
    /// Datagrams delivered to this client.
    pub received: usize,
    /// Capacity of the link from the SFU to this client, bits/s (`None`: unlimited).
    pub downlink_bps: Option<u64>,
    link_free_at: Instant,
    /// Datagrams the capped link dropped (its queue was over 200 ms).
    pub link_drops: usize,
}

/// The simulated world: one SFU, many clients, one clock.
pub struct World {
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    pub now: Instant,
    pub events: Vec<SfuEvent>,
    /// Largest time step when nothing is due sooner.
    pub max_step: Duration,
    /// SFU datagrams addressed to nobody.
    pub lost: usize,
    /// One-way network delay.
    pub latency: Duration,
    /// Datagrams on their way to the SFU: (arrival time, source, destination, contents).
    pub to_sfu: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// Deliver every client datagram to the SFU twice (a duplicating network).
    pub duplicate_to_sfu: bool,
}

impl World {
    pub fn new() -> World {
        Self::with_config(|c| c)
    }

    pub fn with_config(f: impl FnOnce(SfuConfig) -> SfuConfig) -> World {
        let now = Instant::now();
        // The socket is bound to the wildcard address; clients reach it at the public one.
        let mut config = SfuConfig::new((Ipv4Addr::UNSPECIFIED, 3478).into());
        config.public_addrs = vec![sfu_addr()];
        let config = f(config);
        World {
            sfu: Sfu::new(config, now),
            clients: Vec::new(),
            now,
            events: Vec::new(),
            max_step: Duration::from_millis(5),
            lost: 0,
            latency: Duration::from_millis(1),
            to_sfu: VecDeque::new(),
            duplicate_to_sfu: false,
        }
    }

    /// A client with a new SFU session.
    pub fn add_client(&mut self) -> usize {
        let n = self.clients.len();
        let addr: SocketAddr = (
            Ipv4Addr::new(10, 0, (n / 200) as u8, (n % 200) as u8 + 2),
            5000,
        )
            .into();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
        let session_id = self.sfu.new_session(self.now).expect("session");
        self.clients.push(Client {
            rtc,
            addr,
            session_id,
            inbox: VecDeque::new(),
            timeout: self.now,
            frames: Vec::new(),
            keyframe_requests: Vec::new(),
            keyframe_due: false,
            frame_no: 0,
            connected: false,
            unplugged: false,
            received: 0,
            downlink_bps: None,
            link_free_at: self.now,
            link_drops: 0,
        });
        n
    }

    /// Push tracks with a client offer: `(name, kind, simulcast rids)`. Returns the SFU's
    /// response and the client's mids.
    pub fn push(
        &mut self,
        c: usize,
        tracks: &[(&str, MediaKind, &[&str])],
    ) -> (TracksResponse, Vec<Mid>) {
        let client = &mut self.clients[c];
        let mut api = client.rtc.sdp_api();
        let mids: Vec<Mid> = tracks
            .iter()
            .map(|(name, kind, rids)| {
                let simulcast = (!rids.is_empty()).then(|| {
                    let mut s = Simulcast::new();
                    for r in *rids {
                        s.add_send_layer(SimulcastLayer::new(r));
                    }
                    s
                });
                api.add_media(
                    *kind,
                    Direction::SendOnly,
                    Some("stream".into()),
                    Some(name.to_string()),
                    simulcast,
                )
            })
            .collect();
        let (offer, pending) = api.apply().expect("offer");
        let request = TracksRequest {
            session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
            tracks: tracks
                .iter()
                .zip(&mids)
                .map(|((name, _, _), mid)| TrackObject {
                    location: Some(Location::Local),
                    mid: Some(mid.to_string()),
                    track_name: name.to_string(),
                    ..Default::default()
                })
                .collect(),
            auto_discover: None,
        };
        let sid = client.session_id.clone();
        let response = self
            .sfu
            .tracks_new(self.now, &sid, request)
            .expect("push accepted");
        let answer = response.session_description.clone().expect("an answer");
        let answer = SdpAnswer::from_sdp_string(&answer.sdp).expect("answer parses");
        self.clients[c]
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("client accepts the answer");
        self.kick(c);
        self.pump();
        (response, mids)
    }

    /// Pull `track` of client `from` into client `c`, answering the SFU's offer.
    pub fn pull(
        &mut self,
        c: usize,
        from: usize,
        track: &str,
        simulcast: Option<SimulcastPreference>,
    ) -> TracksResponse {
        let request = TracksRequest {
            tracks: vec![TrackObject {
                location: Some(Location::Remote),
                session_id: Some(self.clients[from].session_id.clone()),
                track_name: track.into(),
                simulcast,
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.pull_request(c, request);
        assert_eq!(response.tracks[0].error_code, None, "{response:?}");
        response
    }

    /// Send a pull request and answer the offer if there is one.
    pub fn pull_request(&mut self, c: usize, request: TracksRequest) -> TracksResponse {
        let sid = self.clients[c].session_id.clone();
        let response = self
            .sfu
            .tracks_new(self.now, &sid, request)
            .expect("pull accepted");
        if let Some(offer) = &response.session_description {
            assert!(response.requires_immediate_renegotiation);
            let offer = SdpOffer::from_sdp_string(&offer.sdp).expect("offer parses");
            let answer = self.clients[c]
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .expect("client answers");
            self.sfu
                .renegotiate(
                    self.now,
                    &sid,
                    SessionDescription::answer(answer.to_sdp_string()),
                )
                .expect("renegotiate accepted");
            self.kick(c);
        }
        self.pump();
        response
    }

    /// Write one video frame (each simulcast layer gets its own copy tagged with the rid).
    pub fn write_video(&mut self, c: usize, mid: Mid, rids: &[&str], size: usize) {
        let now = self.now;
        let client = &mut self.clients[c];
        let keyframe = client.keyframe_due || client.frame_no == 0;
        client.keyframe_due = false;
        let n = client.frame_no;
        client.frame_no += 1;
        let time = MediaTime::from_90khz(n * 3000);
        let layers: Vec<Option<&str>> = if rids.is_empty() {
            vec![None]
        } else {
            rids.iter().map(|r| Some(*r)).collect()
        };
        for rid in layers {
            let Some(writer) = client.rtc.writer(mid) else {
                return;
            };
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == str0m::format::Codec::Vp8)
                .map(|p| p.pt())
                .expect("vp8 negotiated");
            let writer = match rid {
                Some(r) => writer.rid(Rid::from(r)),
                None => writer,
            };
            writer
                .write(
                    pt,
                    now,
                    time,
                    frame_payload(keyframe, n, rid, layer_size(rid, size)),
                )
                .expect("write");
        }
        self.pump();
    }

    /// Write one audio frame.
    pub fn write_audio(&mut self, c: usize, mid: Mid) {
        let now = self.now;
        let client = &mut self.clients[c];
        let n = client.frame_no;
        client.frame_no += 1;
        let Some(writer) = client.rtc.writer(mid) else {
            return;
        };
        let pt = writer
            .payload_params()
            .next()
            .map(|p| p.pt())
            .expect("opus");
        writer
            .write(
                pt,
                now,
                MediaTime::new(n * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ),
                vec![n as u8; 60],
            )
            .expect("write");
        self.pump();
    }

    /// str0m does not always re-arm its timers after an SDP change; a timeout input does.
    pub fn kick(&mut self, c: usize) {
        let now = self.now;
        self.clients[c]
            .rtc
            .handle_input(Input::Timeout(now))
            .expect("client timeout");
    }

    /// Move every queued datagram and output until nothing moves, without advancing time.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                moved |= self.poll_client(i);
            }
            while self.to_sfu.front().is_some_and(|d| d.0 <= self.now) {
                let Some((_, src, dst, data)) = self.to_sfu.pop_front() else {
                    break;
                };
                moved = true;
                self.sfu.handle_receive(self.now, src, dst, &data);
            }
            let arrival = self.now + self.latency;
            while let Some(t) = self.sfu.poll_transmit() {
                moved = true;
                if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination) {
                    let mut arrival = arrival;
                    if let Some(bps) = c.downlink_bps {
                        // A bottleneck with a 200 ms drop-tail queue.
                        let start = c.link_free_at.max(self.now);
                        if start - self.now > Duration::from_millis(200) {
                            c.link_drops += 1;
                            continue;
                        }
                        let bits = (t.contents.len() as u64 + 28) * 8;
                        c.link_free_at = start + Duration::from_micros(bits * 1_000_000 / bps);
                        arrival = c.link_free_at + self.latency;
                    }
                    if !c.unplugged {
                        c.inbox.push_back((arrival, sfu_addr(), t.contents));
                    }
                } else {
                    self.lost += 1;
                }
            }
            while let Some(e) = self.sfu.poll_event() {
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    fn poll_client(&mut self, i: usize) -> bool {
        let now = self.now;
        let mut moved = false;
        let c = &mut self.clients[i];
        while c.inbox.front().is_some_and(|d| d.0 <= now) {
            let Some((_, from, data)) = c.inbox.pop_front() else {
                break;
            };
            moved = true;
            c.received += 1;
            let Ok(recv) = Receive::new(Protocol::Udp, from, c.addr, &data) else {
                continue;
            };
            c.rtc
                .handle_input(Input::Receive(now, recv))
                .expect("client input");
        }
        let mut out = Vec::new();
        loop {
            match c.rtc.poll_output().expect("client output") {
                Output::Timeout(t) => {
                    c.timeout = t;
                    break;
                }
                Output::Transmit(t) => out.push((t.source, t.destination, Vec::from(t.contents))),
                Output::Event(e) => match e {
                    Event::Connected => c.connected = true,
                    Event::MediaData(d) => c.frames.push(Frame {
                        at: now,
                        mid: d.mid,
                        keyframe: d.is_keyframe(),
                        data: d.data.to_vec(),
                    }),
                    Event::KeyframeRequest(r) => {
                        c.keyframe_due = true;
                        c.keyframe_requests.push((now, r));
                    }
                    _ => {}
                },
            }
        }
        let unplugged = c.unplugged;
        for (src, dst, data) in out {
            moved = true;
            if !unplugged {
                if self.duplicate_to_sfu {
                    self.to_sfu
                        .push_back((now + self.latency, src, dst, data.clone()));
                }
                self.to_sfu.push_back((now + self.latency, src, dst, data));
            }
        }
        moved
    }

    /// Advance the clock to the next due timer (at most `max_step`) and fire what is due.
    pub fn step(&mut self) {
        self.pump();
        let mut next = self.now + self.max_step;
        next = next.min(self.sfu.poll_timeout());
        for c in &self.clients {
            next = next.min(c.timeout);
            if let Some(d) = c.inbox.front() {
                next = next.min(d.0);
            }
        }
        if let Some(d) = self.to_sfu.front() {
            next = next.min(d.0);
        }
        self.now = next.max(self.now + Duration::from_micros(100));
        let now = self.now;
        // Every client sees time pass, as a real event loop's would (str0m's DTLS timers run
        // on the last time an Rtc was given).
        for c in &mut self.clients {
            c.rtc
                .handle_input(Input::Timeout(now))
                .expect("client timeout");
        }
        if self.sfu.poll_timeout() <= now {
            self.sfu.handle_timeout(now);
        }
        self.pump();
    }

    /// Run for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Run until `cond` holds, failing after `limit` of simulated time.
    pub fn run_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&World) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            assert!(self.now < end, "timed out waiting for: {what}");
            self.step();
        }
    }

    /// Run `d` of simulated time while client `c` sends video on `mid` at 30 fps.
    pub fn stream_video(&mut self, c: usize, mid: Mid, rids: &[&str], size: usize, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.write_video(c, mid, rids, size);
            let next_frame = self.now + Duration::from_millis(33);
            while self.now < next_frame {
                self.step();
            }
        }
    }

    pub fn connected(&self, c: usize) -> bool {
        self.clients[c].connected && self.clients[c].rtc.is_connected()
    }
}

/// A VP8 frame whose first byte says key or delta (bit 0 clear = keyframe), then the frame
/// number and the layer, padded to `size`.
pub fn frame_payload(keyframe: bool, n: u64, rid: Option<&str>, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(16));
    v.push(if keyframe { 0x10 } else { 0x11 });
    v.extend_from_slice(&n.to_be_bytes());
    let tag = rid.unwrap_or("-").as_bytes();
    v.push(tag.first().copied().unwrap_or(b'-'));
    while v.len() < size {
        v.push((v.len() % 251) as u8);
    }
    v
}

/// Simulcast layers get smaller from "h" to "m" to "l", as an encoder's would.
pub fn layer_size(rid: Option<&str>, size: usize) -> usize {
    match rid {
        Some("m") => size / 3,
        Some("l") => size / 9,
        _ => size,
    }
}

/// The frame number and layer tag written by [`frame_payload`].
pub fn frame_info(data: &[u8]) -> (u64, char) {
    let mut n = [0u8; 8];
    n.copy_from_slice(&data[1..9]);
    (u64::from_be_bytes(n), data[9] as char)
}
