// Gives a WebM file from MediaRecorder its duration. Chromium writes a live stream: no Duration
// in the Segment's Info, so players show an endless file and cannot seek. This walks the EBML
// header, the Segment and its Info, and writes a Duration there; anything it does not expect
// leaves the file untouched.

const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const SEEK_HEAD = 0x114d9b74;
const INFO = 0x1549a966;
const TIMECODE_SCALE = 0x2ad7b1;
const DURATION = 0x4489;

/** Reads an element ID (its length marker kept) at `pos`: `[id, length]` or null. */
function readId(bytes, pos) {
  const first = bytes[pos];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23; // 1 for 1xxxxxxx … 4 for 0001xxxx
  if (length > 4 || pos + length > bytes.length) return null;
  let id = 0;
  for (let i = 0; i < length; i++) id = id * 256 + bytes[pos + i];
  return [id, length];
}

/** Reads an element size at `pos`: `[size, length]`, size `-1` when unknown, or null. */
function readSize(bytes, pos) {
  const first = bytes[pos];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (pos + length > bytes.length) return null;
  let size = first & (0xff >> length);
  let unknown = size === 0xff >> length;
  for (let i = 1; i < length; i++) {
    size = size * 256 + bytes[pos + i];
    unknown &&= bytes[pos + i] === 0xff;
  }
  return [unknown ? -1 : size, length];
}

/** Reads the element at `pos`: its id, where its data starts, and its size (-1 unknown). */
function readElement(bytes, pos) {
  const id = readId(bytes, pos);
  if (!id) return null;
  const size = readSize(bytes, pos + id[1]);
  if (!size) return null;
  return { id: id[0], start: pos, dataStart: pos + id[1] + size[1], size: size[0] };
}

/** An 8-byte EBML size. */
function size8(size) {
  const out = new Uint8Array(8);
  out[0] = 0x01;
  let rest = size;
  for (let i = 7; i >= 1; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

function idBytes(id) {
  const out = [];
  for (let rest = id; rest > 0; rest = Math.floor(rest / 256)) out.unshift(rest % 256);
  return out;
}

function float64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, value);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const CLUSTER = 0x1f43b675;

/**
 * Finds the Segment's Info and reads it: `{ segment, info, scale, duration }` (`duration` the
 * Duration element, if any), or null. Null as well when a SeekHead comes before the first
 * Cluster: it holds byte positions that growing Info would move.
 */
function readInfo(bytes) {
  const header = readElement(bytes, 0);
  if (!header || header.id !== EBML || header.size < 0) return null;
  const segment = readElement(bytes, header.dataStart + header.size);
  if (!segment || segment.id !== SEGMENT) return null;
  const end = segment.size < 0 ? bytes.length : Math.min(bytes.length, segment.dataStart + segment.size);
  let info = null;
  for (let pos = segment.dataStart; pos < end; ) {
    const child = readElement(bytes, pos);
    if (!child || child.id === SEEK_HEAD) return null;
    if (child.id === CLUSTER) break;
    if (child.size < 0) return null;
    if (child.id === INFO) {
      if (info || child.dataStart + child.size > bytes.length) return null;
      info = child;
    }
    pos = child.dataStart + child.size;
  }
  if (!info) return null;
  let scale = 1_000_000;
  let duration = null;
  const infoEnd = info.dataStart + info.size;
  for (let pos = info.dataStart; pos < infoEnd; ) {
    const child = readElement(bytes, pos);
    if (!child || child.size < 0 || child.dataStart + child.size > infoEnd) return null;
    if (child.id === TIMECODE_SCALE && child.size > 0 && child.size <= 6) {
      scale = 0;
      for (let i = 0; i < child.size; i++) scale = scale * 256 + bytes[child.dataStart + i];
      scale ||= 1_000_000;
    }
    if (child.id === DURATION && (child.size === 8 || child.size === 4)) duration = child;
    pos = child.dataStart + child.size;
  }
  return { segment, info, scale, duration };
}

/**
 * `bytes` (a WebM file, or its start up to past the Segment's Info) with its duration set to
 * `durationMs`, as a new array; `bytes` itself when it is not a WebM this can fix.
 */
export function setWebmDuration(bytes, durationMs) {
  if (!(durationMs >= 0) || !Number.isFinite(durationMs)) return bytes;
  const found = readInfo(bytes);
  if (!found) return bytes;
  const { segment, info, scale, duration } = found;
  const ticks = (durationMs * 1e6) / scale;
  if (duration) {
    const out = bytes.slice();
    const view = new DataView(out.buffer, duration.dataStart, duration.size);
    if (duration.size === 8) view.setFloat64(0, ticks);
    else view.setFloat32(0, ticks);
    return out;
  }
  const infoEnd = info.dataStart + info.size;
  const element = concat([Uint8Array.from(idBytes(DURATION)), Uint8Array.of(0x88), float64(ticks)]);
  const infoHeader = concat([Uint8Array.from(idBytes(INFO)), size8(info.size + element.length)]);
  const grown = infoHeader.length + info.size + element.length - (infoEnd - info.start);
  const segmentHeader =
    segment.size < 0
      ? bytes.subarray(segment.start, segment.dataStart)
      : concat([Uint8Array.from(idBytes(SEGMENT)), size8(segment.size + grown)]);
  return concat([
    bytes.subarray(0, segment.start),
    segmentHeader,
    bytes.subarray(segment.dataStart, info.start),
    infoHeader,
    bytes.subarray(info.dataStart, infoEnd),
    element,
    bytes.subarray(infoEnd),
  ]);
}

/** The Duration a WebM file states, in ms, or null (for tests and tools). */
export function webmDuration(bytes) {
  const found = readInfo(bytes);
  if (!found?.duration) return null;
  const { dataStart, size } = found.duration;
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart, size);
  return ((size === 8 ? view.getFloat64(0) : view.getFloat32(0)) * found.scale) / 1e6;
}
