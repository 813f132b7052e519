/**
 * Typed, documented, validated trainer configs. Each config is described once by a spec table (group,
 * documentation, type, default, bounds); from it come the defaults, the validation that reports every
 * problem at once by field name, and the CLI flags (`--learning-rate 1e-5`) with their help text.
 * Names are TRL's in camelCase.
 */

export type FieldType = 'number' | 'integer' | 'boolean' | 'string' | 'enum' | 'strings' | 'object';
/** 'strings': one non-empty string or a non-empty list of them; 'object': a group of fields (`fields`) */
export type FieldValue = number | boolean | string | string[] | Record<string, unknown> | null;

export interface FieldSpec {
  /** section of the documentation and of `--help` */
  group: string;
  doc: string;
  type: FieldType;
  default: FieldValue;
  /** null is allowed (means "off" or "derive it"; the doc says which) */
  nullable?: boolean;
  /** inclusive bounds */
  min?: number;
  max?: number;
  /** exclusive bounds */
  gt?: number;
  lt?: number;
  /** enum members */
  values?: readonly string[];
  /** the fields of an 'object' (e.g. `lora: { r, alpha, ... }`), each checked as `parent.field` */
  fields?: Record<string, FieldSpec>;
}

export type ConfigSpec<T> = { [K in keyof T]-?: FieldSpec };

export interface ConfigProblem {
  field: string;
  message: string;
}

/** Thrown with every problem of a config, each naming its field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly configName: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${configName}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p.field}: ${p.message}`).join('\n'),
    );
  }
}

function describe(spec: FieldSpec): string {
  switch (spec.type) {
    case 'enum':
      return `one of ${spec.values!.map((v) => `'${v}'`).join(', ')}`;
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a finite number';
    case 'boolean':
      return 'true or false';
    case 'strings':
      return 'a string or a list of strings';
    case 'object':
      return `an object of ${Object.keys(spec.fields ?? {}).join(', ')}`;
    default:
      return 'a string';
  }
}

/** Problems of one value against its spec (empty when it is valid). */
export function checkField(field: string, spec: FieldSpec, value: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const fail = (message: string) => out.push({ field, message });
  if (value === null) {
    if (!spec.nullable) fail(`must be ${describe(spec)}, got null`);
    return out;
  }
  const got = typeof value === 'string' ? `'${value}'` : Array.isArray(value) ? 'an array' : String(value);
  switch (spec.type) {
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return [{ field, message: `must be ${describe(spec)}, got ${got}` }];
      if (spec.type === 'integer' && !Number.isInteger(value)) fail(`must be an integer, got ${value}`);
      if (spec.min !== undefined && value < spec.min) fail(`must be ≥ ${spec.min}, got ${value}`);
      if (spec.max !== undefined && value > spec.max) fail(`must be ≤ ${spec.max}, got ${value}`);
      if (spec.gt !== undefined && !(value > spec.gt)) fail(`must be > ${spec.gt}, got ${value}`);
      if (spec.lt !== undefined && !(value < spec.lt)) fail(`must be < ${spec.lt}, got ${value}`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(`must be true or false, got ${got}`);
      break;
    case 'string':
      if (typeof value !== 'string') fail(`must be a string, got ${got}`);
      else if (value.length === 0) fail('must not be empty');
      break;
    case 'enum':
      if (typeof value !== 'string' || !spec.values!.includes(value)) fail(`must be ${describe(spec)}, got ${got}`);
      break;
    case 'strings':
      if (typeof value === 'string') {
        if (value.length === 0) fail('must not be empty');
      } else if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' || v.length === 0)) {
        fail(`must be ${describe(spec)} (non-empty), got ${Array.isArray(value) ? JSON.stringify(value) : got}`);
      }
      break;
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [{ field, message: `must be ${describe(spec)}${spec.nullable ? ' or null' : ''}, got ${got}` }];
      const fields = spec.fields ?? {};
      for (const key of Object.keys(value)) {
        if (!Object.hasOwn(fields, key)) {
          const hint = suggestField(key, Object.keys(fields));
          fail(`unknown field ${key}${hint ? ` (did you mean ${hint}?)` : ''}`);
        }
      }
      const v = value as Record<string, unknown>;
      for (const [k, sub] of Object.entries(fields)) out.push(...checkField(`${field}.${k}`, sub, k in v ? v[k] : sub.default));
      break;
    }
  }
  return out;
}

function camelCase(s: string): string {
  return s.replace(/[_-]+([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/** The known field an unknown key probably meant: snake_case of it, a case slip, a close spelling, or a prefix of it. */
export function suggestField(key: string, known: string[]): string | undefined {
  const cc = camelCase(key);
  const exact = known.find((k) => k === cc || k.toLowerCase() === key.toLowerCase() || k.toLowerCase() === cc.toLowerCase());
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(cc.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  if (bestD <= Math.max(2, Math.floor(key.length / 4))) return best;
  // a shorter name of a field (TRL's `epsilon` for epsilonLow): the first field it begins
  return cc.length >= 4 ? known.find((k) => k.toLowerCase().startsWith(cc.toLowerCase())) : undefined;
}

/** Every field at its default. */
export function defaultsOf<T>(spec: ConfigSpec<T>): T {
  const out: Record<string, FieldValue> = {};
  for (const [k, s] of Object.entries(spec) as [string, FieldSpec][]) out[k] = s.default;
  return out as T;
}

/**
 * Defaults overlaid with `input` (a checked config), the fields of a given 'object' field completed with their
 * defaults (`lora: { r: 16 }` -> `lora: { r: 16, alpha: 8, ... }`).
 */
export function withDefaults<T>(spec: ConfigSpec<T>, input: unknown): T {
  const out = { ...defaultsOf(spec), ...((input ?? {}) as object) } as Record<string, unknown>;
  for (const [k, s] of Object.entries(spec) as [string, FieldSpec][]) {
    const v = out[k];
    if (s.type === 'object' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = { ...Object.fromEntries(Object.entries(s.fields ?? {}).map(([f, fs]) => [f, fs.default])), ...v };
    }
  }
  return out as T;
}

/**
 * All problems of a candidate config: not an object, unknown keys (with a suggestion), wrong types and
 * bounds per field, then the cross-field `rules` on the fields that passed. Missing keys take defaults.
 */
export function validateConfig<T>(
  spec: ConfigSpec<T>,
  input: unknown,
  rules?: (config: T, ok: (field: keyof T & string) => boolean) => ConfigProblem[],
): ConfigProblem[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ field: '(config)', message: `must be a JSON object, got ${Array.isArray(input) ? 'an array' : input === null ? 'null' : typeof input}` }];
  }
  const problems: ConfigProblem[] = [];
  const known = Object.keys(spec);
  const bad = new Set<string>();
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(spec, key)) {
      const s = suggestField(key, known);
      problems.push({ field: key, message: `unknown field${s ? ` (did you mean ${s}?)` : ''}` });
    }
  }
  const merged = withDefaults(spec, input);
  for (const [k, s] of Object.entries(spec) as [string, FieldSpec][]) {
    const p = checkField(k, s, (merged as Record<string, unknown>)[k]);
    if (p.length) bad.add(k);
    problems.push(...p);
  }
  if (rules) problems.push(...rules(merged, (f) => !bad.has(f)));
  return problems;
}

/**
 * A field that only `when` makes anything read must keep its default otherwise: set, it would be accepted and
 * ignored. Returns the problem naming it and what it needs (`needs`), or nothing.
 */
export function unusedUnless<T>(spec: ConfigSpec<T>, config: T, ok: (field: keyof T & string) => boolean, field: keyof T & string, when: boolean, needs: string): ConfigProblem[] {
  const value = config[field] as unknown;
  if (when || !ok(field) || value === (spec[field] as FieldSpec).default) return [];
  return [{ field, message: `is used only ${needs}, got ${JSON.stringify(value)} without it (it would be ignored)` }];
}

/** Defaults overlaid with `input`, or a ConfigError listing every problem. */
export function resolveConfig<T>(
  name: string,
  spec: ConfigSpec<T>,
  input: unknown,
  rules?: (config: T, ok: (field: keyof T & string) => boolean) => ConfigProblem[],
): T {
  const problems = validateConfig(spec, input ?? {}, rules);
  if (problems.length) throw new ConfigError(name, problems);
  return withDefaults(spec, input);
}

/**
 * A command-line string to a field value (`--learning-rate 1e-5`, `--packing true`, `--stop-token-id null`).
 * Returns the raw string when it cannot be converted, so validation reports it by field name with the
 * rest of the problems instead of the parser stopping at the first one. 'strings': `a,b,c` is a list (one word a
 * list of one), `regex:P` the string P. 'object': `true` / `on` turns the group
 * on with its defaults, a JSON object gives some of its fields (the others come from `--<field>-<sub>` flags).
 */
export function parseFieldValue(spec: FieldSpec, raw: string): unknown {
  const t = raw.trim();
  if (spec.nullable && (t === 'null' || t === 'none')) return null;
  switch (spec.type) {
    case 'strings':
      if (t.startsWith('regex:')) return t.slice('regex:'.length);
      return t.split(',').map((x) => x.trim());
    case 'object':
      if (['true', 'on', 'yes'].includes(t.toLowerCase())) return {};
      try {
        return JSON.parse(t) as unknown;
      } catch {
        return raw;
      }
    case 'number':
    case 'integer': {
      if (t === '') return raw;
      const n = Number(t);
      return Number.isNaN(n) ? raw : n;
    }
    case 'boolean':
      if (['true', '1', 'yes'].includes(t.toLowerCase())) return true;
      if (['false', '0', 'no'].includes(t.toLowerCase())) return false;
      return raw;
    default:
      return raw;
  }
}

/** `learningRate` → `learning-rate` (the CLI flag). */
export function flagName(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
