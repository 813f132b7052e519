/**
 * Atomic file writes: a reader sees either the old file or the complete new one, never a half-written file,
 * even if the process dies mid-write. The data goes to a temporary file in the same folder (a rename is only
 * atomic within one file system), is fsync'ed, then renamed over the target; the folder is fsync'ed after the
 * rename so that the new name survives a power loss too. Used for weights, tokenizers and trainer checkpoints.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** What `writeFileAtomic` accepts: a string (written as UTF-8), bytes, or a list of byte chunks written in order. */
export type AtomicWriteData = string | Uint8Array | readonly Uint8Array[];

/**
 * Writes `data` to `path` atomically (temp file in the same folder, fsync, rename, fsync of the folder).
 * Chunks are written one after another without being concatenated first, so a large checkpoint can be passed
 * as views over its tensors. On any failure the temporary file is removed and the original error is rethrown
 * with the target path in its message; an existing file at `path` is left untouched.
 */
export function writeFileAtomic(path: string, data: AtomicWriteData): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const chunks: readonly Uint8Array[] =
    typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  let fd: number | undefined;
  try {
    // 'wx': fail rather than follow a symlink or clobber a file someone else created under our random name.
    fd = openSync(tmp, 'wx', 0o644);
    for (const chunk of chunks) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('writeFileAtomic: every chunk must be a Uint8Array');
      let off = 0;
      // writeSync may write fewer bytes than asked (large buffers, some file systems): loop until done.
      while (off < chunk.byteLength) {
        off += writeSync(fd, chunk, off, chunk.byteLength - off);
      }
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already failing: keep the first error */
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* the temp file may not exist */
    }
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`writeFileAtomic: could not write ${path}: ${msg}`, { cause: err });
  }
  syncDir(dir);
}

/** fsync of a folder makes a rename durable on Linux; some platforms (Windows) cannot open a folder: best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* not supported here: the rename itself is still atomic */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
