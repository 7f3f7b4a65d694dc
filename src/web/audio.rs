//! Audio levels of streams, from a Web Audio analyser per audio track: the input of
//! `core::speaking`.
//!
//! Chromium feeds a remote WebRTC track into Web Audio only while a media element plays it,
//! so each remote track also gets a muted `<audio>` element of its own (measured: silence
//! without one, the real level with one). Local tracks need none.

use std::cell::Cell;
use std::rc::Rc;

use crate::web::js::spawn;
use js_sys::Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AnalyserNode, AudioContext, AudioContextState, HtmlAudioElement, MediaStream,
    MediaStreamAudioSourceNode, MediaStreamTrack,
};

/// Samples per reading: about 0.17–0.19 s, so readings every 200 ms miss little.
const WINDOW: u32 = 8192;

/// One track being measured.
struct Tap {
    key: String,
    track: MediaStreamTrack,
    source: MediaStreamAudioSourceNode,
    analyser: AnalyserNode,
    pull: Option<HtmlAudioElement>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = self.source.disconnect();
        if let Some(pull) = &self.pull {
            pull.set_src_object(None);
        }
    }
}

/// What to measure: a key (a peer id), the stream, and whether it is remote.
pub(crate) struct Source<'a> {
    pub(crate) key: &'a str,
    pub(crate) stream: &'a MediaStream,
    pub(crate) remote: bool,
}

/// The meters of one room. Dropping it disconnects every node, stops every element and
/// closes the audio context.
pub(crate) struct Meter {
    context: AudioContext,
    taps: Vec<Tap>,
    samples: Vec<f32>,
    /// A `resume()` is pending: without a user gesture it may stay so, and one is enough.
    resuming: Rc<Cell<bool>>,
}

impl Meter {
    pub(crate) fn new() -> Result<Self, JsValue> {
        Ok(Self {
            context: AudioContext::new()?,
            taps: Vec::new(),
            samples: vec![0.0; WINDOW as usize],
            resuming: Rc::default(),
        })
    }

    /// The RMS level of each source's first live audio track (sources without one are left
    /// out). Taps of sources or tracks no longer given are removed.
    pub(crate) fn measure(&mut self, sources: &[Source<'_>]) -> Vec<(String, f32)> {
        if self.context.state() == AudioContextState::Suspended && !self.resuming.get() {
            // Made before any user gesture: it runs once the page has had one.
            if let Ok(resume) = self.context.resume() {
                self.resuming.set(true);
                let resuming = self.resuming.clone();
                spawn(Box::pin(async move {
                    let _ = JsFuture::from(resume).await;
                    resuming.set(false);
                }));
            }
        }
        let live: Vec<(&Source<'_>, MediaStreamTrack)> = sources
            .iter()
            .filter_map(|s| {
                let track = s
                    .stream
                    .get_audio_tracks()
                    .iter()
                    .filter_map(|t| wasm_bindgen::JsCast::dyn_into::<MediaStreamTrack>(t).ok())
                    .find(|t| t.ready_state() == web_sys::MediaStreamTrackState::Live)?;
                Some((s, track))
            })
            .collect();
        self.taps.retain(|tap| {
            live.iter()
                .any(|(s, t)| s.key == tap.key && t.id() == tap.track.id())
        });
        let mut levels = Vec::with_capacity(live.len());
        for (source, track) in live {
            let index = match self.taps.iter().position(|t| t.key == source.key) {
                Some(i) => i,
                None => match self.tap(source, track) {
                    Ok(tap) => {
                        self.taps.push(tap);
                        self.taps.len() - 1
                    }
                    Err(_) => continue,
                },
            };
            self.taps[index]
                .analyser
                .get_float_time_domain_data(&mut self.samples);
            levels.push((source.key.to_owned(), rms(&self.samples)));
        }
        levels
    }

    fn tap(&self, source: &Source<'_>, track: MediaStreamTrack) -> Result<Tap, JsValue> {
        let only = MediaStream::new_with_tracks(&Array::of1(&track))?;
        let node = self.context.create_media_stream_source(&only)?;
        let analyser = self.context.create_analyser()?;
        analyser.set_fft_size(WINDOW);
        node.connect_with_audio_node(&analyser)?;
        let pull = if source.remote {
            let element = HtmlAudioElement::new()?;
            element.set_muted(true);
            element.set_src_object(Some(&only));
            if let Ok(play) = element.play() {
                spawn(Box::pin(async move {
                    let _ = JsFuture::from(play).await;
                }));
            }
            Some(element)
        } else {
            None
        };
        Ok(Tap {
            key: source.key.to_owned(),
            track,
            source: node,
            analyser,
            pull,
        })
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.taps.clear();
        if let Ok(close) = self.context.close() {
            spawn(Box::pin(async move {
                let _ = JsFuture::from(close).await;
            }));
        }
    }
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f32 = samples.iter().map(|s| s * s).sum();
    (sum / samples.len() as f32).sqrt()
}
