/**
 * What JSON.parse does not say about a text: a key that appears twice in one object (JSON.parse keeps the
 * last value without a word, so `{"chosen": "a", "chosen": "b"}` would silently become one of two records),
 * and where the items of a JSON array begin and end (so that one bad item of an array file is reported with
 * its row and line, and the others are still read, instead of the whole file failing with a message that has
 * no position).
 *
 * Both scan the text once, jumping over strings with indexOf; they cost a fraction of JSON.parse.
 */

/** The end (index of the closing quote) of the string that opens at `i`; -1 when it is not closed. */
function stringEnd(s: string, i: number): number {
  let j = s.indexOf('"', i + 1);
  while (j >= 0) {
    let b = j - 1;
    while (s.charCodeAt(b) === 0x5c) b--; // backslashes before the quote: an odd count escapes it
    if ((j - 1 - b) % 2 === 0) return j;
    j = s.indexOf('"', j + 1);
  }
  return -1;
}

interface Level {
  /** Keys seen in this object (undefined: an array). Small objects use a list, large ones a Set. */
  keys?: string[] | Set<string>;
  /** The current key (object) or index (array), for the path. */
  at: string | number;
}

function pathOf(stack: Level[], key: string): string {
  let s = '';
  for (let k = 0; k < stack.length - 1; k++) {
    const at = stack[k].at;
    s += typeof at === 'number' ? `[${at}]` : s ? `.${at}` : at;
  }
  return s ? `${s}.${key}` : key;
}

/** Keys an object may have before its duplicate check switches from a list to a Set (no quadratic time). */
const LIST_KEYS = 32;

/** The text of the key string s[i..j] (quotes at i and j), escapes decoded: "\u0061" and "a" are one key. */
function keyAt(s: string, i: number, j: number): string {
  const key = s.slice(i + 1, j);
  return key.includes('\\') ? (JSON.parse(s.slice(i, j + 1)) as string) : key;
}

// Scratch space of the fast pass, reused from row to row: key positions and lengths, and the open brackets.
let keyPos = new Int32Array(256);
let keyLen = new Int32Array(256);
let opens = new Int32Array(64);

function sameKey(s: string, a: number, b: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (s.charCodeAt(a + k) !== s.charCodeAt(b + k)) return false;
  return true;
}

/**
 * Whether some object in the JSON text `s` may have a key twice: the fast pass run on every row. It
 * compares the keys' text in place (no string is made); the keys of the open objects are one list, a closed
 * object's keys cut off its end. A key written with an escape, or an object with many keys, sends the row to
 * the exact pass (`firstDuplicatePath`), which decodes keys and uses a Set.
 */
function mayHaveDuplicateKey(s: string): boolean {
  let nKeys = 0;
  let depth = 0;
  let expectKey = false;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      const j = stringEnd(s, i);
      if (j < 0) return false;
      if (expectKey) {
        const from = opens[depth - 1];
        const len = j - i - 1;
        if (nKeys - from >= LIST_KEYS) return true;
        for (let k = from; k < nKeys; k++) {
          if (keyLen[k] === len && sameKey(s, keyPos[k], i + 1, len)) return true;
        }
        for (let k = i + 1; k < j; k++) if (s.charCodeAt(k) === 0x5c) return true; // an escaped key: "\u0061" is "a"
        if (nKeys === keyPos.length) {
          const p = new Int32Array(nKeys * 2);
          p.set(keyPos);
          keyPos = p;
          const l = new Int32Array(nKeys * 2);
          l.set(keyLen);
          keyLen = l;
        }
        keyPos[nKeys] = i + 1;
        keyLen[nKeys] = len;
        nKeys++;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (depth === opens.length) {
        const o = new Int32Array(depth * 2);
        o.set(opens);
        opens = o;
      }
      opens[depth++] = c === 0x7b ? nKeys : -1;
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      const from = opens[--depth];
      if (from >= 0) nKeys = from;
      expectKey = false;
    } else if (c === 0x2c) {
      if (depth > 0 && opens[depth - 1] >= 0) expectKey = true;
    }
  }
  return false;
}

/**
 * The path (`chosen`, `messages[1].role`) of the first key that appears twice in the same object, or
 * undefined. `s` must be valid JSON (call it after JSON.parse succeeded).
 */
export function duplicateKeyPath(s: string): string | undefined {
  return mayHaveDuplicateKey(s) ? firstDuplicatePath(s) : undefined;
}

/** The path of the first duplicate key: the slower pass, run only on a row that has one. */
function firstDuplicatePath(s: string): string | undefined {
  const stack: Level[] = [];
  let expectKey = false;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      const j = stringEnd(s, i);
      if (j < 0) return undefined; // not valid JSON: not ours to report
      if (expectKey) {
        const key = keyAt(s, i, j);
        const top = stack[stack.length - 1];
        const keys = top.keys!;
        if (Array.isArray(keys)) {
          if (keys.includes(key)) return pathOf(stack, key);
          keys.push(key);
          if (keys.length > LIST_KEYS) top.keys = new Set(keys);
        } else {
          if (keys.has(key)) return pathOf(stack, key);
          keys.add(key);
        }
        top.at = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push({ keys: [], at: '' });
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push({ at: 0 });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) (top.at as number)++;
    }
  }
  return undefined;
}

export interface ArrayItem {
  /** The item's text (trimmed). */
  text: string;
  /** 1-based line where the item starts. */
  line: number;
  /** 1-based line where it ends. */
  endLine: number;
}

export interface ArrayScan {
  items: ArrayItem[];
  /** A problem of the array's structure (unclosed, text after it): the items before it are still good. */
  problem?: { line: number; message: string };
}

/**
 * The top-level items of a JSON array text, each with its line, without parsing them. Brackets are counted
 * outside strings only; an item with unbalanced brackets shows up as an item that does not parse (or as a
 * structural problem), never as a silently different item.
 */
export function splitJsonArray(s: string): ArrayScan {
  const items: ArrayItem[] = [];
  let i = 0;
  let line = 1;
  const n = s.length;
  const skipWs = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x0a) line++;
      else if (c !== 0x20 && c !== 0x09 && c !== 0x0d) break;
      i++;
    }
  };
  skipWs();
  if (s.charCodeAt(i) !== 0x5b) return { items, problem: { line, message: 'expected "[" at the start of a JSON array' } };
  i++;
  let depth = 0; // inside the current item
  let start = -1;
  let startLine = line;
  const push = (end: number) => {
    if (start >= 0) items.push({ text: s.slice(start, end).trim(), line: startLine, endLine: line });
    start = -1;
  };
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      i++;
      continue;
    }
    if (start < 0 && c !== 0x20 && c !== 0x09 && c !== 0x0d && !(depth === 0 && (c === 0x2c || c === 0x5d))) {
      start = i;
      startLine = line;
    }
    if (c === 0x22) {
      const j = stringEnd(s, i);
      if (j < 0) return { items, problem: { line: startLine, message: `a string that starts on line ${line} is never closed (the file may be truncated)` } };
      for (let k = s.indexOf('\n', i); k >= 0 && k < j; k = s.indexOf('\n', k + 1)) line++;
      i = j + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) {
        if (c === 0x7d) return { items, problem: { line, message: 'a "}" with no "{" before it' } };
        // the closing bracket of the array
        if (start >= 0) push(i);
        else if (items.length > 0 && s.slice(0, i).trimEnd().endsWith(',')) return { items, problem: { line, message: 'a "," before the closing "]" (a trailing comma is not JSON)' } };
        i++;
        skipWs();
        if (i < n) return { items, problem: { line, message: `text after the closing "]" of the array (${JSON.stringify(s.slice(i, i + 20))})` } };
        return { items };
      }
      depth--;
    } else if (c === 0x2c && depth === 0) {
      if (start < 0) return { items, problem: { line, message: 'an empty item (two commas in a row, or a comma after "[")' } };
      push(i);
    }
    i++;
  }
  if (start >= 0) return { items, problem: { line: startLine, message: `the item that starts on line ${startLine} is not closed and the array has no closing "]" (the file may be truncated)` } };
  return { items, problem: { line, message: 'the array has no closing "]" (the file may be truncated)' } };
}
