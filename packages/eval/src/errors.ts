/**
 * Bad benchmark input is reported by file, line (1-based; for a JSON array, the element's index + 1) and
 * field, so that a user can open the file at the place that is wrong.
 */
export class EvalDataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}:${line}: ${field}: ${detail}`);
    this.name = 'EvalDataError';
  }
}

/** Reads JSON Lines, calling `each(record, lineNumber)`; a line that is not JSON is an EvalDataError. */
export function parseJsonLines<T>(text: string, file: string, each: (rec: unknown, line: number) => T, limit = Infinity): T[] {
  const out: T[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && out.length < limit; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(l);
    } catch (e) {
      throw new EvalDataError(file, i + 1, '(line)', `not valid JSON (${(e as Error).message})`);
    }
    out.push(each(rec, i + 1));
  }
  return out;
}

/** Field accessors that throw EvalDataError naming the field. */
export function fieldReader(file: string, line: number, rec: unknown) {
  if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw new EvalDataError(file, line, '(record)', 'expected a JSON object');
  const o = rec as Record<string, unknown>;
  const get = (path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
  return {
    str(path: string): string {
      const v = get(path);
      if (typeof v !== 'string') throw new EvalDataError(file, line, path, `expected a string, got ${describe(v)}`);
      return v;
    },
    num(path: string): number {
      const v = get(path);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new EvalDataError(file, line, path, `expected a number, got ${describe(v)}`);
      return v;
    },
    optNum(path: string): number | undefined {
      const v = get(path);
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new EvalDataError(file, line, path, `expected a number, got ${describe(v)}`);
      return v;
    },
    strArray(path: string): string[] {
      const v = get(path);
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new EvalDataError(file, line, path, `expected an array of strings, got ${describe(v)}`);
      return v as string[];
    },
    numArray(path: string): number[] {
      const v = get(path);
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new EvalDataError(file, line, path, `expected an array of numbers, got ${describe(v)}`);
      return v as number[];
    },
    raw: get,
  };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
