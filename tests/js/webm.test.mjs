// The WebM duration fix on files built the way Chromium's MediaRecorder writes them.
import { test } from "node:test";
import assert from "node:assert/strict";

import { setWebmDuration, webmDuration } from "../../pkg-template/webm.js";

const bytes = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));
/** An element with a 1-byte size. */
const el = (id, ...data) => {
  const body = data.flat();
  return [...id, 0x80 | body.length, ...body];
};
const UNKNOWN = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const header = el([0x1a, 0x45, 0xdf, 0xa3], el([0x42, 0x82], [..."webm"].map((c) => c.charCodeAt(0))));
const info = (...children) => el([0x15, 0x49, 0xa9, 0x66], ...children);
const scale = (ns) => el([0x2a, 0xd7, 0xb1], [(ns >> 16) & 0xff, (ns >> 8) & 0xff, ns & 0xff]);
const app = el([0x4d, 0x80], [..."Chrome"].map((c) => c.charCodeAt(0)));
const tracks = el([0x16, 0x54, 0xae, 0x6b], el([0xae], el([0xd7], [1])));
// A cluster of unknown size, as a live muxer writes it: nothing after Info may move it.
const cluster = [0x1f, 0x43, 0xb6, 0x75, ...UNKNOWN, ...el([0xe7], [0]), ...el([0xa3], [0x81, 0, 0, 0x80, 0xaa, 0xbb])];
const chromeLike = (...infoChildren) => bytes(header, [0x18, 0x53, 0x80, 0x67], UNKNOWN, info(...infoChildren), tracks, cluster);

test("a live WebM without a duration gets one, and everything after Info is kept byte for byte", () => {
  const file = chromeLike(scale(1_000_000), app);
  assert.equal(webmDuration(file), null);
  const fixed = setWebmDuration(file, 4_321);
  assert.equal(webmDuration(fixed), 4_321);
  const tail = bytes(tracks, cluster);
  assert.deepEqual(fixed.subarray(fixed.length - tail.length), tail);
  assert.equal(fixed.length, file.length + 11 /* Duration */ + 7 /* Info's size now takes 8 bytes */);
});

test("the duration is written in the file's TimecodeScale", () => {
  const fixed = setWebmDuration(chromeLike(scale(100_000), app), 2_000);
  assert.equal(webmDuration(fixed), 2_000);
  // 2 s at 100 µs a tick: 20 000 ticks, as the float in the file.
  const at = fixed.findIndex((b, i) => b === 0x44 && fixed[i + 1] === 0x89);
  assert.equal(new DataView(fixed.buffer, at + 3, 8).getFloat64(0), 20_000);
});

test("a duration already there is overwritten in place", () => {
  const file = chromeLike(scale(1_000_000), el([0x44, 0x89], [0x40, 0x8f, 0x40, 0, 0, 0, 0, 0]) /* 1000.0 */);
  assert.equal(webmDuration(file), 1_000);
  const fixed = setWebmDuration(file, 3_000);
  assert.equal(fixed.length, file.length);
  assert.equal(webmDuration(fixed), 3_000);
  assert.equal(webmDuration(file), 1_000, "the input is not changed");
});

test("a Segment of known size grows with its Info", () => {
  const body = bytes(info(scale(1_000_000), app), tracks, el([0x1f, 0x43, 0xb6, 0x75], el([0xe7], [0])));
  const file = bytes(header, [0x18, 0x53, 0x80, 0x67, 0x80 | body.length], body);
  const fixed = setWebmDuration(file, 500);
  assert.equal(webmDuration(fixed), 500);
  const segmentAt = header.length;
  const size = new DataView(fixed.buffer, segmentAt + 4, 8).getBigUint64(0) & 0x00ffffffffffffffn;
  assert.equal(Number(size), fixed.length - segmentAt - 12);
});

test("the start of a file is enough: the rest can follow unread", () => {
  const file = chromeLike(scale(1_000_000), app);
  const head = file.subarray(0, file.length - 4); // cut inside the first cluster
  const fixed = setWebmDuration(head, 1_234);
  const whole = new Uint8Array([...fixed, ...file.subarray(file.length - 4)]);
  assert.equal(webmDuration(whole), 1_234);
  assert.deepEqual(whole, setWebmDuration(file, 1_234));
});

test("files it cannot fix safely come back untouched", () => {
  const seekHead = el([0x11, 0x4d, 0x9b, 0x74], el([0x4d, 0xbb], el([0x53, 0xab], [0x15, 0x49, 0xa9, 0x66])));
  const withSeekHead = bytes(header, [0x18, 0x53, 0x80, 0x67], UNKNOWN, seekHead, info(scale(1_000_000)), tracks);
  const seekHeadAfterInfo = bytes(header, [0x18, 0x53, 0x80, 0x67], UNKNOWN, info(scale(1_000_000)), seekHead, tracks, cluster);
  const whole = chromeLike(scale(1_000_000), app);
  const infoAt = header.length + 4 + UNKNOWN.length;
  for (const file of [
    withSeekHead,
    seekHeadAfterInfo,
    whole.subarray(0, infoAt + 5 + 3), // cut inside Info's data
    bytes([0x00, 0x01, 0x02]),
    new Uint8Array(0),
    bytes(header), // no Segment
    chromeLike(scale(1_000_000), app).subarray(0, header.length + 14), // cut inside Info
  ]) {
    assert.equal(setWebmDuration(file, 1_000), file);
  }
  const file = chromeLike(app);
  for (const bad of [NaN, -1, Infinity]) assert.equal(setWebmDuration(file, bad), file);
});
