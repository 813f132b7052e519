/**
 * Trainer checkpoints, written atomically: a reader (or a resumed run) sees a complete checkpoint or none.
 *
 *   <outputDir>/checkpoint-<step>/
 *     model.safetensors       the model's weights, Hugging Face names; or, for a run training LoRA adapters,
 *     adapter_model.safetensors  only the adapters and the heads trained with them, in PEFT's layout (with an
 *                             adapter_config.json among the extra files: the folder is a PEFT adapter folder)
 *     optimizer.safetensors   AdamW moments (`<param>.exp_avg`, `<param>.exp_avg_sq`), when given
 *     <extra files>           config.json, tokenizer.json ... so the folder loads as a model
 *     trainer-state.json      step, RNG state, controller state, metrics ..., and the byte size of every
 *                             file above (checked on load), written last
 *
 * The folder is built under a hidden temporary name in outputDir, every file fsync'ed, the folder fsync'ed,
 * then renamed to checkpoint-<step> in one rename(2) and outputDir fsync'ed (io/atomic-write's
 * writeFolderAtomic, which also writes a trained model's final folder). A process killed at any point
 * leaves either no new checkpoint (a stray temporary folder, removed by the next save) or a complete one.
 * Older checkpoints are deleted only after the new one is in place, so the last good one always survives.
 *
 * The moments go to optimizer.safetensors rather than into trainer-state.json: float32 in binary, exact and
 * a quarter the size of JSON text.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureWritableDir, writeFileAtomic, writeFolderAtomic } from '../io/atomic-write';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import type { StateDict } from '../io/dtypes';

export const CHECKPOINT_FORMAT = 1;
const PREFIX = 'checkpoint-';
const TMP_PREFIX = '.tmp-checkpoint-';
const STATE_FILE = 'trainer-state.json';

/** The two files a checkpoint's weights can be in: a whole model, or LoRA adapters (PEFT's adapter_model.safetensors). */
export type CheckpointModelFile = 'model.safetensors' | 'adapter_model.safetensors';
const MODEL_FILES: readonly CheckpointModelFile[] = ['model.safetensors', 'adapter_model.safetensors'];

export interface CheckpointContent {
  step: number;
  model: StateDict;
  /** the file `model` goes to (default model.safetensors) */
  modelFile?: CheckpointModelFile;
  optimizer?: StateDict;
  /** trainer state, any JSON (the RNG state, KL controller, epoch, counters, the config) */
  state: Record<string, unknown>;
  /** more files copied into the folder, name → contents (config.json, tokenizer.json) */
  files?: Record<string, string | Uint8Array>;
}

export interface LoadedCheckpoint {
  path: string;
  step: number;
  model: StateDict;
  /** the file `model` came from: a whole model or LoRA adapters */
  modelFile: CheckpointModelFile;
  optimizer: StateDict | null;
  state: Record<string, unknown>;
  /** newer checkpoints that failed to load and were passed over for this one (loadLatestCheckpoint), with why */
  skipped?: { path: string; error: string }[];
}

interface StateFile {
  format: number;
  step: number;
  savedAt: string;
  files: Record<string, number>;
  state: Record<string, unknown>;
}

export function checkpointDirName(step: number): string {
  return `${PREFIX}${step}`;
}

/**
 * Writes checkpoint-<step> under outputDir atomically and keeps the newest `keep` checkpoints.
 * Returns the checkpoint's path.
 */
export function saveCheckpoint(outputDir: string, content: CheckpointContent, options: { keep?: number } = {}): string {
  const { step } = content;
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`saveCheckpoint: step must be a non-negative integer, got ${step}`);
  const keep = options.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`saveCheckpoint: keep must be an integer ≥ 1, got ${keep}`);
  ensureWritableDir(outputDir, `saveCheckpoint: outputDir ${outputDir}`);
  removeStaleTemporaries(outputDir);
  const modelFile = content.modelFile ?? 'model.safetensors';
  if (!MODEL_FILES.includes(modelFile)) throw new RangeError(`saveCheckpoint: modelFile must be one of ${MODEL_FILES.join(', ')}, got ${JSON.stringify(modelFile)}`);
  const final = join(outputDir, checkpointDirName(step));
  // the same step saved again (a resumed run) replaces the old folder
  writeFolderAtomic(
    final,
    (tmp) => {
      const sizes: Record<string, number> = {};
      writeSafetensors(join(tmp, modelFile), content.model, { format: 'pt' });
      sizes[modelFile] = statSync(join(tmp, modelFile)).size;
      if (content.optimizer) {
        writeSafetensors(join(tmp, 'optimizer.safetensors'), content.optimizer, { format: 'pt' });
        sizes['optimizer.safetensors'] = statSync(join(tmp, 'optimizer.safetensors')).size;
      }
      for (const [name, data] of Object.entries(content.files ?? {})) {
        if (name.includes('/') || name.includes('\\') || name === STATE_FILE || name.startsWith('.')) {
          throw new RangeError(`saveCheckpoint: extra file name '${name}' is not allowed`);
        }
        writeFileAtomic(join(tmp, name), data);
        sizes[name] = statSync(join(tmp, name)).size;
      }
      const stateFile: StateFile = { format: CHECKPOINT_FORMAT, step, savedAt: new Date().toISOString(), files: sizes, state: content.state };
      writeFileAtomic(join(tmp, STATE_FILE), `${JSON.stringify(stateFile, null, 1)}\n`);
    },
    { tmpPrefix: `${TMP_PREFIX}${step}-` },
  );
  pruneCheckpoints(outputDir, keep);
  return final;
}

/** Temporary folders of processes that died mid-save (any pid but ours). */
function removeStaleTemporaries(outputDir: string): void {
  for (const name of readdirSync(outputDir)) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const pid = Number(name.split('-').at(-2));
    if (pid === process.pid) continue;
    rmSync(join(outputDir, name), { recursive: true, force: true });
  }
}

/** checkpoint-<step> folders under outputDir, oldest first (complete ones only exist under that name). */
export function listCheckpoints(outputDir: string): { step: number; path: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => ({ step: Number(n.slice(PREFIX.length)), path: join(outputDir, n) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * Deletes all but the newest `keep` checkpoints. A folder is first renamed to a temporary name (atomic), then
 * removed: a process killed mid-delete must never leave a half-deleted folder under a checkpoint's name
 * (the next save removes the leftover temporary).
 */
function pruneCheckpoints(outputDir: string, keep: number): void {
  const all = listCheckpoints(outputDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) {
    const doomed = join(outputDir, `${TMP_PREFIX}pruned-${c.step}-${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(c.path, doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
}

/** Loads and checks a checkpoint folder; throws naming the folder, the file and what is wrong. */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  const fail = (msg: string): never => {
    throw new Error(`loadCheckpoint: ${path}: ${msg}`);
  };
  if (!existsSync(path)) throw new Error(`loadCheckpoint: ${path} does not exist`);
  if (!statSync(path).isDirectory()) fail('not a folder (a checkpoint is a checkpoint-<step> folder)');
  if (!existsSync(join(path, STATE_FILE))) {
    fail(`${STATE_FILE} is missing: not a checkpoint folder, or a save that did not finish`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(path, STATE_FILE), 'utf8'));
  } catch (err) {
    throw new Error(`loadCheckpoint: ${path}: cannot read ${STATE_FILE}: ${(err as Error).message}`, { cause: err });
  }
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(raw)) return fail(`${STATE_FILE} is not a JSON object`);
  const parsed = raw as unknown as StateFile;
  if (parsed.format !== CHECKPOINT_FORMAT) fail(`format ${String(parsed.format)} is not ${CHECKPOINT_FORMAT}`);
  if (!Number.isSafeInteger(parsed.step) || parsed.step < 0) fail(`${STATE_FILE}: step ${JSON.stringify(parsed.step)} is not a non-negative integer`);
  if (!isObject(parsed.files)) fail(`${STATE_FILE}: files is missing or not an object`);
  if (!isObject(parsed.state)) fail(`${STATE_FILE}: state is missing or not an object`);
  const listed = MODEL_FILES.filter((f) => parsed.files[f] !== undefined);
  if (listed.length === 0) fail(`${STATE_FILE}: files does not list model.safetensors (nor a LoRA checkpoint's adapter_model.safetensors)`);
  if (listed.length > 1) fail(`${STATE_FILE}: files lists both ${listed.join(' and ')}: a checkpoint holds one of them`);
  const modelFile = listed[0];
  for (const [name, size] of Object.entries(parsed.files)) {
    if (name.includes('/') || name.includes('\\') || name === '..' || name === '.') fail(`${STATE_FILE}: file name ${JSON.stringify(name)} is not allowed`);
    if (!Number.isSafeInteger(size) || size < 0) fail(`${STATE_FILE}: the size of ${name}, ${JSON.stringify(size)}, is not a byte count`);
    const p = join(path, name);
    if (!existsSync(p)) fail(`${name} is missing`);
    const actual = statSync(p).size;
    if (actual !== size) fail(`${name} has ${actual} bytes, expected ${size}`);
  }
  const model = readSafetensors(join(path, modelFile), { copy: true }).tensors;
  const optimizer = parsed.files['optimizer.safetensors'] !== undefined
    ? readSafetensors(join(path, 'optimizer.safetensors'), { copy: true }).tensors
    : null;
  return { path, step: parsed.step, model, modelFile, optimizer, state: parsed.state };
}

/**
 * The newest checkpoint under outputDir that loads, or null. A checkpoint that fails its checks (a disk
 * error, a hand-edited file) is skipped in favour of the one before it; the result's `skipped` says which were
 * passed over and why (a trainer resuming from it logs them). `skipped`, when given, collects them too (also
 * when nothing loads).
 */
export function loadLatestCheckpoint(outputDir: string, skipped: { path: string; error: string }[] = []): LoadedCheckpoint | null {
  const all = listCheckpoints(outputDir);
  const before = skipped.length;
  for (let i = all.length - 1; i >= 0; i--) {
    try {
      const c = loadCheckpoint(all[i].path);
      if (skipped.length > before) c.skipped = skipped.slice(before);
      return c;
    } catch (err) {
      skipped.push({ path: all[i].path, error: (err as Error).message });
    }
  }
  return null;
}

/**
 * `--resume DIR`: DIR is a checkpoint folder itself or an outputDir holding checkpoints. Temporary folders of
 * an unfinished save (`.tmp-checkpoint-*`) are never chosen. Throws naming DIR and, when nothing loads, why
 * each checkpoint was refused.
 */
export function resolveResume(dir: string): LoadedCheckpoint {
  if (!existsSync(dir)) throw new Error(`resume: ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new Error(`resume: ${dir} is not a folder (pass a checkpoint-<step> folder or the output folder holding them)`);
  // a checkpoint folder itself (also one whose trainer-state.json is missing: loadCheckpoint says so)
  const looksLikeCheckpoint = /^checkpoint-\d+$/.test(basename(dir)) || MODEL_FILES.some((f) => existsSync(join(dir, f)));
  if (existsSync(join(dir, STATE_FILE)) || (looksLikeCheckpoint && listCheckpoints(dir).length === 0)) {
    try {
      return loadCheckpoint(dir);
    } catch (err) {
      throw new Error(`resume: ${(err as Error).message}`, { cause: err });
    }
  }
  const skipped: { path: string; error: string }[] = [];
  const latest = loadLatestCheckpoint(dir, skipped);
  if (!latest) {
    const why = skipped.length ? `: ${skipped.map((s) => s.error).join('; ')}` : ' (it holds no checkpoint-<step> folder)';
    throw new Error(`resume: no loadable checkpoint in ${dir}${why}`);
  }
  return latest;
}
