//! Telling the app that something changed: change callbacks (for `subscribe`) and event
//! streams (for `events()` / `on()`). Called only while no room state is borrowed, so a
//! listener may call back into the room.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_core::Stream;

use super::RoomEvent;

type Callback = Rc<dyn Fn()>;

#[derive(Default)]
pub(crate) struct Notifier {
    version: Cell<u64>,
    next_id: Cell<u64>,
    callbacks: RefCell<Vec<(u64, Callback)>>,
    streams: RefCell<Vec<UnboundedSender<RoomEvent>>>,
}

impl Notifier {
    /// The snapshot version: bumped on every change.
    pub(crate) fn version(&self) -> u64 {
        self.version.get()
    }

    /// Records a change and delivers `events`; then calls every change callback once.
    pub(crate) fn publish(&self, events: Vec<RoomEvent>, changed: bool) {
        if !changed && events.is_empty() {
            return;
        }
        self.version.set(self.version.get() + 1);
        if !events.is_empty() {
            self.streams
                .borrow_mut()
                .retain(|tx| events.iter().all(|e| tx.unbounded_send(e.clone()).is_ok()));
        }
        // Cloned first: a callback may subscribe or unsubscribe.
        let callbacks: Vec<Callback> = self
            .callbacks
            .borrow()
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for callback in callbacks {
            callback();
        }
    }

    pub(crate) fn add_callback(&self, callback: Callback) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.callbacks.borrow_mut().push((id, callback));
        id
    }

    pub(crate) fn remove_callback(&self, id: u64) {
        self.callbacks.borrow_mut().retain(|(i, _)| *i != id);
    }

    pub(crate) fn stream(&self) -> Events {
        let (tx, rx) = unbounded();
        self.streams.borrow_mut().push(tx);
        Events { rx }
    }

    /// Ends every event stream (after leave).
    pub(crate) fn close(&self) {
        self.streams.borrow_mut().clear();
    }
}

/// A stream of [`RoomEvent`]s; ends when the room is left.
pub struct Events {
    rx: UnboundedReceiver<RoomEvent>,
}

impl Stream for Events {
    type Item = RoomEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// Keeps a change callback registered; dropping it unregisters.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    pub(crate) notifier: std::rc::Weak<super::Shared>,
    pub(crate) id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.notifier.upgrade() {
            shared.notify.remove_callback(self.id);
        }
    }
}
