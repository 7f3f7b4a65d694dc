//! Forwarding benchmark: synthetic str0m publishers and subscribers talk to one `Sfu` in this
//! process, in real time, at a camera's rate. It reports numbers and never asserts timings.
//!
//! ```text
//! cargo run --release -p callroom-sfu --example bench -- --streams 10,50,200 --seconds 5
//! ```
//!
//! Each publisher sends one 30 fps VP8 track in three simulcast layers (about 500, 150 and
//! 50 kbps); each subscriber session pulls one track and gets the top layer. "Forwarded
//! streams" is the number of subscriber sessions. Only the calls into the `Sfu` are timed for
//! its CPU cost (one thread, so wall time spent inside them); the clients' cost is excluded.
//! Added delay runs from the moment a publisher's frame starts entering the `Sfu` to the moment
//! the datagram that completes it for a subscriber leaves the `Sfu`.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use callroom_sfu::calls::{Location, SessionDescription, TrackObject, TracksRequest};
use callroom_sfu::{Sfu, SfuConfig};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const FRAME: Duration = Duration::from_micros(33_333);
const LAYERS: [(&str, usize); 3] = [("h", 2083), ("m", 625), ("l", 208)];
const SUBSCRIBERS_PER_PUBLISHER: usize = 5;

struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    session_id: String,
    timeout: Instant,
    mid: Option<Mid>,
    keyframe_due: bool,
    frames_received: u64,
}

struct Bench {
    sfu: Sfu,
    sfu_addr: SocketAddr,
    clients: Vec<Client>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Datagrams from the SFU on their way to clients: (client, time it left the SFU, bytes).
    to_clients: VecDeque<(usize, Instant, Vec<u8>)>,
    sfu_time: Duration,
    measuring: bool,
    forwarded_rtp: u64,
    /// (publisher, frame number) -> when its first datagram entered the SFU.
    frame_in: HashMap<(u16, u64), Instant>,
    delays: Vec<Duration>,
    /// When the datagram being delivered to a client left the SFU.
    last_out: Option<Instant>,
}

fn main() {
    let mut streams = vec![10, 50, 200];
    let mut seconds = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--streams" => {
                let v = args.next().unwrap_or_default();
                streams = v.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            }
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(5),
            other => {
                eprintln!("unknown argument {other}; use --streams 10,50,200 --seconds 5");
                std::process::exit(2);
            }
        }
    }
    println!("callroom-sfu forwarding benchmark: 30 fps VP8, simulcast h/m/l ~500/150/50 kbps,");
    println!("{SUBSCRIBERS_PER_PUBLISHER} subscribers per publisher, {seconds} s measured after 1 s warm-up, one thread.");
    println!("Bar: 500 forwarded streams per core (~30 us per packet), p99 added delay < 5 ms.\n");
    println!(
        "{:>8} {:>9} {:>11} {:>13} {:>14} {:>10} {:>10} {:>10} {:>12}",
        "streams",
        "sessions",
        "fwd pkts/s",
        "us/fwd pkt",
        "streams/core",
        "delay p50",
        "delay p99",
        "delay max",
        "frames recv"
    );
    for &n in &streams {
        run(n.max(1), Duration::from_secs(seconds));
    }
    println!("\n* RSS growth of the run per SFU session, including its simulated client's Rtc.");
    memory_per_session();
}

fn run(streams: usize, measure: Duration) {
    let publishers = streams.div_ceil(SUBSCRIBERS_PER_PUBLISHER);
    let rss_before = rss();
    let mut b = Bench::new();
    let pubs: Vec<usize> = (0..publishers).map(|_| b.add_client()).collect();
    for &p in &pubs {
        b.push(p);
    }
    let mut subs = Vec::new();
    for i in 0..streams {
        let s = b.add_client();
        b.pull(s, pubs[i % publishers]);
        subs.push(s);
    }
    // Connect everyone.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.clients.iter().all(|c| c.rtc.is_connected()) {
        if Instant::now() > deadline {
            println!("{streams:>8} not all clients connected within 20 s; skipped");
            return;
        }
        b.turn(Instant::now() + Duration::from_millis(1));
    }

    let start = Instant::now();
    let warm_end = start + Duration::from_secs(1);
    let end = warm_end + measure;
    let mut next_frame = start;
    let mut frame_no = 0u64;
    while Instant::now() < end {
        let now = Instant::now();
        if !b.measuring && now >= warm_end {
            b.measuring = true;
            b.sfu_time = Duration::ZERO;
            b.forwarded_rtp = 0;
            b.delays.clear();
            for &s in &subs {
                b.clients[s].frames_received = 0;
            }
        }
        if now >= next_frame {
            for (i, &p) in pubs.iter().enumerate() {
                b.write_frame(p, i as u16, frame_no);
            }
            frame_no += 1;
            next_frame += FRAME;
        }
        b.turn(next_frame);
    }
    let wall = measure.as_secs_f64();
    let fwd_per_s = b.forwarded_rtp as f64 / wall;
    let us_per_pkt = b.sfu_time.as_secs_f64() * 1e6 / (b.forwarded_rtp.max(1) as f64);
    let core_share = b.sfu_time.as_secs_f64() / wall;
    let per_core = streams as f64 / core_share.max(1e-9);
    b.delays.sort();
    let pct = |q: f64| -> String {
        if b.delays.is_empty() {
            return "-".into();
        }
        let i = ((b.delays.len() as f64 - 1.0) * q).round() as usize;
        format!("{:.2} ms", b.delays[i].as_secs_f64() * 1e3)
    };
    let frames: u64 = subs.iter().map(|&s| b.clients[s].frames_received).sum();
    let per_session = match (rss_before, rss()) {
        (Some(before), Some(after)) => format!(
            "{:.0}",
            after.saturating_sub(before) as f64 / 1024.0 / b.sfu.session_count().max(1) as f64
        ),
        _ => "-".into(),
    };
    println!(
        "{:>8} {:>9} {:>11.0} {:>13.1} {:>14.0} {:>10} {:>10} {:>10} {:>12} {:>12}",
        streams,
        b.sfu.session_count(),
        fwd_per_s,
        us_per_pkt,
        per_core,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        frames,
        per_session,
    );
}

impl Bench {
    fn new() -> Bench {
        let sfu_addr: SocketAddr = (Ipv4Addr::new(192, 0, 2, 1), 3478).into();
        let mut config = SfuConfig::new(sfu_addr);
        config.max_sessions = 100_000;
        Bench {
            sfu: Sfu::new(config, Instant::now()),
            sfu_addr,
            clients: Vec::new(),
            by_addr: HashMap::new(),
            to_clients: VecDeque::new(),
            sfu_time: Duration::ZERO,
            measuring: false,
            forwarded_rtp: 0,
            frame_in: HashMap::new(),
            delays: Vec::new(),
            last_out: None,
        }
    }

    fn add_client(&mut self) -> usize {
        let n = self.clients.len();
        let addr: SocketAddr = (
            Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8),
            5000,
        )
            .into();
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        if let Ok(c) = Candidate::host(addr, "udp") {
            rtc.add_local_candidate(c);
        }
        let session_id = self.sfu.new_session(now).expect("session");
        self.by_addr.insert(addr, n);
        self.clients.push(Client {
            rtc,
            addr,
            session_id,
            timeout: now,
            mid: None,
            keyframe_due: true,
            frames_received: 0,
        });
        n
    }

    fn push(&mut self, c: usize) {
        let now = Instant::now();
        let client = &mut self.clients[c];
        let mut api = client.rtc.sdp_api();
        let mut simulcast = Simulcast::new();
        for (rid, _) in LAYERS {
            simulcast.add_send_layer(SimulcastLayer::new(rid));
        }
        let mid = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            None,
            None,
            Some(simulcast),
        );
        let (offer, pending) = api.apply().expect("offer");
        let request = TracksRequest {
            session_description: Some(SessionDescription::offer(offer.to_sdp_string())),
            tracks: vec![TrackObject {
                location: Some(Location::Local),
                mid: Some(mid.to_string()),
                track_name: "cam".into(),
                ..Default::default()
            }],
            auto_discover: None,
        };
        let sid = client.session_id.clone();
        let response = self.sfu.tracks_new(now, &sid, request).expect("push");
        let answer = response.session_description.expect("answer");
        let client = &mut self.clients[c];
        client
            .rtc
            .sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer.sdp).expect("sdp"),
            )
            .expect("answer accepted");
        client.mid = Some(mid);
        let _ = client.rtc.handle_input(Input::Timeout(now));
        self.drain_sfu();
    }

    fn pull(&mut self, c: usize, publisher: usize) {
        let now = Instant::now();
        let request = TracksRequest {
            tracks: vec![TrackObject {
                location: Some(Location::Remote),
                session_id: Some(self.clients[publisher].session_id.clone()),
                track_name: "cam".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let sid = self.clients[c].session_id.clone();
        let response = self.sfu.tracks_new(now, &sid, request).expect("pull");
        let offer = response.session_description.expect("offer");
        let client = &mut self.clients[c];
        let answer = client
            .rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer.sdp).expect("sdp"))
            .expect("offer accepted");
        self.sfu
            .renegotiate(
                now,
                &sid,
                SessionDescription::answer(answer.to_sdp_string()),
            )
            .expect("renegotiate");
        let _ = self.clients[c].rtc.handle_input(Input::Timeout(now));
        self.drain_sfu();
    }

    fn write_frame(&mut self, c: usize, publisher: u16, n: u64) {
        let now = Instant::now();
        let client = &mut self.clients[c];
        let Some(mid) = client.mid else { return };
        let keyframe = std::mem::take(&mut client.keyframe_due);
        for (rid, size) in LAYERS {
            let Some(writer) = client.rtc.writer(mid) else {
                return;
            };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
            else {
                return;
            };
            let mut data = vec![0u8; size];
            data[0] = if keyframe { 0x10 } else { 0x11 };
            data[1..9].copy_from_slice(&n.to_be_bytes());
            data[9..11].copy_from_slice(&publisher.to_be_bytes());
            data[11] = rid.as_bytes()[0];
            let _ =
                writer
                    .rid(Rid::from(rid))
                    .write(pt, now, MediaTime::from_90khz(n * 3000), data);
        }
        let _ = client.rtc.handle_input(Input::Timeout(now));
        // The frame's datagrams go into the SFU now: start its clock.
        self.frame_in.insert((publisher, n), Instant::now());
        if self.frame_in.len() > 100_000 {
            self.frame_in.retain(|(_, f), _| *f + 60 > n);
        }
        self.poll_client(c);
    }

    /// Poll a client's output, sending its datagrams into the SFU.
    fn poll_client(&mut self, c: usize) {
        loop {
            let out = match self.clients[c].rtc.poll_output() {
                Ok(o) => o,
                Err(_) => return,
            };
            match out {
                Output::Timeout(t) => {
                    self.clients[c].timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    let started = Instant::now();
                    self.sfu
                        .handle_receive(started, t.source, t.destination, &t.contents);
                    self.sfu_time += started.elapsed();
                    self.drain_sfu();
                }
                Output::Event(Event::KeyframeRequest(_)) => self.clients[c].keyframe_due = true,
                Output::Event(Event::MediaData(d)) => {
                    self.clients[c].frames_received += 1;
                    if self.measuring && d.data.len() >= 12 {
                        let mut f = [0u8; 8];
                        f.copy_from_slice(&d.data[1..9]);
                        let publisher = u16::from_be_bytes([d.data[9], d.data[10]]);
                        let key = (publisher, u64::from_be_bytes(f));
                        if let (Some(t_in), Some(t_out)) = (self.frame_in.get(&key), self.last_out)
                        {
                            self.delays.push(t_out.saturating_duration_since(*t_in));
                        }
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    /// Move the SFU's datagrams to client queues, stamping when each left the SFU.
    fn drain_sfu(&mut self) {
        loop {
            let started = Instant::now();
            let t = self.sfu.poll_transmit();
            self.sfu_time += started.elapsed();
            let Some(t) = t else { return };
            let Some(&c) = self.by_addr.get(&t.destination) else {
                continue;
            };
            if self.measuring && is_rtp(&t.contents) && self.clients[c].mid.is_none() {
                self.forwarded_rtp += 1;
            }
            self.to_clients.push_back((c, Instant::now(), t.contents));
        }
    }

    /// Deliver queued datagrams, fire due timers, then wait (at most until `until`).
    fn turn(&mut self, until: Instant) {
        while let Some((c, left_sfu, data)) = self.to_clients.pop_front() {
            let now = Instant::now();
            let src = self.sfu_addr;
            let dst = self.clients[c].addr;
            if let Ok(recv) = Receive::new(Protocol::Udp, src, dst, &data) {
                let _ = self.clients[c].rtc.handle_input(Input::Receive(now, recv));
            }
            self.last_out = Some(left_sfu);
            self.poll_client(c);
            self.last_out = None;
        }
        let now = Instant::now();
        for c in 0..self.clients.len() {
            if self.clients[c].timeout <= now {
                let _ = self.clients[c].rtc.handle_input(Input::Timeout(now));
                self.poll_client(c);
            }
        }
        if self.sfu.poll_timeout() <= now {
            let started = Instant::now();
            self.sfu.handle_timeout(started);
            self.sfu_time += started.elapsed();
            self.drain_sfu();
        }
        if !self.to_clients.is_empty() {
            return;
        }
        let mut wake = until.min(self.sfu.poll_timeout());
        for c in &self.clients {
            wake = wake.min(c.timeout);
        }
        let now = Instant::now();
        if wake > now + Duration::from_micros(200) {
            std::thread::sleep((wake - now).min(Duration::from_millis(5)));
        }
    }
}

fn is_rtp(d: &[u8]) -> bool {
    d.len() > 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1])
}

/// Resident memory of this process, bytes (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Memory of idle SFU sessions (created, no negotiation), from the RSS growth of 2000 of them.
fn memory_per_session() {
    let n = 2000;
    let mut config = SfuConfig::new((Ipv4Addr::new(192, 0, 2, 1), 3478).into());
    config.max_sessions = n;
    let now = Instant::now();
    let before = rss();
    let mut sfu = Sfu::new(config, now);
    for _ in 0..n {
        let _ = sfu.new_session(now);
    }
    match (before, rss()) {
        (Some(b), Some(a)) => println!(
            "\nmemory: {:.1} KiB RSS per idle session ({} sessions); negotiated sessions with media use more",
            (a.saturating_sub(b)) as f64 / 1024.0 / n as f64,
            n
        ),
        _ => println!("\nmemory: not measurable here (no /proc/self/statm)"),
    }
}
