//! The embedded SFU at work: one UDP socket, the sans-IO [`Sfu`] behind a mutex, and a task
//! that feeds it datagrams and timeouts. API calls lock it too, so mutations never overlap.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use callroom_sfu::{Sfu, SfuConfig, SfuEvent};
use tokio::sync::Notify;

/// The embedded SFU and its socket.
pub struct LocalSfu {
    sfu: Mutex<Sfu>,
    socket: UdpSocket,
    /// Tells the receive loop that an API call moved the next timeout.
    wake: Notify,
    /// Events for the room registry, drained by the run loop.
    events: Mutex<Vec<SfuEvent>>,
}

/// Most SFU events held for the run loop; beyond it the oldest are dropped (the SFU keeps its
/// own bounded queue too).
const MAX_PENDING_EVENTS: usize = 4096;

impl LocalSfu {
    /// Binds the socket; candidates carry `public` at the bound port.
    pub fn bind(bind: SocketAddr, public: &[IpAddr]) -> std::io::Result<Arc<Self>> {
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        let bound = socket.local_addr()?;
        let candidates = super::candidate_addrs(public, bound.port());
        // With an unspecified bind address the datagram's real destination is unknown; the
        // SFU matches it to a candidate by itself.
        let local = if bound.ip().is_unspecified() {
            candidates.first().copied().unwrap_or(bound)
        } else {
            bound
        };
        let mut config = SfuConfig::new(local);
        config.public_addrs = candidates;
        config.bandwidth_estimation = true;
        tracing::info!(udp = %bound, candidates = ?config.public_addrs, "embedded SFU ready");
        Ok(Arc::new(Self {
            sfu: Mutex::new(Sfu::new(config, Instant::now())),
            socket,
            wake: Notify::new(),
            events: Mutex::new(Vec::new()),
        }))
    }

    /// The socket's address.
    pub fn udp_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn lock(&self) -> MutexGuard<'_, Sfu> {
        // Every call into a session's `Rtc` is guarded inside the SFU; a poisoned lock can only
        // come from a bug outside those guards, and the state is still usable.
        self.sfu.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the SFU (an API call), then sends what it produced and wakes the receive
    /// loop, whose next timeout may have moved.
    pub fn with<R>(&self, f: impl FnOnce(&mut Sfu, Instant) -> R) -> R {
        let result = self.step(f);
        self.wake.notify_one();
        result
    }

    /// Runs `f` on the SFU and sends what it produced.
    fn step<R>(&self, f: impl FnOnce(&mut Sfu, Instant) -> R) -> R {
        let (result, transmits) = {
            let mut sfu = self.lock();
            let result = f(&mut sfu, Instant::now());
            (result, self.drain(&mut sfu))
        };
        self.send(transmits);
        result
    }

    fn drain(&self, sfu: &mut Sfu) -> Vec<callroom_sfu::Transmit> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(event) = sfu.poll_event() {
            if events.len() >= MAX_PENDING_EVENTS {
                events.remove(0);
            }
            events.push(event);
        }
        std::iter::from_fn(|| sfu.poll_transmit()).collect()
    }

    fn send(&self, transmits: Vec<callroom_sfu::Transmit>) {
        for t in transmits {
            // UDP: a full send buffer drops the datagram, as a congested link would.
            if let Err(err) = self.socket.send_to(&t.contents, t.destination) {
                if err.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!(%err, to = %t.destination, "SFU send failed");
                }
            }
        }
    }

    /// Events since the last call.
    pub fn take_events(&self) -> Vec<SfuEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Feeds datagrams and timeouts to the SFU until the task is dropped; `on_events` gets
    /// the SFU's events.
    pub async fn run(self: Arc<Self>, on_events: impl Fn(Vec<SfuEvent>)) {
        let socket = match self
            .socket
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
        {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!(%err, "the SFU's socket cannot join the runtime");
                return;
            }
        };
        let mut buf = vec![0u8; 2048];
        loop {
            let deadline = tokio::time::Instant::from_std(self.lock().poll_timeout());
            tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => {
                        let destination = self.udp_addr().unwrap_or(source);
                        self.step(|sfu, now| sfu.handle_receive(now, source, destination, &buf[..n]));
                    }
                    // ICMP errors from a client that went away surface here; keep serving.
                    Err(err) => tracing::debug!(%err, "SFU receive failed"),
                },
                () = tokio::time::sleep_until(deadline) => {
                    self.step(|sfu, now| sfu.handle_timeout(now));
                }
                () = self.wake.notified() => {}
            }
            let events = self.take_events();
            if !events.is_empty() {
                on_events(events);
            }
        }
    }
}
