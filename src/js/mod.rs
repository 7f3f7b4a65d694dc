//! The JavaScript face: a `Room` class with an async static `join`, immutable snapshots with
//! `subscribe` (made for `useSyncExternalStore`), typed events with `on`, and errors that are
//! real `Error`s carrying a stable `code`. TypeScript types are hand-written in `types.rs`.

mod convert;
mod types;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures_core::Stream;
use js_sys::{Function, Map, Promise, Reflect, Set};
use wasm_bindgen::prelude::*;
use web_sys::MediaStream;

use crate::room::{Room, RoomEvent, Subscription};
use crate::web::js::spawn;
use crate::Error;
use convert::{error_to_js, event_to_js, options_from_js, snapshot_to_js};

/// A joined room, for JavaScript.
#[wasm_bindgen(js_name = Room)]
pub struct JsRoom {
    room: Rc<Room>,
    cache: RefCell<Option<(u64, JsValue)>>,
    /// Snapshot listeners (a JS `Set` of functions).
    subscribers: Set,
    /// Event name -> `Set` of handlers.
    handlers: Map,
    _change: Subscription,
}

type BoxedFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// Every async method goes through this one (boxed) future-to-promise path: one copy of the
/// promise glue in the bundle instead of one per method.
fn promise(future: BoxedFuture) -> Promise {
    wasm_bindgen_futures::future_to_promise(future)
}

/// Runs `action` on the room and maps its error to a `CallroomError`.
fn room_promise<F, Fut>(room: &Rc<Room>, action: F) -> Promise
where
    F: FnOnce(Rc<Room>) -> Fut + 'static,
    Fut: Future<Output = Result<JsValue, Error>> + 'static,
{
    let room = room.clone();
    promise(Box::pin(async move {
        action(room).await.map_err(|e| error_to_js(&e))
    }))
}

fn call_all(set: &Set, arg: &JsValue) {
    set.for_each(&mut |listener, _, _| {
        if let Some(f) = listener.dyn_ref::<Function>() {
            // A throwing listener must not stop the others (or us).
            let _ = f.call1(&JsValue::NULL, arg);
        }
    });
}

/// A function that removes `item` from `set` when called: the unsubscribe handle, with no
/// Rust closure to leak.
fn remover(set: &Set, item: &JsValue) -> Function {
    let delete = Reflect::get(set, &"delete".into()).unwrap_or(JsValue::UNDEFINED);
    let bind = Reflect::get(&delete, &"bind".into()).unwrap_or(JsValue::UNDEFINED);
    let args = js_sys::Array::new();
    args.push(set);
    args.push(item);
    bind.dyn_ref::<Function>()
        .and_then(|bind| Reflect::apply(bind, &delete, &args).ok())
        .and_then(|f| f.dyn_into::<Function>().ok())
        .unwrap_or_else(|| Function::new_no_args(""))
}

impl JsRoom {
    fn wrap(room: Room) -> Self {
        let subscribers = Set::new(&JsValue::UNDEFINED);
        let handlers = Map::new();
        let notify = subscribers.clone();
        let change = room.on_change(move || call_all(&notify, &JsValue::UNDEFINED));
        spawn(Box::pin(dispatch(room.events(), handlers.clone())));
        JsRoom {
            room: Rc::new(room),
            cache: RefCell::new(None),
            subscribers,
            handlers,
            _change: change,
        }
    }
}

#[wasm_bindgen(js_class = Room)]
impl JsRoom {
    /// Captures media (unless `media: false`), joins the room and connects to everyone in it.
    /// Rejects with an `Error` whose `code` says why (`room_full`, `network_error`, ...).
    #[wasm_bindgen(js_name = join, unchecked_return_type = "Promise<Room>")]
    pub fn join(#[wasm_bindgen(unchecked_param_type = "JoinOptions")] options: JsValue) -> Promise {
        promise(Box::pin(async move {
            let options = options_from_js(&options).map_err(|e| error_to_js(&e))?;
            let room = Room::join(options).await.map_err(|e| error_to_js(&e))?;
            Ok(JsRoom::wrap(room).into())
        }))
    }

    /// The current state: a frozen object that stays the same object until something changes.
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
    pub fn snapshot(&self) -> JsValue {
        let version = self.room.version();
        if let Some((cached, value)) = &*self.cache.borrow() {
            if *cached == version {
                return value.clone();
            }
        }
        let value = snapshot_to_js(&self.room.snapshot());
        *self.cache.borrow_mut() = Some((version, value.clone()));
        value
    }

    /// Calls `listener` after every change; returns a function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: Function,
    ) -> Function {
        self.subscribers.add(&listener);
        remover(&self.subscribers, &listener)
    }

    /// Calls `handler` for each event of `name`; returns a function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RoomEventName")] name: String,
        #[wasm_bindgen(unchecked_param_type = "(event: RoomEvents[RoomEventName]) => void")]
        handler: Function,
    ) -> Function {
        let key = JsValue::from_str(&name);
        let set = match self.handlers.get(&key).dyn_into::<Set>() {
            Ok(set) => set,
            Err(_) => {
                let set = Set::new(&JsValue::UNDEFINED);
                self.handlers.set(&key, &set);
                set
            }
        };
        set.add(&handler);
        remover(&set, &handler)
    }

    /// Publishes `stream`, or captures with the join options' `media`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn publish(&self, stream: Option<MediaStream>) -> Promise {
        room_promise(&self.room, |room| async move {
            room.publish(stream).await.map(|()| JsValue::UNDEFINED)
        })
    }

    /// Stops publishing.
    pub fn unpublish(&self) {
        self.room.unpublish();
    }

    /// Leaves: stops tracks callroom opened, closes connections, tells the server.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self) -> Promise {
        room_promise(&self.room, |room| async move {
            room.leave().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Forces a full rejoin.
    pub fn reconnect(&self) -> Result<(), JsValue> {
        self.room.reconnect().map_err(|e| error_to_js(&e))
    }

    /// Mutes or unmutes the microphone.
    #[wasm_bindgen(js_name = setMicEnabled)]
    pub fn set_mic_enabled(&self, enabled: bool) {
        self.room.set_mic_enabled(enabled);
    }

    /// Turns the camera off (releasing it) or on again.
    #[wasm_bindgen(js_name = setCameraEnabled, unchecked_return_type = "Promise<void>")]
    pub fn set_camera_enabled(&self, enabled: bool) -> Promise {
        room_promise(&self.room, move |room| async move {
            room.set_camera_enabled(enabled)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Switches to camera `deviceId`, or to the next camera.
    #[wasm_bindgen(js_name = switchCamera, unchecked_return_type = "Promise<void>")]
    pub fn switch_camera(&self, device_id: Option<String>) -> Promise {
        room_promise(&self.room, |room| async move {
            room.switch_camera(device_id)
                .await
                .map(|()| JsValue::UNDEFINED)
        })
    }

    /// Shares a screen in place of the camera.
    #[wasm_bindgen(js_name = startScreenShare, unchecked_return_type = "Promise<void>")]
    pub fn start_screen_share(&self) -> Promise {
        room_promise(&self.room, |room| async move {
            room.start_screen_share().await.map(|()| JsValue::UNDEFINED)
        })
    }

    /// Stops sharing the screen.
    #[wasm_bindgen(js_name = stopScreenShare, unchecked_return_type = "Promise<void>")]
    pub fn stop_screen_share(&self) -> Promise {
        room_promise(&self.room, |room| async move {
            room.stop_screen_share().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// How large `peerId`'s video is shown, in device pixels (0 when hidden). In an SFU room
    /// the simulcast layer pulled of their camera follows.
    #[wasm_bindgen(js_name = setTileSize)]
    pub fn set_tile_size(
        &self,
        #[wasm_bindgen(js_name = peerId)] peer_id: &str,
        width: u32,
        height: u32,
    ) {
        self.room.set_tile_size(peer_id, width, height);
    }

    /// Which layer of `peerId`'s camera to receive in an SFU room: `"auto"` (the default),
    /// `"high"`, `"medium"`, `"low"` or `"off"`.
    #[wasm_bindgen(js_name = setVideoQuality)]
    pub fn set_video_quality(
        &self,
        #[wasm_bindgen(js_name = peerId)] peer_id: &str,
        #[wasm_bindgen(unchecked_param_type = "VideoQuality")] quality: &str,
    ) -> Result<(), JsValue> {
        let hint = crate::core::layers::Hint::parse(quality).ok_or_else(|| {
            convert::error_to_js(&Error::InvalidArgument(
                "quality must be \"auto\", \"high\", \"medium\", \"low\" or \"off\"".into(),
            ))
        })?;
        self.room.set_video_quality(peer_id, hint);
        Ok(())
    }

    /// For the package's recorder: what the snapshot's `recording` shows (nothing: `null`).
    #[wasm_bindgen(js_name = _setRecording, skip_typescript)]
    pub fn set_recording(&self, duration_ms: Option<f64>, bytes: Option<f64>) {
        self.room
            .set_recording(duration_ms.map(|duration_ms| crate::room::RecordingStatus {
                duration_ms,
                bytes: bytes.unwrap_or(0.0),
            }));
    }

    /// Lists cameras, microphones and speakers.
    #[wasm_bindgen(js_name = listDevices, unchecked_return_type = "Promise<Device[]>")]
    pub fn list_devices(&self) -> Promise {
        room_promise(&self.room, |room| async move {
            room.list_devices()
                .await
                .map(|d| convert::devices_to_js(&d))
        })
    }
}

async fn dispatch(mut events: impl Stream<Item = RoomEvent> + Unpin, handlers: Map) {
    while let Some(event) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut events).poll_next(cx)).await
    {
        let (name, value) = event_to_js(&event);
        if let Ok(set) = handlers.get(&JsValue::from_str(name)).dyn_into::<Set>() {
            call_all(&set, &value);
        }
    }
}

/// The library's version.
#[wasm_bindgen(js_name = version)]
pub fn version() -> String {
    crate::VERSION.to_owned()
}
