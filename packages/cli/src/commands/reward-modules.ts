/**
 * The rewards of `rlhf grpo | rloo`: the config file's `rewardFuncs`, a list whose entries are each one reward
 * (TRL's reward_funcs with reward_weights), paths relative to the config file's folder:
 *
 *   { "module": "rewards.mjs", "export": "correct", "name"?, "weight"?, "timeoutMs"? }
 *       a function the module exports ("export" absent: its default export), sync or async, called with the
 *       batch (@rlhf/core RewardInputs) and returning one number or null per completion. .js / .mjs / .cjs are
 *       imported as they are; .ts (and .mts / .cts) is compiled with esbuild when esbuild is installed.
 *   { "builtin": "answerMatch" | "formatMatch" | "lengthPenalty", "options"?: {...}, "name"?, "weight"? }
 *       the built-ins of @rlhf/core (answerMatch's "extract" and formatMatch's "pattern" are regular
 *       expressions written as strings, with an optional "flags")
 *   { "rewardModel": "models/rm", "name"?, "weight"? }
 *       a reward model trained by `rlhf rm` (with its reward-normalization.json)
 *
 * Every problem of the list is a problem of the command's config, by its path as written there (`grpo config:
 * ... rewardFuncs[1].options.pattern: ...`): the shape is checked with the rest of the config, all at once; a
 * module that does not load or does not export a function is named with the file and what it does export; two
 * rewards under one name (metrics are logged by name) are refused at the second's `name`.
 */
import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { answerMatch, ConfigError, formatMatch, lengthPenalty, loadRewardModel, rewardName, type ConfigProblem, type RewardFunction, type RewardInput, type Tokenizer } from '@rlhf/core';
import { sameTokenizer } from './train-common';

const BUILTINS = ['answerMatch', 'formatMatch', 'lengthPenalty'] as const;
/** Each built-in's options in a config file ("flags": of the regular expression given as a string). */
const BUILTIN_OPTIONS: Record<(typeof BUILTINS)[number], string[]> = {
  answerMatch: ['column', 'extract', 'flags', 'numeric', 'tolerance', 'caseSensitive', 'name'],
  formatMatch: ['pattern', 'flags', 'name'],
  lengthPenalty: ['maxTokens', 'perToken', 'name'],
};
const COMMON = ['name', 'weight', 'timeoutMs'];
const KEYS: Record<'module' | 'builtin' | 'rewardModel', string[]> = {
  module: ['module', 'export', ...COMMON],
  builtin: ['builtin', 'options', ...COMMON],
  rewardModel: ['rewardModel', 'name', 'weight'],
};

/** Problems of a rewardFuncs value, each by its path (checks the shape only; loading comes later). */
export function checkRewardFuncs(value: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!Array.isArray(value) || value.length === 0) return [{ field: 'rewardFuncs', message: 'must be a non-empty list of rewards ({ "module": ... }, { "builtin": ... } or { "rewardModel": ... })' }];
  value.forEach((e, i) => {
    const at = `rewardFuncs[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return out.push({ field: at, message: 'must be an object with "module", "builtin" or "rewardModel"' });
    const o = e as Record<string, unknown>;
    const kinds = (['module', 'builtin', 'rewardModel'] as const).filter((k) => k in o);
    if (kinds.length !== 1) return out.push({ field: at, message: `must have exactly one of "module", "builtin", "rewardModel", got ${kinds.length ? kinds.join(' and ') : 'none'}` });
    const kind = kinds[0];
    for (const k of Object.keys(o)) if (!KEYS[kind].includes(k)) out.push({ field: `${at}.${k}`, message: `unknown key for a "${kind}" reward (known: ${KEYS[kind].join(', ')})` });
    const str = (k: string, required: boolean) => {
      if (o[k] === undefined && !required) return;
      if (typeof o[k] !== 'string' || !(o[k] as string).length) out.push({ field: `${at}.${k}`, message: `must be a non-empty string, got ${JSON.stringify(o[k])}` });
    };
    str(kind, true);
    str('name', false);
    if (kind === 'module') str('export', false);
    if (o.weight !== undefined && !(typeof o.weight === 'number' && Number.isFinite(o.weight))) out.push({ field: `${at}.weight`, message: `must be a finite number, got ${JSON.stringify(o.weight)}` });
    if (o.timeoutMs !== undefined && o.timeoutMs !== null && !(typeof o.timeoutMs === 'number' && o.timeoutMs > 0)) out.push({ field: `${at}.timeoutMs`, message: `must be a number > 0 or null, got ${JSON.stringify(o.timeoutMs)}` });
    if (kind === 'builtin' && typeof o.builtin === 'string' && !(BUILTINS as readonly string[]).includes(o.builtin)) {
      out.push({ field: `${at}.builtin`, message: `must be one of ${BUILTINS.join(', ')}, got '${o.builtin}' (jsonSchemaReward takes a zod schema: export it from a module)` });
    }
    if (o.options !== undefined && (typeof o.options !== 'object' || o.options === null || Array.isArray(o.options))) out.push({ field: `${at}.options`, message: 'must be an object' });
    else if (o.options !== undefined && kind === 'builtin' && (BUILTINS as readonly string[]).includes(o.builtin as string)) {
      const known = BUILTIN_OPTIONS[o.builtin as (typeof BUILTINS)[number]];
      for (const k of Object.keys(o.options as object)) {
        if (!known.includes(k)) out.push({ field: `${at}.options.${k}`, message: `unknown option of ${o.builtin as string} (known: ${known.join(', ')})` });
      }
    }
  });
  return out;
}

/** Imports a reward module: .js/.mjs/.cjs as they are, .ts/.mts/.cts through esbuild (bundled next to the file, then removed). */
async function importModule(file: string, field: string, who: string): Promise<Record<string, unknown>> {
  if (!existsSync(file)) throw new ConfigError(who, [{ field, message: `${file} does not exist` }]);
  if (/\.[cm]?js$/.test(file)) return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  if (!/\.[cm]?ts$/.test(file)) throw new ConfigError(who, [{ field, message: `${file}: a reward module must be .js, .mjs, .cjs or .ts` }]);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new ConfigError(who, [{ field, message: `${file}: a .ts reward module is compiled with esbuild, which is not installed here (npm install --save-dev esbuild), or compile it to .mjs yourself` }]);
  }
  // bundled next to the source, so that its imports of packages resolve as they would from the source
  const out = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.mjs`);
  try {
    await esbuild.build({ entryPoints: [file], outfile: out, bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', logLevel: 'silent' });
  } catch (e) {
    const errs = (e as { errors?: Array<{ text: string; location?: { line: number } }> }).errors ?? [];
    const first = errs[0] ? `${errs[0].location ? `line ${errs[0].location.line}: ` : ''}${errs[0].text}` : (e as Error).message;
    throw new ConfigError(who, [{ field, message: `${file} does not compile: ${first}` }]);
  }
  try {
    return (await import(pathToFileURL(out).href)) as Record<string, unknown>;
  } finally {
    rmSync(out, { force: true });
  }
}

function regex(source: unknown, flags: unknown, field: string, who: string): RegExp {
  try {
    return new RegExp(String(source), typeof flags === 'string' ? flags : '');
  } catch (e) {
    throw new ConfigError(who, [{ field, message: `not a valid regular expression: ${(e as Error).message}` }]);
  }
}

function builtin(name: string, options: Record<string, unknown>, field: string, who: string): RewardFunction {
  switch (name) {
    case 'answerMatch': {
      const { flags, ...rest } = options; // flags belong to extract's regular expression
      return answerMatch({ ...rest, extract: options.extract === undefined ? undefined : regex(options.extract, flags, `${field}.options.extract`, who) } as Parameters<typeof answerMatch>[0]);
    }
    case 'formatMatch':
      if (typeof options.pattern !== 'string') throw new ConfigError(who, [{ field: `${field}.options.pattern`, message: 'formatMatch needs a "pattern" (a regular expression as a string)' }]);
      return formatMatch(regex(options.pattern, options.flags, `${field}.options.pattern`, who), { name: options.name as string | undefined });
    default:
      return lengthPenalty(options as Parameters<typeof lengthPenalty>[0]);
  }
}

/**
 * The rewards of a checked rewardFuncs list (checkRewardFuncs), loaded: modules imported, built-ins made,
 * reward models loaded (and checked to read the policy's tokenizer). `baseDir`: where relative paths start.
 */
export async function loadRewardFuncs(entries: unknown, baseDir: string, tokenizer: Tokenizer, who: string): Promise<RewardInput[]> {
  const list = entries as Array<Record<string, unknown>>;
  const out: RewardInput[] = [];
  for (const [i, e] of list.entries()) {
    const at = `rewardFuncs[${i}]`;
    const path = (p: unknown) => (isAbsolute(String(p)) ? String(p) : resolve(baseDir, String(p)));
    const common = { ...(e.name === undefined ? {} : { name: e.name as string }), ...(e.weight === undefined ? {} : { weight: e.weight as number }) };
    if ('rewardModel' in e) {
      const dir = path(e.rewardModel);
      sameTokenizer(tokenizer, dir, `${at}.rewardModel`);
      out.push({ ...loadRewardModel(dir), ...common });
      continue;
    }
    const timeout = e.timeoutMs === undefined ? {} : { timeoutMs: e.timeoutMs as number | null };
    if ('builtin' in e) {
      let fn: RewardFunction;
      try {
        fn = builtin(String(e.builtin), (e.options ?? {}) as Record<string, unknown>, at, who);
      } catch (err) {
        // core's check of an option's type (answerMatch: option 'tolerance' must be ...), by its path here
        if (err instanceof ConfigError || !(err instanceof TypeError || err instanceof RangeError)) throw err;
        const option = /option '(\w+)'/.exec(err.message)?.[1];
        throw new ConfigError(who, [{ field: `${at}.options${option ? `.${option}` : ''}`, message: err.message }]);
      }
      out.push({ fn, ...common, ...timeout });
      continue;
    }
    const file = path(e.module);
    let mod: Record<string, unknown>;
    try {
      mod = await importModule(file, `${at}.module`, who);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(who, [{ field: `${at}.module`, message: `${file} does not load: ${(err as Error).message}` }]);
    }
    const name = (e.export as string | undefined) ?? 'default';
    // a CommonJS module imported from ESM puts module.exports on default
    const fn = mod[name] ?? (mod.default as Record<string, unknown> | undefined)?.[name];
    if (typeof fn !== 'function') {
      const has = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new ConfigError(who, [{
        field: `${at}.${e.export === undefined ? 'module' : 'export'}`,
        message: `${file} exports no function named '${name}'${has.length ? ` (its functions: ${has.join(', ')})` : ' (it exports no function)'}`,
      }]);
    }
    out.push({ fn: fn as RewardFunction, name: (e.name as string | undefined) ?? (name === 'default' ? fn.name || basename(file).replace(/\.[^.]*$/, '') : name), ...common, ...timeout });
  }
  // metrics are logged by name: two rewards under one name are refused here, by path (not by the trainer's index)
  const seen = new Map<string, number>();
  out.forEach((r, i) => {
    const name = rewardName(r, i);
    const j = seen.get(name);
    if (j !== undefined) {
      throw new ConfigError(who, [{ field: `rewardFuncs[${i}].name`, message: `'${name}' is also the name of rewardFuncs[${j}]; give each reward a distinct "name" (their metrics are logged by name)` }]);
    }
    seen.set(name, i);
  });
  return out;
}
