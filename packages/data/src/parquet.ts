/**
 * Parquet, the format of Hugging Face dataset repositories. Reading goes through hyparquet, one row group at a
 * time, so memory is bounded by the largest row group, not the file. Writing is our own minimal writer: flat
 * columns of strings, numbers and booleans, every column OPTIONAL, PLAIN encoding, no compression, data page
 * v1. That covers the standard (plain-text) TRL layouts; conversational records (nested lists of structs) are
 * refused with a message that says to write JSONL instead.
 *
 * The file layout and the Thrift compact protocol are as in the Apache Parquet specification
 * (github.com/apache/parquet-format: README "File Format", parquet.thrift) and the Apache Thrift compact
 * protocol specification (thrift/doc/specs/thrift-compact-protocol.md).
 */
import { isUtf8 } from 'node:buffer';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export type ParquetCell = string | number | boolean | null;

/** True when the file starts with the Parquet magic "PAR1". */
export async function isParquetFile(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b.toString('latin1') === 'PAR1';
  } finally {
    await fh.close();
  }
}

export interface ParquetRowEvent {
  row: number;
  value?: Record<string, unknown>;
  /** A text cell that is not UTF-8: the column path and the message. */
  problem?: { path: string; message: string };
}

/** Byte arrays to strings, checking UTF-8 (hyparquet's own decoding would put U+FFFD in silently). */
function decodeCells(v: unknown, path: string, bad: { path: string } | undefined): { value: unknown; bad?: { path: string } } {
  if (v instanceof Uint8Array) {
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (!isUtf8(b)) return { value: null, bad: bad ?? { path } };
    return { value: b.toString('utf8'), bad };
  }
  if (typeof v === 'bigint') return { value: Number(v), bad };
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    v.forEach((x, i) => {
      const r = decodeCells(x, `${path}[${i}]`, bad);
      bad = r.bad;
      out.push(r.value);
    });
    return { value: out, bad };
  }
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = decodeCells(x, path ? `${path}.${k}` : k, bad);
      bad = r.bad;
      if (r.value !== null && r.value !== undefined) out[k] = r.value; // absent optional fields stay absent
    }
    return { value: out, bad };
  }
  return { value: v, bad };
}

/** Rows of a Parquet file, one row group at a time. Errors of the file itself are thrown with the file named. */
export async function* readParquetRows(file: string): AsyncGenerator<ParquetRowEvent> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } = await import('hyparquet');
  let buffer;
  let metadata;
  try {
    await checkParquetEnds(file);
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
    checkColumnPaths(metadata.row_groups, parquetSchema(metadata));
  } catch (e) {
    throw new Error(`cannot read ${file} as Parquet: ${(e as Error).message}`);
  }
  let start = 0;
  for (const rg of metadata.row_groups) {
    const n = Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      // Text comes back as bytes (stringFromBytes is the identity) so that decodeCells can check UTF-8.
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: start + n, utf8: false, parsers: { stringFromBytes: (b: Uint8Array) => b as unknown as string } });
    } catch (e) {
      throw new Error(`cannot read ${file} rows ${start}..${start + n - 1}: ${(e as Error).message}`);
    }
    for (let i = 0; i < rows.length; i++) {
      const r = decodeCells(rows[i], '', undefined);
      if (r.bad) yield { row: start + i, problem: { path: r.bad.path, message: 'not UTF-8 text' } };
      else yield { row: start + i, value: r.value as Record<string, unknown> };
    }
    start += n;
  }
}

interface SchemaNode {
  element: { name: string };
  children: SchemaNode[];
}

/**
 * Every column chunk's path_in_schema names a column of the schema. hyparquet (1.33) starts reading a row group's
 * column chunks one after another and resolves each one's path as it goes: a path the schema lacks throws while
 * the reads started before it are in flight, and their rejections go unhandled (the process dies with a stack).
 * A damaged footer is refused here, before any read starts.
 */
function checkColumnPaths(rowGroups: { columns: { meta_data?: { path_in_schema: string[] } }[] }[], root: SchemaNode): void {
  rowGroups.forEach((rg, g) => {
    rg.columns.forEach((chunk, c) => {
      const path = chunk.meta_data?.path_in_schema;
      if (!path) return; // no inline metadata: hyparquet refuses the chunk itself, before reading anything
      let node = root;
      for (const part of path) {
        const child = node.children.find((ch) => ch.element.name === part);
        if (!child) {
          throw new Error(`row group ${g}, column chunk ${c} is of column ${JSON.stringify(path.join('.'))}, which the schema does not have: the file is damaged`);
        }
        node = child;
      }
    });
  });
}

/**
 * A file that starts with "PAR1" but cannot hold a footer, or does not end with one: said in words (hyparquet
 * would say "Offset is outside the bounds of the DataView" or "footer != PAR1").
 */
async function checkParquetEnds(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    // "PAR1", the metadata, its 4-byte length and "PAR1" again
    if (size < 12) throw new Error(`the file is ${size} bytes, too short to be Parquet (the file is truncated, or not Parquet)`);
    const tail = Buffer.alloc(8);
    await fh.read(tail, 0, 8, size - 8);
    if (tail.toString('latin1', 4) !== 'PAR1') throw new Error('it does not end with the Parquet footer "PAR1" (the file is truncated, or not Parquet)');
    const metaLen = tail.readUInt32LE(0);
    if (metaLen > size - 12) throw new Error(`its footer gives a metadata length of ${metaLen} bytes, more than the file holds (${size} bytes): the file is damaged`);
  } finally {
    await fh.close();
  }
}

/** Column names of a Parquet file's top-level schema (for layout detection). */
export async function parquetColumns(file: string): Promise<string[]> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetSchema } = await import('hyparquet');
  try {
    await checkParquetEnds(file);
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
    return parquetSchema(metadata).children.map((c: { element: { name: string } }) => c.element.name);
  } catch (e) {
    throw new Error(`cannot read ${file} as Parquet: ${(e as Error).message}`);
  }
}

// ---- Thrift compact protocol, just what FileMetaData and PageHeader need ----

const CT = { TRUE: 1, FALSE: 2, I32: 5, I64: 6, BINARY: 8, LIST: 9, STRUCT: 12 } as const;

class CompactWriter {
  private bytes: number[] = [];
  private lastField: number[] = [0];

  private varint(n: bigint | number): void {
    let v = BigInt(n);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  private zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }

  private header(id: number, type: number): void {
    const last = this.lastField[this.lastField.length - 1];
    const delta = id - last;
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.lastField[this.lastField.length - 1] = id;
  }

  i32(id: number, v: number): this {
    this.header(id, CT.I32);
    this.zigzag(v);
    return this;
  }

  i64(id: number, v: number | bigint): this {
    this.header(id, CT.I64);
    this.zigzag(v);
    return this;
  }

  string(id: number, s: string): this {
    this.header(id, CT.BINARY);
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** A list of i32 or of strings. */
  list(id: number, kind: 'i32' | 'string', items: Array<number | string>): this {
    this.header(id, CT.LIST);
    const t = kind === 'i32' ? CT.I32 : CT.BINARY;
    if (items.length < 15) this.bytes.push((items.length << 4) | t);
    else {
      this.bytes.push(0xf0 | t);
      this.varint(items.length);
    }
    for (const it of items) {
      if (kind === 'i32') this.zigzag(it as number);
      else {
        const b = Buffer.from(it as string, 'utf8');
        this.varint(b.length);
        for (const x of b) this.bytes.push(x);
      }
    }
    return this;
  }

  /** A list of structs, each written by `each`. */
  structList<T>(id: number, items: T[], each: (w: this, item: T) => void): this {
    this.header(id, CT.LIST);
    if (items.length < 15) this.bytes.push((items.length << 4) | CT.STRUCT);
    else {
      this.bytes.push(0xf0 | CT.STRUCT);
      this.varint(items.length);
    }
    for (const it of items) {
      this.lastField.push(0);
      each(this, it);
      this.bytes.push(0);
      this.lastField.pop();
    }
    return this;
  }

  struct(id: number, body: (w: this) => void): this {
    this.header(id, CT.STRUCT);
    this.lastField.push(0);
    body(this);
    this.bytes.push(0);
    this.lastField.pop();
    return this;
  }

  end(): Buffer {
    this.bytes.push(0); // stop field of the outermost struct
    return Buffer.from(this.bytes);
  }
}

// parquet.thrift enums
const TYPE = { BOOLEAN: 0, DOUBLE: 5, BYTE_ARRAY: 6 } as const;
const OPTIONAL = 1;
const UTF8 = 0;
const PLAIN = 0;
const RLE = 3;

type ColumnType = 'string' | 'number' | 'boolean';

interface ChunkMeta {
  name: string;
  type: ColumnType;
  offset: number;
  size: number;
  numValues: number;
}

const physical = (t: ColumnType) => (t === 'string' ? TYPE.BYTE_ARRAY : t === 'number' ? TYPE.DOUBLE : TYPE.BOOLEAN);

/** Definition levels (1 = present, 0 = null) as an RLE/bit-packed hybrid run of 1-bit values, length-prefixed. */
function definitionLevels(defs: Uint8Array): Buffer {
  const groups = Math.ceil(defs.length / 8);
  const body: number[] = [];
  let h = (groups << 1) | 1; // bit-packed run header
  while (h >= 0x80) {
    body.push((h & 0x7f) | 0x80);
    h >>>= 7;
  }
  body.push(h);
  for (let g = 0; g < groups; g++) {
    let byte = 0;
    for (let i = 0; i < 8; i++) if (defs[g * 8 + i]) byte |= 1 << i;
    body.push(byte);
  }
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  Buffer.from(body).copy(out, 4);
  return out;
}

function plainValues(type: ColumnType, values: ParquetCell[]): Buffer {
  if (type === 'string') {
    const parts: Buffer[] = [];
    for (const v of values) {
      const b = Buffer.from(v as string, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length, 0);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  if (type === 'number') {
    const b = Buffer.alloc(8 * values.length);
    values.forEach((v, i) => b.writeDoubleLE(v as number, 8 * i));
    return b;
  }
  const b = Buffer.alloc(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v) b[i >> 3] |= 1 << (i & 7);
  });
  return b;
}

/**
 * Writes rows of flat cells to a Parquet file. Columns are those of the first row group (a later row with a
 * new column, or a cell of another type than its column's, is an error naming the column and the row).
 */
export class ParquetWriter {
  private fh?: FileHandle;
  private offset = 0;
  private pending: Array<Record<string, ParquetCell | undefined>> = [];
  private columns?: Array<{ name: string; type: ColumnType }>;
  private groups: Array<{ chunks: ChunkMeta[]; rows: number; bytes: number }> = [];
  private rows = 0;

  constructor(
    private readonly path: string,
    private readonly rowGroupSize = 10_000,
  ) {}

  async write(row: Record<string, unknown>): Promise<void> {
    const flat: Record<string, ParquetCell | undefined> = {};
    for (const [k, v] of Object.entries(row)) {
      if (v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') flat[k] = v as ParquetCell;
      else throw new TypeError(`row ${this.rows + this.pending.length}, column "${k}": Parquet output holds flat columns of text, numbers and booleans; this value is ${Array.isArray(v) ? 'a list (conversational records?)' : typeof v}: write JSONL instead`);
    }
    this.pending.push(flat);
    if (this.pending.length >= this.rowGroupSize) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    if (!this.fh) {
      this.fh = await open(this.path, 'w');
      await this.fh.write(Buffer.from('PAR1'));
      this.offset = 4;
    }
    const rows = this.pending;
    this.pending = [];
    if (!this.columns) {
      const types = new Map<string, ColumnType>();
      for (const r of rows) for (const [k, v] of Object.entries(r)) if (v !== null && v !== undefined && !types.has(k)) types.set(k, typeof v as ColumnType);
      for (const r of rows) for (const k of Object.keys(r)) if (!types.has(k)) types.set(k, 'string'); // all-null column
      this.columns = [...types].map(([name, type]) => ({ name, type }));
    }
    const known = new Set(this.columns.map((c) => c.name));
    const chunks: ChunkMeta[] = [];
    let groupBytes = 0;
    for (const col of this.columns) {
      const defs = new Uint8Array(rows.length);
      const values: ParquetCell[] = [];
      rows.forEach((r, i) => {
        const v = r[col.name];
        if (v === null || v === undefined) return;
        if (typeof v !== col.type) throw new TypeError(`row ${this.rows + i}, column "${col.name}": expected ${col.type} like the rows before, got ${typeof v}`);
        defs[i] = 1;
        values.push(v);
      });
      const data = Buffer.concat([definitionLevels(defs), plainValues(col.type, values)]);
      const header = new CompactWriter()
        .i32(1, 0) // DATA_PAGE
        .i32(2, data.length)
        .i32(3, data.length)
        .struct(5, (w) => w.i32(1, rows.length).i32(2, PLAIN).i32(3, RLE).i32(4, RLE))
        .end();
      const chunkOffset = this.offset;
      await this.fh.write(header);
      await this.fh.write(data);
      const size = header.length + data.length;
      this.offset += size;
      groupBytes += size;
      chunks.push({ name: col.name, type: col.type, offset: chunkOffset, size, numValues: rows.length });
    }
    rows.forEach((r, i) => {
      for (const k of Object.keys(r)) if (!known.has(k)) throw new TypeError(`row ${this.rows + i}: column "${k}" is not among the columns of the first ${this.rowGroupSize} rows (${[...known].join(', ')})`);
    });
    this.groups.push({ chunks, rows: rows.length, bytes: groupBytes });
    this.rows += rows.length;
  }

  /** Writes the footer. A file with no rows is still valid Parquet (no columns, no row groups). */
  async close(): Promise<number> {
    await this.flush();
    if (!this.fh) {
      this.fh = await open(this.path, 'w');
      await this.fh.write(Buffer.from('PAR1'));
    }
    const cols = this.columns ?? [];
    const meta = new CompactWriter()
      .i32(1, 1) // version
      .structList(2, [{ name: 'schema', type: undefined as ColumnType | undefined }, ...cols], (w, c) => {
        if (c.type === undefined) w.string(4, c.name).i32(5, cols.length);
        else {
          w.i32(1, physical(c.type)).i32(3, OPTIONAL).string(4, c.name);
          if (c.type === 'string') w.i32(6, UTF8);
        }
      })
      .i64(3, this.rows)
      .structList(4, this.groups, (w, g) => {
        w.structList(1, g.chunks, (cw, ch) => {
          cw.i64(2, ch.offset).struct(3, (m) =>
            m
              .i32(1, physical(ch.type))
              .list(2, 'i32', [PLAIN, RLE])
              .list(3, 'string', [ch.name])
              .i32(4, 0) // UNCOMPRESSED
              .i64(5, ch.numValues)
              .i64(6, ch.size)
              .i64(7, ch.size)
              .i64(9, ch.offset),
          );
        })
          .i64(2, g.bytes)
          .i64(3, g.rows);
      })
      .string(6, 'rlhf-ts @rlhf/data')
      .end();
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(meta.length, 0);
    tail.write('PAR1', 4, 'latin1');
    await this.fh.write(meta);
    await this.fh.write(tail);
    await this.fh.close();
    return this.rows;
  }
}
