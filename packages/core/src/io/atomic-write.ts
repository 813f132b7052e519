/**
 * Atomic file writes: a reader sees either the old file or the complete new one, never a half-written file,
 * even if the process dies mid-write. The data goes to a temporary file in the same folder (a rename is only
 * atomic within one file system), is fsync'ed, then renamed over the target; the folder is fsync'ed after the
 * rename so that the new name survives a power loss too. Used for weights, tokenizers and trainer checkpoints.
 */
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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

/**
 * fsync of a file, or of a folder (which makes a rename in it durable on Linux); some platforms (Windows)
 * cannot open a folder: best effort.
 */
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

/**
 * Why folder `dir` could not be created or written, in words (a parent that is a file; "the folder X is not
 * writable"), or null when it can be. Checks the nearest existing folder on the way to `dir`.
 */
export function writableDirProblem(dir: string): string | null {
  const p = nearestExisting(resolve(dir));
  if (!statSync(p).isDirectory()) return `${p} is a file, not a folder`;
  try {
    accessSync(p, constants.W_OK | constants.X_OK);
  } catch {
    return `the folder ${p} is not writable`;
  }
  return null;
}

function nearestExisting(abs: string): string {
  let p = abs;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/**
 * Creates folder `dir` and its missing parents (or checks that it exists and can be written), with an error
 * that says what is wrong in words (writableDirProblem: "the folder X is not writable" instead of the
 * EACCES/ENOENT of a recursive mkdir), starting with `what` (default `folder <dir>`; e.g. `outputDir
 * runs/sft`). Each missing level is made with a plain mkdir: Node's recursive mkdir loops forever under some
 * read-only mounts (/proc).
 */
export function ensureWritableDir(dir: string, what = `folder ${dir}`): void {
  const problem = writableDirProblem(dir);
  if (problem) throw new Error(`${what}: ${problem}`);
  const abs = resolve(dir);
  const missing: string[] = [];
  for (let p = abs; !existsSync(p) && dirname(p) !== p; p = dirname(p)) missing.unshift(p);
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(m).isDirectory()) continue; // made by someone else meanwhile
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new Error(`${what}: the folder ${dirname(m)} is not writable`, { cause: err });
      throw new Error(`${what}: cannot create ${m}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Writes a whole folder atomically: `fill(tmp)` writes the files into a new temporary folder beside `dir`
 * (same file system, so that the rename is atomic), every file and the folder are fsync'ed, and the folder is
 * renamed to `dir`. An existing `dir` is moved aside first and removed after (rename(2) cannot replace a
 * folder that has files). A process killed at any point leaves the old folder or the complete new one under
 * `dir`, never a part (between the two renames, neither is under `dir`; both are under temporary names).
 * A failure removes the temporary folder and keeps the old one. `tmpPrefix` names the temporary folders
 * (`<prefix><pid>-<random>`; default `.tmp-<name of dir>-`).
 */
export function writeFolderAtomic(dir: string, fill: (tmp: string) => void, opts: { tmpPrefix?: string } = {}): void {
  const parent = dirname(resolve(dir));
  ensureWritableDir(parent, `cannot write ${dir}`);
  const prefix = opts.tmpPrefix ?? `.tmp-${basename(resolve(dir))}-`;
  const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(parent, `${prefix}${tag()}`);
  mkdirSync(tmp);
  try {
    fill(tmp);
    for (const name of readdirSync(tmp)) syncDir(join(tmp, name)); // files written otherwise than atomically
    syncDir(tmp);
    if (existsSync(dir)) {
      const aside = join(parent, `${prefix}old-${tag()}`);
      renameSync(dir, aside);
      renameSync(tmp, dir);
      rmSync(aside, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
    syncDir(parent);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
