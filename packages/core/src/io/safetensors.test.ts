import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StateDict } from './dtypes';
import { f32ToBf16Bits, f32ToF16Bits } from './dtypes';
import { openSafetensors, parseSafetensors, parseSafetensorsHeader, readSafetensors, serializeSafetensors, writeSafetensors } from './safetensors';
import { writeFileAtomic } from './atomic-write';
import { makeTempDir, randomFloats, seededRandom } from './test-helpers';

const tmp = makeTempDir();
afterAll(tmp.cleanup);

/** Builds a safetensors file by hand from a header object and a data section (independent of our writer). */
function handmade(header: Record<string, unknown>, data: Uint8Array, pad = 0): Buffer {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function f32Bytes(xs: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(xs).buffer);
}

describe('parseSafetensors on hand-built files', () => {
  it('reads F32, F16, BF16, I32, I64, U8 with metadata', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, -2, 0.333251953125
    const bf16 = new Uint16Array([0x3f80, 0x4049]); // 1, 3.140625
    const data = Buffer.concat([
      f32Bytes([1.5, -2.25, 3, 4]),
      Buffer.from(new BigInt64Array([-5n, 1n << 40n]).buffer),
      Buffer.from(new Int32Array([7, -8]).buffer),
      Buffer.from(f16.buffer),
      Buffer.from(bf16.buffer),
      Buffer.from([9, 250]),
    ]);
    const header = {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      pos: { dtype: 'I64', shape: [2], data_offsets: [16, 32] },
      idx: { dtype: 'I32', shape: [2], data_offsets: [32, 40] },
      h: { dtype: 'F16', shape: [3], data_offsets: [40, 46] },
      b: { dtype: 'BF16', shape: [1, 2], data_offsets: [46, 50] },
      m: { dtype: 'U8', shape: [2], data_offsets: [50, 52] },
    };
    const file = parseSafetensors(handmade(header, data), 'x.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.keys()]).toEqual(['w', 'pos', 'idx', 'h', 'b', 'm']);
    expect(file.tensors.get('w')).toEqual({ dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2.25, 3, 4]) });
    expect(file.tensors.get('pos')!.data).toEqual(new BigInt64Array([-5n, 1n << 40n]));
    expect(file.tensors.get('idx')!.data).toEqual(new Int32Array([7, -8]));
    expect(Array.from(file.tensors.get('h')!.data as Float32Array)).toEqual([1, -2, 0.333251953125]);
    expect(file.tensors.get('h')!.dtype).toBe('F16');
    expect(Array.from(file.tensors.get('b')!.data as Float32Array)).toEqual([1, 3.140625]);
    expect(file.tensors.get('m')!.data).toEqual(new Uint8Array([9, 250]));
  });

  it('views the file buffer when aligned, copies when not', () => {
    const data = f32Bytes([1, 2, 3]);
    // Header of 8 + 56 bytes keeps the data 4-aligned; a 1-byte pad makes it unaligned.
    for (const extra of [0, 1]) {
      const header = { t: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } };
      const base = JSON.stringify(header).length;
      const pad = ((8 - ((8 + base) % 8)) % 8) + extra;
      const bytes = handmade(header, data, pad);
      const aligned = Buffer.allocUnsafeSlow(bytes.length); // byteOffset 0, unlike pooled Buffers
      bytes.copy(aligned);
      const t = parseSafetensors(aligned).tensors.get('t')!;
      expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3]);
      expect(t.data.buffer === aligned.buffer).toBe(extra === 0);
      const copied = parseSafetensors(aligned, 'x', { copy: true }).tensors.get('t')!;
      expect(copied.data.buffer === aligned.buffer).toBe(false);
    }
  });

  it('reads an empty file header and zero-size tensors', () => {
    expect(parseSafetensors(handmade({}, new Uint8Array(0))).tensors.size).toBe(0);
    const f = parseSafetensors(handmade({ e: { dtype: 'F32', shape: [0, 3], data_offsets: [0, 0] }, s: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, f32Bytes([42])));
    expect(f.tensors.get('e')!.data.length).toBe(0);
    expect(f.tensors.get('s')).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([42]) });
  });

  it('reads a file written by numpy + struct (an independent writer)', () => {
    const out = join(tmp.dir, 'py.safetensors');
    const py = `
import json, struct, sys, numpy as np
rng = np.random.default_rng(3)
a = rng.standard_normal((3, 5)).astype(np.float32)
h = rng.standard_normal((4,)).astype(np.float16)
header = {"a": {"dtype": "F32", "shape": [3, 5], "data_offsets": [0, 60]},
          "h": {"dtype": "F16", "shape": [4], "data_offsets": [60, 68]}}
hb = json.dumps(header).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(hb))); f.write(hb); f.write(a.tobytes()); f.write(h.tobytes())
print(json.dumps({"a": a.ravel().tolist(), "h": h.astype(np.float32).tolist()}))
`;
    const expected = JSON.parse(execFileSync('python3', ['-c', py, out], { encoding: 'utf8' }));
    const f = readSafetensors(out);
    expect(Array.from(f.tensors.get('a')!.data as Float32Array)).toEqual(expected.a.map(Math.fround));
    expect(Array.from(f.tensors.get('h')!.data as Float32Array)).toEqual(expected.h);
  });
});

describe('corrupt and hostile files give errors naming file and tensor', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = f32Bytes([1, 2]);
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['too short for a length', () => Buffer.alloc(5), /bad\.st: file is 5 bytes/],
    ['header length past the end', () => { const b = handmade(ok, data); b.writeBigUInt64LE(1000n); return b; }, /bad\.st: header length 1000 runs past the end/],
    ['huge header length', () => { const b = handmade(ok, data); b.writeBigUInt64LE(1n << 62n); return b; }, /exceeds the limit/],
    ['not JSON', () => { const b = handmade(ok, data); b[9] = 0x7b; b[10] = 0x7b; return b; }, /not valid JSON/],
    ['JSON array', () => handmade([] as unknown as Record<string, unknown>, new Uint8Array(0)), /does not start with "\{"/],
    ['unknown dtype', () => handmade({ t: { ...ok.t, dtype: 'F8_E4M3' } }, data), /tensor "t": unsupported dtype "F8_E4M3"/],
    ['bad shape', () => handmade({ t: { ...ok.t, shape: [2, -1] } }, data), /tensor "t": shape \[2,-1\]/],
    ['bad offsets', () => handmade({ t: { ...ok.t, data_offsets: [0] } }, data), /tensor "t": data_offsets \[0\]/],
    ['reversed offsets', () => handmade({ t: { ...ok.t, data_offsets: [8, 0] } }, data), /tensor "t": data_offsets \[8, 0\] end before/],
    ['size mismatch', () => handmade({ t: { ...ok.t, shape: [3] } }, data), /tensor "t": 8 bytes in data_offsets but shape \[3\] of F32 needs 12/],
    ['truncated data', () => handmade(ok, data).subarray(0, -3) as Buffer, /tensor "t": data_offsets \[0, 8\] run past the data section \(5 bytes\)/],
    ['overlap', () => handmade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data), /tensor "b".*overlap/],
    ['hole', () => handmade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data), /tensor "a".*leave a hole/],
    ['trailing bytes', () => handmade(ok, Buffer.concat([data, Buffer.alloc(4)])), /cover 8 bytes but the data section holds 12/],
    ['metadata not strings', () => handmade({ __metadata__: { n: 1 }, ...ok }, data), /__metadata__\.n is not a string/],
  ];
  for (const [what, make, re] of cases) {
    it(what, () => {
      expect(() => parseSafetensors(make(), 'bad.st')).toThrow(re);
    });
  }

  it('names the file path when reading from disk', () => {
    const p = join(tmp.dir, 'trunc.safetensors');
    writeFileSync(p, handmade(ok, data).subarray(0, 20));
    expect(() => readSafetensors(p)).toThrow(new RegExp(`${p.replace(/[.]/g, '\\.')}: header length`));
  });

  it('never crashes on random byte flips of a valid file', () => {
    const rand = seededRandom(11);
    const good = Buffer.from(concatChunks(serializeSafetensors(randomDict(rand), { a: 'b' })));
    for (let trial = 0; trial < 300; trial++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < flips; k++) b[Math.floor(rand() * Math.min(b.length, 400))] = Math.floor(rand() * 256);
      try {
        parseSafetensors(b, 'fuzz');
      } catch (e) {
        // Only our own, named errors: never a RangeError from a typed array or an internal TypeError.
        expect((e as Error).message).toMatch(/^safetensors fuzz: /);
      }
    }
  });
});

function concatChunks(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

function randomDict(rand: () => number): StateDict {
  const sd: StateDict = new Map();
  sd.set('model.embed_tokens.weight', { dtype: 'F32', shape: [7, 3], data: randomFloats(rand, 21) });
  sd.set('h', { dtype: 'F16', shape: [5], data: Float32Array.from(randomFloats(rand, 5), (v) => v) });
  sd.set('b', { dtype: 'BF16', shape: [3, 1], data: randomFloats(rand, 3) });
  sd.set('i', { dtype: 'I32', shape: [3], data: new Int32Array([1, -2, 3]) });
  sd.set('l', { dtype: 'I64', shape: [1], data: new BigInt64Array([-9n]) });
  sd.set('u', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) });
  return sd;
}

describe('writeSafetensors', () => {
  it('round-trips bit-exactly, with every tensor aligned for in-place views', () => {
    const rand = seededRandom(5);
    const sd = randomDict(rand);
    const p = join(tmp.dir, 'model.safetensors');
    writeSafetensors(p, sd, { format: 'pt', note: 'ünïcode' });
    const back = readSafetensors(p);
    expect(back.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    for (const [name, t] of sd) {
      const r = back.tensors.get(name)!;
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      if (t.dtype === 'F16' || t.dtype === 'BF16') {
        const conv = t.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
        // The file holds the rounded values; reading widens them exactly.
        expect(Array.from(r.data as Float32Array, conv)).toEqual(Array.from(t.data as Float32Array, conv));
      } else {
        expect(r.data).toEqual(t.data);
        expect(r.data.buffer.byteLength).toBeGreaterThan(r.data.byteLength); // a view into the file buffer
      }
    }
    // Writing what we read gives the identical file, byte for byte.
    const p2 = join(tmp.dir, 'again.safetensors');
    writeSafetensors(p2, back.tensors, back.metadata);
    expect(readFileSync(p2).equals(readFileSync(p))).toBe(true);
    const header = parseSafetensorsHeader(readFileSync(p));
    expect(header.dataStart % 8).toBe(0);
    for (const e of header.entries.values()) expect(e.dataOffsets[0] % (e.dtype === 'I64' ? 8 : e.dtype.endsWith('32') ? 4 : 1)).toBe(0);
  });

  it('F16 and BF16: every one of the 65536 bit patterns reads and writes back to the same bits (NaN stays NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = handmade(
      { h: { dtype: 'F16', shape: [65536], data_offsets: [0, 131072] }, b: { dtype: 'BF16', shape: [65536], data_offsets: [131072, 262144] } },
      Buffer.concat([Buffer.from(all.buffer), Buffer.from(all.buffer)]),
    );
    const read = parseSafetensors(bytes).tensors;
    const back = parseSafetensorsHeader(concatChunks(serializeSafetensors(read)));
    const file = concatChunks(serializeSafetensors(read));
    for (const name of ['h', 'b']) {
      const e = back.entries.get(name)!;
      // Uint8Array.prototype.slice copies (Buffer#slice would give a view into a pooled buffer)
      const bits = new Uint16Array(Uint8Array.prototype.slice.call(file, back.dataStart + e.dataOffsets[0], back.dataStart + e.dataOffsets[1]).buffer);
      const values = read.get(name)!.data as Float32Array;
      const bad: number[] = [];
      for (let h = 0; h < 65536; h++) {
        const nan = Number.isNaN(values[h]);
        const isNanPattern = name === 'h' ? (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
        if (nan !== isNanPattern || (!nan && bits[h] !== h)) bad.push(h);
      }
      expect(bad).toEqual([]);
    }
    // bf16 widening is exact: the float32 bits are the bf16 bits shifted up
    const b32 = new Uint32Array((read.get('b')!.data as Float32Array).buffer);
    expect(b32[0x3f80]).toBe(0x3f800000);
    expect(b32[0xc049]).toBe(0xc0490000);
  });

  it('round-trips random shapes and values', () => {
    const rand = seededRandom(99);
    for (let trial = 0; trial < 20; trial++) {
      const sd: StateDict = new Map();
      const k = 1 + Math.floor(rand() * 5);
      for (let j = 0; j < k; j++) {
        const shape = Array.from({ length: Math.floor(rand() * 4) }, () => Math.floor(rand() * 6));
        const n = shape.reduce((a, b) => a * b, 1);
        sd.set(`layer.${j}.w`, { dtype: 'F32', shape, data: randomFloats(rand, n, 10) });
      }
      const back = parseSafetensors(concatChunks(serializeSafetensors(sd)));
      expect(back.tensors).toEqual(sd);
    }
  });

  it('rejects inconsistent entries, naming the tensor', () => {
    const bad = (t: unknown) => new Map([['x.w', t]]) as StateDict;
    expect(() => serializeSafetensors(bad({ dtype: 'F32', shape: [3], data: new Float32Array(2) }))).toThrow(/tensor "x\.w": data has 2 elements but shape \[3\] needs 3/);
    expect(() => serializeSafetensors(bad({ dtype: 'I32', shape: [2], data: new Float32Array(2) }))).toThrow(/tensor "x\.w": dtype I32 needs a Int32Array/);
    expect(() => serializeSafetensors(bad({ dtype: 'F8', shape: [2], data: new Float32Array(2) }))).toThrow(/tensor "x\.w": unsupported dtype/);
    expect(() => serializeSafetensors(bad({ dtype: 'F32', shape: [-2], data: new Float32Array(2) }))).toThrow(/x\.w" shape: dimension -2/);
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole and leaves no temp files behind', () => {
    const p = join(tmp.dir, 'atomic.txt');
    writeFileAtomic(p, 'old');
    writeFileAtomic(p, [new Uint8Array([104, 105]), new Uint8Array([33])]);
    expect(readFileSync(p, 'utf8')).toBe('hi!');
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('on failure keeps the old file, removes the temp file and names the path', () => {
    const p = join(tmp.dir, 'keep.txt');
    writeFileAtomic(p, 'precious');
    expect(() => writeFileAtomic(p, [new Uint8Array([1]), 'not bytes' as unknown as Uint8Array])).toThrow(/could not write .*keep\.txt: .*Uint8Array/);
    expect(readFileSync(p, 'utf8')).toBe('precious');
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(() => writeFileAtomic(join(tmp.dir, 'no-such-dir', 'f'), 'x')).toThrow(/no-such-dir/);
    expect(existsSync(join(tmp.dir, 'no-such-dir'))).toBe(false);
  });
});

describe('openSafetensors (one tensor at a time)', () => {
  it('reads the same tensors as readSafetensors, each as an owned array', () => {
    const sd = randomDict(seededRandom(8));
    const p = join(tmp.dir, 'lazy.safetensors');
    writeSafetensors(p, sd, { k: 'v' });
    const whole = readSafetensors(p);
    const r = openSafetensors(p);
    try {
      expect(r.metadata).toEqual({ k: 'v' });
      expect([...r.entries.keys()]).toEqual([...whole.tensors.keys()]);
      for (const name of r.entries.keys()) {
        const t = r.read(name);
        expect(t).toEqual(whole.tensors.get(name));
        expect(t.data.byteLength).toBe(t.data.buffer.byteLength); // not a view into a bigger buffer
      }
      expect(() => r.read('nope')).toThrow(/lazy\.safetensors: no tensor "nope"/);
    } finally {
      r.close();
    }
    expect(() => r.read('h')).toThrow(/reader is closed/);
  });

  it('validates the header against the real file size', () => {
    const good = Buffer.from(concatChunks(serializeSafetensors(randomDict(seededRandom(9)))));
    const p = join(tmp.dir, 'lazy-trunc.safetensors');
    writeFileSync(p, good.subarray(0, good.length - 3));
    expect(() => openSafetensors(p)).toThrow(/lazy-trunc\.safetensors: .*run past the data section/);
    writeFileSync(p, good.subarray(0, 5));
    expect(() => openSafetensors(p)).toThrow(/lazy-trunc\.safetensors: file is 5 bytes/);
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 40n);
    writeFileSync(p, huge);
    expect(() => openSafetensors(p)).toThrow(/exceeds the limit/);
  });
});
