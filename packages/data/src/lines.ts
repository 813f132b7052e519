/**
 * Streams the lines of a (possibly gzipped) text file without holding it in memory: a 1 GB JSONL costs one
 * read buffer plus the longest line. Each line is checked for UTF-8 on its bytes (a decoder would silently
 * put U+FFFD in place of bad bytes), and a line longer than `maxLineBytes` is skipped and reported without
 * being buffered whole.
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

export type LineEvent =
  | { lineNo: number; text: string; last: boolean }
  | { lineNo: number; problem: 'invalid-utf8' | 'line-too-long'; message: string; lead?: string };

export interface LineOptions {
  maxLineBytes?: number;
  /** Read buffer size; the default suits both small fixtures and gigabyte files. */
  chunkBytes?: number;
}

/** True when the file starts with the gzip magic bytes 1f 8b (RFC 1952, section 2.3.1). */
export async function isGzipFile(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** The first byte offset in `buf` where UTF-8 decoding fails (for the error message). */
function firstBadUtf8(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > buf.length) return i;
    if (!isUtf8(buf.subarray(i, i + n))) return i;
    i += n;
  }
  return -1;
}

/** One line's bytes as text (CR and, on line 1, a BOM removed), or why they are not UTF-8. */
export function decodeLine(buf: Buffer, lineNo: number, last: boolean): LineEvent {
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0d) end--; // CRLF files
  let start = 0;
  if (lineNo === 1 && end >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) start = 3; // BOM
  const body = buf.subarray(start, end);
  if (!isUtf8(body)) {
    const at = firstBadUtf8(body);
    // lead: the line's first non-blank character (ASCII is the same in any encoding), e.g. the "[" of a JSON array
    const lead = body.toString('latin1', 0, Math.min(body.length, 256)).trimStart().charAt(0);
    return { lineNo, problem: 'invalid-utf8', message: `not UTF-8 text: invalid byte 0x${body[at]?.toString(16).padStart(2, '0')} at byte ${at} of the line (re-encode the file as UTF-8)`, lead };
  }
  return { lineNo, text: body.toString('utf8'), last };
}

/**
 * Lines of `file`, numbered from 1. Gzip is recognised by its magic bytes, whatever the name. Read errors
 * (a missing file, a truncated gzip stream) are thrown as Error with the file named; the caller reports them.
 */
export async function* readLines(file: string, opts: LineOptions = {}): AsyncGenerator<LineEvent> {
  const maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let gz: boolean;
  try {
    gz = await isGzipFile(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const raw = createReadStream(file, { highWaterMark: opts.chunkBytes ?? 1 << 20 });
  let source: AsyncIterable<Buffer> = raw;
  if (gz) {
    const gunzip = createGunzip();
    // pipe() does not forward errors: a failing read must end the gunzip stream, or iteration would hang.
    raw.on('error', (e) => gunzip.destroy(e));
    source = raw.pipe(gunzip);
  }

  let pending: Buffer[] = [];
  let pendingLen = 0;
  let skipping = false; // inside an over-long line: its bytes are counted, not kept
  let skippedLen = 0;
  let lineNo = 0;
  try {
    for await (const chunk of source) {
      let pos = 0;
      while (pos < chunk.length) {
        const nl = chunk.indexOf(0x0a, pos);
        if (nl < 0) {
          const rest = chunk.length - pos;
          if (skipping) skippedLen += rest;
          else if (pendingLen + rest > maxLine) {
            skipping = true;
            skippedLen = pendingLen + rest;
            pending = [];
            pendingLen = 0;
          } else {
            pending.push(chunk.subarray(pos));
            pendingLen += rest;
          }
          break;
        }
        lineNo++;
        if (skipping) {
          skippedLen += nl - pos;
          yield tooLong(lineNo, skippedLen, maxLine);
          skipping = false;
          skippedLen = 0;
        } else if (pendingLen + (nl - pos) > maxLine) {
          yield tooLong(lineNo, pendingLen + (nl - pos), maxLine);
          pending = [];
          pendingLen = 0;
        } else {
          const piece = chunk.subarray(pos, nl);
          const line = pendingLen === 0 ? piece : Buffer.concat([...pending, piece], pendingLen + piece.length);
          pending = [];
          pendingLen = 0;
          yield decodeLine(line, lineNo, false);
        }
        pos = nl + 1;
      }
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message) ? 'the gzip stream is truncated' : err.message;
    throw new Error(`cannot read ${file}${lineNo ? ` after line ${lineNo}` : ''}: ${why}`);
  }
  // The last line, when the file does not end with a newline.
  if (skipping) yield tooLong(lineNo + 1, skippedLen, maxLine);
  else if (pendingLen > 0) yield decodeLine(Buffer.concat(pending, pendingLen), lineNo + 1, true);
}

function tooLong(lineNo: number, len: number, max: number): LineEvent {
  const mb = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return { lineNo, problem: 'line-too-long', message: `the line is ${mb(len)}, longer than the limit of ${mb(max)} (raise maxLineBytes / --max-line-mb if it is meant to be)` };
}
