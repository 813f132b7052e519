/**
 * Safetensors read and write, with Hugging Face tensor names kept as they are.
 *
 * The format (https://github.com/huggingface/safetensors, "Format"): an unsigned 64-bit little-endian header
 * length N, then N bytes of UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?:
 * { string: string } }`, then the data section: raw little-endian, row-major tensors at [begin, end) relative to
 * the start of the data section. The spec requires the tensors to cover the data section exactly, with no holes
 * and no overlap. The header may be padded with trailing spaces.
 *
 * Files are untrusted: every number in the header is checked before it is used, and every error names the file
 * and the tensor. Reading makes zero-copy views into one buffer where the alignment allows.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic-write';
import {
  DTYPE_BYTES,
  type DType,
  type StateDict,
  type TensorData,
  type TensorEntry,
  arrayTypeFor,
  f16BitsToF32,
  f32ToF16Bits,
  isDType,
  numel,
} from './dtypes';

/** Largest header we accept (the reference implementation's limit, 100 MB): a bigger one is a corrupt file. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = endianness() === 'LE';

/** A parsed safetensors file: tensors in file order and the optional string metadata. */
export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/** Options for reading. */
export interface ReadSafetensorsOptions {
  /**
   * Copy every tensor into its own buffer instead of viewing the file buffer. Views keep the whole file alive as
   * long as any tensor is referenced; copy when keeping only a few tensors of a big file.
   */
  copy?: boolean;
}

/**
 * Reads the whole file at `path` into one buffer with positioned reads (no 2 GiB `readFileSync` limit).
 * The buffer is not taken from Node's shared pool, so its byteOffset is 0 and typed-array views are aligned.
 */
export function readFileToBuffer(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > bufferConstants.MAX_LENGTH) {
      throw new RangeError(`${path}: file of ${size} bytes is larger than the largest Buffer (${bufferConstants.MAX_LENGTH})`);
    }
    const buf = Buffer.allocUnsafeSlow(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, Math.min(size - off, 1 << 30), off);
      if (n === 0) throw new Error(`${path}: file shrank while being read (got ${off} of ${size} bytes)`);
      off += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** A safetensors file opened for reading one tensor at a time (see `openSafetensors`). */
export interface SafetensorsReader {
  readonly path: string;
  /** Tensor names, dtypes, shapes and offsets, in data order. */
  readonly entries: ReadonlyMap<string, SafetensorsHeaderEntry>;
  readonly metadata: Record<string, string>;
  /** Reads one tensor (a fresh, owned array; F16/BF16 widened to float32). Throws naming an unknown tensor. */
  read(name: string): TensorEntry;
  /** Closes the file; later reads throw. */
  close(): void;
}

/**
 * Opens a safetensors file and validates its header without reading the data, so that tensors can be read one at a
 * time (peak memory: one tensor, not the whole file). Use it for large checkpoints or to pick a few tensors.
 */
export function openSafetensors(path: string): SafetensorsReader {
  const fd = openSync(path, 'r');
  let open = true;
  try {
    const size = fstatSync(fd).size;
    const readAt = (buf: Uint8Array, pos: number) => {
      let off = 0;
      while (off < buf.byteLength) {
        const n = readSync(fd, buf, off, Math.min(buf.byteLength - off, 1 << 30), pos + off);
        if (n === 0) throw new Error(`safetensors ${path}: file shrank while being read`);
        off += n;
      }
    };
    if (size < 8) parseSafetensorsHeaderSized(new Uint8Array(0), size, path); // throws, naming the file
    const lenBuf = Buffer.alloc(8);
    readAt(lenBuf, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    // Read just the header; its offsets are validated against the real file size.
    const want = headerLen <= BigInt(MAX_SAFETENSORS_HEADER_BYTES) && 8n + headerLen <= BigInt(size) ? Number(headerLen) : 0;
    const head = Buffer.alloc(8 + want);
    readAt(head, 0);
    const { entries, metadata, dataStart } = parseSafetensorsHeaderSized(head, size, path);
    return {
      path,
      entries,
      metadata,
      read(name: string): TensorEntry {
        if (!open) throw new Error(`safetensors ${path}: reader is closed`);
        const e = entries.get(name);
        if (!e) throw new Error(`safetensors ${path}: no tensor "${name}"`);
        const bytes = Buffer.allocUnsafeSlow(e.dataOffsets[1] - e.dataOffsets[0]);
        readAt(bytes, dataStart + e.dataOffsets[0]);
        return { dtype: e.dtype, shape: [...e.shape], data: decodeTensor(bytes.buffer as ArrayBuffer, bytes.byteOffset, numel(e.shape), e.dtype, false) };
      },
      close() {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } catch (err) {
    closeSync(fd);
    open = false;
    throw err;
  }
}

/** Reads a `.safetensors` file: tensors (F16/BF16 widened to float32) and metadata. Throws naming file and tensor. */
export function readSafetensors(path: string, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  return parseSafetensors(readFileToBuffer(path), path, options);
}

/** One tensor of a safetensors header: dtype, shape and byte range. */
export interface SafetensorsHeaderEntry {
  dtype: DType;
  shape: number[];
  /** [begin, end) relative to the data section. */
  dataOffsets: [number, number];
}

/**
 * Parses and validates the header of a safetensors file held in `bytes`. `source` names the file in errors.
 * Returns the entries in data order, the metadata, and where the data section starts.
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  source = '<buffer>',
): { entries: Map<string, SafetensorsHeaderEntry>; metadata: Record<string, string>; dataStart: number } {
  return parseSafetensorsHeaderSized(bytes, bytes.byteLength, source);
}

/**
 * The header parser proper. `bytes` holds at least the length field and the header; `fileSize` is the size of the
 * whole file, against which every offset is checked (the data section need not be in `bytes`).
 */
function parseSafetensorsHeaderSized(
  bytes: Uint8Array,
  fileSize: number,
  source: string,
): { entries: Map<string, SafetensorsHeaderEntry>; metadata: Record<string, string>; dataStart: number } {
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${source}: ${msg}`);
  };
  if (fileSize < 8) fail(`file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = dv.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    fail(`header length ${headerLen64} exceeds the limit of ${MAX_SAFETENSORS_HEADER_BYTES} bytes`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen < 2) fail(`header length ${headerLen} is too small to hold a JSON object`);
  if (8 + headerLen > fileSize) {
    fail(`header length ${headerLen} runs past the end of the file (${fileSize} bytes): truncated or corrupt`);
  }
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (headerText[0] !== '{') fail('header does not start with "{"');
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Array<[string, SafetensorsHeaderEntry]> = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets } = raw as Record<string, unknown>;
    if (!isDType(dtype)) fail(`${where}: unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(data_offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = data_offsets as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) {
      fail(`${where}: data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes): truncated file?`);
    }
    let n: number;
    try {
      n = numel(shape as number[]);
    } catch {
      return fail(`${where}: shape ${JSON.stringify(shape)} has too many elements`);
    }
    const want = n * DTYPE_BYTES[dtype as DType];
    if (end - begin !== want) {
      fail(`${where}: ${end - begin} bytes in data_offsets but shape ${JSON.stringify(shape)} of ${dtype} needs ${want}`);
    }
    entries.push([name, { dtype: dtype as DType, shape: [...(shape as number[])], dataOffsets: [begin, end] }]);
  }
  // The spec: the tensors tile the data section exactly. Sorting by begin and walking finds holes and overlaps.
  const sorted = [...entries].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let cursor = 0;
  for (const [name, e] of sorted) {
    const [begin, end] = e.dataOffsets;
    if (begin < cursor) fail(`tensor "${name}": data_offsets [${begin}, ${end}] overlap the previous tensor (which ends at ${cursor})`);
    if (begin > cursor) fail(`tensor "${name}": data_offsets [${begin}, ${end}] leave a hole after byte ${cursor} of the data section`);
    cursor = end;
  }
  if (cursor !== dataLen) {
    fail(`tensors cover ${cursor} bytes but the data section holds ${dataLen}: trailing bytes or wrong offsets`);
  }
  return { entries: new Map(sorted), metadata, dataStart };
}

/**
 * Parses a safetensors file already in memory (see `readSafetensors`). F32/I32/... tensors are views into `bytes`
 * when their absolute offset is aligned to the element size (and the host is little-endian), else copies.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>', options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes, source);
  const tensors: StateDict = new Map();
  for (const [name, e] of entries) {
    const begin = bytes.byteOffset + dataStart + e.dataOffsets[0];
    const n = numel(e.shape);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: decodeTensor(bytes.buffer as ArrayBuffer, begin, n, e.dtype, options.copy === true) });
  }
  return { tensors, metadata };
}

/** Turns n elements of `dtype` at absolute byte offset `begin` of `buf` into the in-memory typed array. */
function decodeTensor(buf: ArrayBuffer, begin: number, n: number, dtype: DType, copy: boolean): TensorData {
  const size = DTYPE_BYTES[dtype];
  if (dtype === 'F16' || dtype === 'BF16') {
    // Work on the 16-bit patterns and write float32 BIT patterns, so that NaN payloads survive too.
    let src: Uint16Array;
    if (LITTLE_ENDIAN && begin % 2 === 0) src = new Uint16Array(buf, begin, n);
    else {
      src = new Uint16Array(n);
      new Uint8Array(src.buffer).set(new Uint8Array(buf, begin, n * 2));
      if (!LITTLE_ENDIAN) swapBytes(new Uint8Array(src.buffer), 2);
    }
    const bits = new Uint32Array(n);
    if (dtype === 'BF16') {
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16; // bf16 is the top half of a float32
    } else {
      const table = f16Table();
      for (let i = 0; i < n; i++) bits[i] = table[src[i]];
    }
    return new Float32Array(bits.buffer);
  }
  const Ctor = typedArrayCtor(dtype);
  if (!copy && LITTLE_ENDIAN && begin % size === 0) return new Ctor(buf, begin, n);
  // Unaligned (or copy asked for): copy the bytes into a fresh, aligned array. On a big-endian host, swap too.
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(new Uint8Array(buf, begin, n * size));
  if (!LITTLE_ENDIAN && size > 1) swapBytes(new Uint8Array(out.buffer), size);
  return out;
}

let F16_TABLE: Uint32Array | undefined;
/** float32 bit patterns of all 65536 half values, built once (256 KiB): a table lookup per element on read. */
function f16Table(): Uint32Array {
  if (!F16_TABLE) {
    const f = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f[h] = f16BitsToF32(h);
    F16_TABLE = new Uint32Array(f.buffer);
  }
  return F16_TABLE;
}

type AnyCtor = {
  new (n: number): TensorData;
  new (buf: ArrayBuffer, byteOffset: number, length: number): TensorData;
};

function typedArrayCtor(dtype: DType): AnyCtor {
  const ctors: Record<string, unknown> = { Float64Array, Float32Array, BigInt64Array, Int32Array, Int16Array, Int8Array, Uint8Array };
  return ctors[arrayTypeFor(dtype)] as AnyCtor;
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}

/** Checks that a state-dict entry is self-consistent before it is written; names the tensor on failure. */
function checkEntry(name: string, t: TensorEntry): void {
  if (!isDType(t.dtype)) throw new TypeError(`safetensors: tensor "${name}": unsupported dtype ${JSON.stringify(t.dtype)}`);
  const n = numel(t.shape, `safetensors: tensor "${name}" shape`);
  const want = arrayTypeFor(t.dtype);
  if (!(t.data instanceof typedArrayCtor(t.dtype))) {
    throw new TypeError(`safetensors: tensor "${name}": dtype ${t.dtype} needs a ${want}, got ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  if (t.data.length !== n) {
    throw new RangeError(`safetensors: tensor "${name}": data has ${t.data.length} elements but shape ${JSON.stringify(t.shape)} needs ${n}`);
  }
}

/** The file bytes of one tensor (a view when no conversion is needed). */
function encodeTensor(t: TensorEntry): Uint8Array {
  if (t.dtype === 'F16' || t.dtype === 'BF16') {
    const src = t.data as Float32Array;
    const out = new Uint16Array(src.length);
    if (t.dtype === 'BF16') {
      // Round to nearest even on the bit patterns (a Float32Array is always 4-byte aligned).
      const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
      for (let i = 0; i < u.length; i++) {
        const x = u[i];
        out[i] = (x & 0x7f800000) === 0x7f800000 && x & 0x7fffff ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
      }
    } else {
      for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
    }
    if (!LITTLE_ENDIAN) swapBytes(new Uint8Array(out.buffer), 2);
    return new Uint8Array(out.buffer);
  }
  const view = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (LITTLE_ENDIAN || DTYPE_BYTES[t.dtype] === 1) return view;
  const copy = view.slice();
  swapBytes(copy, DTYPE_BYTES[t.dtype]);
  return copy;
}

/**
 * Serialises a state dict to safetensors as a list of chunks (header, then each tensor's bytes, mostly views),
 * ready for `writeFileAtomic` without concatenating gigabytes. Tensors are laid out by element size, largest first,
 * then by name: every tensor then starts at a multiple of its element size (the header is padded with spaces to a
 * multiple of 8), so a reader can view it in place.
 */
export function serializeSafetensors(tensors: StateDict, metadata?: Record<string, string>): Uint8Array[] {
  const names = [...tensors.keys()];
  for (const name of names) {
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" cannot be a tensor name');
    checkEntry(name, tensors.get(name)!);
  }
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors: metadata "${k}" must be a string`);
    }
  }
  names.sort((a, b) => {
    const d = DTYPE_BYTES[tensors.get(b)!.dtype] - DTYPE_BYTES[tensors.get(a)!.dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = encodeTensor(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return [len, json, ...chunks];
}

/** Writes a state dict to `path` as safetensors, atomically (see `writeFileAtomic`). */
export function writeSafetensors(path: string, tensors: StateDict, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
