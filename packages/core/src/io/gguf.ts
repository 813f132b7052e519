/**
 * GGUF version 3, the file format of llama.cpp (and Ollama, LM Studio...), written and read back.
 *
 * Layout, as ggml's docs/gguf.md specifies it (all little-endian):
 *   u32 magic "GGUF" | u32 version 3 | u64 tensor count | u64 metadata count
 *   metadata: key (string) | u32 value type | value          (string = u64 byte length + UTF-8 bytes)
 *   tensor infos: name (string) | u32 n_dims | u64 ne[n_dims] (ne[0] the contiguous dimension, i.e. the reverse
 *                 of a row-major shape) | u32 ggml type | u64 offset into the data section
 *   padding to general.alignment (32 unless the metadata says otherwise), then the data section, every tensor
 *   starting at a multiple of the alignment.
 * Only the tensor types we write are read (F32, F16, BF16); a quantised file is refused by name.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write';

/** Metadata value types (gguf_type). */
export const GGUF_TYPE = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
type ScalarType = Exclude<keyof typeof GGUF_TYPE, 'ARRAY'>;

/** Tensor types (ggml_type) we write and read. */
export const GGML_TYPE = { F32: 0, F16: 1, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;
const GGML_TYPE_BYTES: Record<GgmlTypeName, number> = { F32: 4, F16: 2, BF16: 2 };

/** A typed metadata value: the type is explicit because GGUF readers check it (u32 ids, f32 epsilons...). */
export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | { type: 'ARRAY'; itemType: ScalarType; value: ArrayLike<number> | readonly string[] | readonly boolean[] };

export const gguf = {
  u32: (v: number): GgufValue => ({ type: 'U32', value: v }),
  i32: (v: number): GgufValue => ({ type: 'I32', value: v }),
  f32: (v: number): GgufValue => ({ type: 'F32', value: v }),
  bool: (v: boolean): GgufValue => ({ type: 'BOOL', value: v }),
  str: (v: string): GgufValue => ({ type: 'STRING', value: v }),
  strings: (v: readonly string[]): GgufValue => ({ type: 'ARRAY', itemType: 'STRING', value: v }),
  f32s: (v: ArrayLike<number>): GgufValue => ({ type: 'ARRAY', itemType: 'F32', value: v }),
  i32s: (v: ArrayLike<number>): GgufValue => ({ type: 'ARRAY', itemType: 'I32', value: v }),
};

/** One tensor to write: a row-major shape and its bytes already in `type` (see toGgmlBytes). */
export interface GgufTensor {
  name: string;
  /** row-major shape (written reversed, as ne[]) */
  shape: readonly number[];
  type: GgmlTypeName;
  data: Uint8Array;
}

export const GGUF_ALIGNMENT = 32;

class ByteWriter {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  private pos = 0;
  length = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) {
      this.buf = new Uint8Array(n);
      this.dv = new DataView(this.buf.buffer);
    }
  }
  private flush(): void {
    if (this.pos) this.chunks.push(this.buf.slice(0, this.pos));
    this.pos = 0;
  }
  u8(v: number): void { this.room(1); this.dv.setUint8(this.pos, v); this.pos += 1; this.length += 1; }
  i8(v: number): void { this.room(1); this.dv.setInt8(this.pos, v); this.pos += 1; this.length += 1; }
  u16(v: number): void { this.room(2); this.dv.setUint16(this.pos, v, true); this.pos += 2; this.length += 2; }
  i16(v: number): void { this.room(2); this.dv.setInt16(this.pos, v, true); this.pos += 2; this.length += 2; }
  u32(v: number): void { this.room(4); this.dv.setUint32(this.pos, v, true); this.pos += 4; this.length += 4; }
  i32(v: number): void { this.room(4); this.dv.setInt32(this.pos, v, true); this.pos += 4; this.length += 4; }
  f32(v: number): void { this.room(4); this.dv.setFloat32(this.pos, v, true); this.pos += 4; this.length += 4; }
  f64(v: number): void { this.room(8); this.dv.setFloat64(this.pos, v, true); this.pos += 8; this.length += 8; }
  u64(v: number | bigint): void { this.room(8); this.dv.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; this.length += 8; }
  i64(v: number | bigint): void { this.room(8); this.dv.setBigInt64(this.pos, BigInt(v), true); this.pos += 8; this.length += 8; }
  bytes(b: Uint8Array): void {
    this.flush();
    this.chunks.push(b);
    this.length += b.length;
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.length += b.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    for (let i = 0; i < n; i++) this.u8(0);
  }
  done(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }
}

function writeScalar(w: ByteWriter, type: ScalarType, v: unknown, key: string): void {
  const num = () => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`GGUF metadata ${key}: ${type} needs a finite number, got ${String(v)}`);
    if (type !== 'F32' && type !== 'F64' && !Number.isInteger(v)) throw new TypeError(`GGUF metadata ${key}: ${type} needs an integer, got ${v}`);
    return v;
  };
  switch (type) {
    case 'U8': return w.u8(num());
    case 'I8': return w.i8(num());
    case 'U16': return w.u16(num());
    case 'I16': return w.i16(num());
    case 'U32': return w.u32(num());
    case 'I32': return w.i32(num());
    case 'F32': return w.f32(num());
    case 'F64': return w.f64(num());
    case 'U64': return w.u64(typeof v === 'bigint' ? v : num());
    case 'I64': return w.i64(typeof v === 'bigint' ? v : num());
    case 'BOOL': return w.u8(v ? 1 : 0);
    case 'STRING':
      if (typeof v !== 'string') throw new TypeError(`GGUF metadata ${key}: STRING needs a string, got ${typeof v}`);
      return w.str(v);
  }
}

/** The file's bytes as chunks: header, metadata, tensor infos, aligned data. */
export function serializeGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): Uint8Array[] {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: tensor ${t.name} twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n * GGML_TYPE_BYTES[t.type]) throw new Error(`GGUF: tensor ${t.name} of shape [${t.shape}] ${t.type} needs ${n * GGML_TYPE_BYTES[t.type]} bytes, got ${t.data.length}`);
  }
  const w = new ByteWriter();
  w.u32(0x46554747); // "GGUF"
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, v] of metadata) {
    w.str(key);
    w.u32(GGUF_TYPE[v.type]);
    if (v.type === 'ARRAY') {
      w.u32(GGUF_TYPE[v.itemType]);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) writeScalar(w, v.itemType, (v.value as ArrayLike<unknown>)[i], key);
    } else writeScalar(w, v.type, v.value, key);
  }
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]);
    w.u32(GGML_TYPE[t.type]);
    w.u64(offset);
    offset += Math.ceil(t.data.length / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  w.pad(GGUF_ALIGNMENT);
  for (const t of tensors) {
    w.bytes(t.data);
    w.pad(GGUF_ALIGNMENT);
  }
  return w.done();
}

/** Writes a GGUF file atomically (a temporary file, renamed): an interrupted export leaves no partial file. */
export function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): void {
  writeFileAtomic(path, serializeGguf(metadata, tensors));
}

// ---- reading (the header, and tensors of the types above), for checks and tests ----

export interface GgufTensorInfo {
  name: string;
  /** row-major shape (ne reversed) */
  shape: number[];
  type: GgmlTypeName;
  /** absolute byte offset in the file */
  offset: number;
  bytes: number;
}

export interface GgufHeader {
  version: number;
  /** values as JavaScript values: numbers (u64/i64 as bigint), booleans, strings, arrays of them */
  metadata: Map<string, unknown>;
  tensors: GgufTensorInfo[];
}

/** Parses a GGUF file's header and tensor infos from its bytes (the whole file, or at least its header). */
export function parseGgufHeader(bytes: Uint8Array, source = '<buffer>'): GgufHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const need = (n: number, what: string) => {
    if (p + n > bytes.length) throw new Error(`${source}: GGUF ends inside ${what} (byte ${p} of ${bytes.length})`);
  };
  const u32 = (what: string) => (need(4, what), (p += 4), dv.getUint32(p - 4, true));
  const u64 = (what: string) => {
    need(8, what);
    p += 8;
    const v = dv.getBigUint64(p - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${source}: GGUF ${what} ${v} is out of range`);
    return Number(v);
  };
  const str = (what: string) => {
    const n = u64(`${what} length`);
    need(n, what);
    p += n;
    return Buffer.from(bytes.buffer, bytes.byteOffset + p - n, n).toString('utf8');
  };
  const typeName = (t: number, what: string): ScalarType | 'ARRAY' => {
    const k = (Object.keys(GGUF_TYPE) as Array<keyof typeof GGUF_TYPE>).find((x) => GGUF_TYPE[x] === t);
    if (!k) throw new Error(`${source}: GGUF ${what} has value type ${t}, which is not a GGUF type`);
    return k;
  };
  const scalar = (t: ScalarType, what: string): unknown => {
    const size = { U8: 1, I8: 1, U16: 2, I16: 2, U32: 4, I32: 4, F32: 4, BOOL: 1, STRING: 0, U64: 8, I64: 8, F64: 8 }[t];
    if (t === 'STRING') return str(what);
    need(size, what);
    p += size;
    const at = p - size;
    switch (t) {
      case 'U8': return dv.getUint8(at);
      case 'I8': return dv.getInt8(at);
      case 'U16': return dv.getUint16(at, true);
      case 'I16': return dv.getInt16(at, true);
      case 'U32': return dv.getUint32(at, true);
      case 'I32': return dv.getInt32(at, true);
      case 'F32': return dv.getFloat32(at, true);
      case 'F64': return dv.getFloat64(at, true);
      case 'U64': return dv.getBigUint64(at, true);
      case 'I64': return dv.getBigInt64(at, true);
      case 'BOOL': return dv.getUint8(at) !== 0;
    }
  };
  if (u32('magic') !== 0x46554747) throw new Error(`${source}: not a GGUF file (no "GGUF" magic)`);
  const version = u32('version');
  if (version !== 3) throw new Error(`${source}: GGUF version ${version}; version 3 is read`);
  const nTensors = u64('tensor count');
  const nKv = u64('metadata count');
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const key = str(`metadata key ${i}`);
    const t = typeName(u32(key), key);
    if (t === 'ARRAY') {
      const it = typeName(u32(key), `${key} items`);
      if (it === 'ARRAY') throw new Error(`${source}: GGUF ${key}: arrays of arrays are not read`);
      const n = u64(`${key} count`);
      const arr: unknown[] = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = scalar(it, key);
      metadata.set(key, arr);
    } else metadata.set(key, scalar(t, key));
  }
  const alignment = (metadata.get('general.alignment') as number | undefined) ?? GGUF_ALIGNMENT;
  const infos: Array<Omit<GgufTensorInfo, 'offset'> & { rel: number }> = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str(`tensor ${i} name`);
    const nd = u32(`${name} n_dims`);
    if (nd < 1 || nd > 4) throw new Error(`${source}: GGUF tensor ${name} has ${nd} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(u64(`${name} ne[${d}]`));
    const t = u32(`${name} type`);
    const type = (Object.keys(GGML_TYPE) as GgmlTypeName[]).find((k) => GGML_TYPE[k] === t);
    if (!type) throw new Error(`${source}: GGUF tensor ${name} has ggml type ${t}; F32 (0), F16 (1) and BF16 (30) are read (quantised types are not)`);
    const shape = ne.reverse();
    infos.push({ name, shape, type, rel: u64(`${name} offset`), bytes: shape.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[type] });
  }
  const dataStart = Math.ceil(p / alignment) * alignment;
  return { version, metadata, tensors: infos.map(({ rel, ...t }) => ({ ...t, offset: dataStart + rel })) };
}

/** Reads a GGUF file's header (without reading its tensors' data into memory). */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openSync(path, 'r');
  try {
    // grow the window until the header parses (vocabularies make headers of several MB)
    for (let size = 1 << 20; ; size *= 4) {
      const buf = new Uint8Array(size);
      const n = readSync(fd, buf, 0, size, 0);
      try {
        return parseGgufHeader(buf.subarray(0, n), path);
      } catch (e) {
        if (n < size || !/GGUF ends inside/.test((e as Error).message)) throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}
