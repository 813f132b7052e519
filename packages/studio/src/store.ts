/**
 * The project's SQLite database (studio.db in the project folder): labelers, items, who is assigned what,
 * and submissions. Every write is one transaction; WAL with synchronous=FULL means a transaction that has
 * returned is on disk, so a server killed the moment after it answered "saved" still has the label.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Text } from '@rlhf/data';
import { type Submission, type TaskType, TASK_TYPES, needsPrompt, completionCount, K_MIN, K_MAX } from './tasks';

export const DB_FILE = 'studio.db';

export interface Labeler {
  id: number;
  name: string;
  admin: boolean;
}

export interface Item {
  id: number;
  task: TaskType;
  prompt: Text | null;
  completions: Text[];
  overlap: number;
  source: string | null;
}

export interface StoredSubmission {
  id: number;
  itemId: number;
  labeler: string;
  payload: Submission;
  createdAt: string;
}

export interface NewItem {
  task: TaskType;
  prompt?: Text;
  completions?: Text[];
  overlap: number;
  source?: string;
}

/** A token as stored: its SHA-256. Tokens are 192 random bits, so a fast hash without salt is enough. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS labelers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  token_hash TEXT NOT NULL UNIQUE,
  admin INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  task TEXT NOT NULL,
  prompt TEXT,
  completions TEXT NOT NULL DEFAULT '[]',
  overlap INTEGER NOT NULL,
  source TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE IF NOT EXISTS assignments (
  item_id INTEGER NOT NULL REFERENCES items(id),
  labeler_id INTEGER NOT NULL REFERENCES labelers(id),
  PRIMARY KEY (item_id, labeler_id)
);
CREATE TABLE IF NOT EXISTS submissions (
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items(id),
  labeler_id INTEGER NOT NULL REFERENCES labelers(id),
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  UNIQUE (item_id, labeler_id)
);
`;

/**
 * Opens the SQLite file. better-sqlite3 loads its native addon here, on first use: when the addon was never built
 * (npm skips a dependency's install script until it is approved) or was built for another Node, the error says
 * so and what to run, instead of better-sqlite3's list of paths it tried.
 */
function openDatabase(file: string): Database.Database {
  try {
    return new Database(file);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (!/bindings file|NODE_MODULE_VERSION|compiled against a different Node|invalid ELF header|cannot open shared object/i.test(msg)) throw err;
    throw new Error(
      `@rlhf/studio: the SQLite addon of better-sqlite3 is missing or unusable, so ${file} cannot be opened. ` +
        'Its install script fetches a prebuilt binary or compiles one (python3, make and a C++ compiler); npm skips ' +
        'the install scripts of dependencies that are not approved: run `npm install-scripts approve better-sqlite3` ' +
        `and \`npm rebuild better-sqlite3\` in your project. (better-sqlite3 said: ${msg.split('\n')[0]})`,
      { cause: err },
    );
  }
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync never returns for a path under /proc (it loops
 * at 100% CPU), so a --project there would hang; this fails with the error of the level that cannot be made.
 */
export function makeDirs(dir: string): void {
  const full = resolve(dir);
  const missing: string[] = [];
  for (let d = full; !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) mkdirSync(d);
}

export class StudioStore {
  // Private: the SQLite handle is no part of the API (and its type would tie the published types to
  // @types/better-sqlite3, a devDependency).
  private readonly db: Database.Database;

  constructor(readonly projectDir: string) {
    makeDirs(projectDir);
    this.db = openDatabase(join(projectDir, DB_FILE));
    this.db.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, not only at checkpoints; "saved" must survive power loss too.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  /** Creates a labeler and returns the token; only its hash is kept, so this is the one time it is seen. */
  createLabeler(name: string, admin = false): { labeler: Labeler; token: string } {
    const clean = name.trim();
    if (!/^[\w.@-]{1,64}$/.test(clean)) throw new RangeError('a labeler name is 1-64 letters, digits, or . _ @ -');
    if (this.db.prepare('SELECT 1 FROM labelers WHERE name = ?').get(clean)) throw new RangeError(`a labeler named ${clean} exists`);
    const token = randomBytes(24).toString('base64url');
    const id = this.db.transaction(() => {
      const r = this.db.prepare('INSERT INTO labelers (name, token_hash, admin) VALUES (?, ?, ?)').run(clean, hashToken(token), admin ? 1 : 0);
      this.assignOpenItems();
      return Number(r.lastInsertRowid);
    })();
    return { labeler: { id, name: clean, admin }, token };
  }

  /** The labeler a token belongs to, or undefined. */
  authenticate(token: string): Labeler | undefined {
    const row = this.db.prepare('SELECT id, name, admin FROM labelers WHERE token_hash = ?').get(hashToken(token)) as { id: number; name: string; admin: number } | undefined;
    return row ? { id: row.id, name: row.name, admin: row.admin === 1 } : undefined;
  }

  hasAdmin(): boolean {
    return this.db.prepare('SELECT 1 FROM labelers WHERE admin = 1').get() !== undefined;
  }

  labelers(): Labeler[] {
    return (this.db.prepare('SELECT id, name, admin FROM labelers ORDER BY id').all() as Array<{ id: number; name: string; admin: number }>).map((r) => ({ id: r.id, name: r.name, admin: r.admin === 1 }));
  }

  /** Adds items (one transaction) and assigns each to up to `overlap` labelers. */
  addItems(items: NewItem[]): number[] {
    for (const it of items) {
      if (!TASK_TYPES.includes(it.task)) throw new RangeError(`unknown task type ${String(it.task)}`);
      if (!Number.isInteger(it.overlap) || it.overlap < 1 || it.overlap > 50) throw new RangeError('overlap must be a whole number from 1 to 50');
      if (needsPrompt(it.task) && it.prompt === undefined) throw new RangeError(`a ${it.task} item needs a prompt`);
      const n = it.completions?.length ?? 0;
      const want = completionCount(it.task, n);
      if (it.task === 'ranking' || it.task === 'likert') {
        if (n < K_MIN || n > K_MAX) throw new RangeError(`a ${it.task} item needs ${K_MIN} to ${K_MAX} completions, got ${n}`);
      } else if (n !== want) throw new RangeError(`a ${it.task} item needs ${want} completions, got ${n}`);
    }
    const insert = this.db.prepare('INSERT INTO items (task, prompt, completions, overlap, source) VALUES (?, ?, ?, ?, ?)');
    return this.db.transaction(() => {
      const ids = items.map((it) => Number(insert.run(it.task, it.prompt === undefined ? null : JSON.stringify(it.prompt), JSON.stringify(it.completions ?? []), it.overlap, it.source ?? null).lastInsertRowid));
      this.assignOpenItems();
      return ids;
    })();
  }

  /**
   * Gives every item that has fewer assignees than its overlap to the non-admin labelers with the fewest open
   * items, so that a labeler added later picks up work and the load stays even.
   */
  private assignOpenItems(): void {
    const labelers = this.db.prepare('SELECT id FROM labelers WHERE admin = 0').all() as Array<{ id: number }>;
    if (labelers.length === 0) return;
    const open = new Map<number, number>();
    for (const l of labelers) open.set(l.id, 0);
    const counts = this.db.prepare(`SELECT a.labeler_id AS id, COUNT(*) AS n FROM assignments a
      LEFT JOIN submissions s ON s.item_id = a.item_id AND s.labeler_id = a.labeler_id
      WHERE s.id IS NULL GROUP BY a.labeler_id`).all() as Array<{ id: number; n: number }>;
    for (const c of counts) if (open.has(c.id)) open.set(c.id, c.n);
    const short = this.db.prepare(`SELECT i.id, i.overlap, COUNT(a.labeler_id) AS n FROM items i
      LEFT JOIN assignments a ON a.item_id = i.id GROUP BY i.id HAVING n < i.overlap ORDER BY i.id`).all() as Array<{ id: number; overlap: number; n: number }>;
    const assigned = this.db.prepare('SELECT labeler_id FROM assignments WHERE item_id = ?');
    const insert = this.db.prepare('INSERT INTO assignments (item_id, labeler_id) VALUES (?, ?)');
    for (const item of short) {
      const have = new Set((assigned.all(item.id) as Array<{ labeler_id: number }>).map((r) => r.labeler_id));
      const candidates = labelers.filter((l) => !have.has(l.id)).sort((a, b) => open.get(a.id)! - open.get(b.id)! || a.id - b.id);
      for (const l of candidates.slice(0, item.overlap - item.n)) {
        insert.run(item.id, l.id);
        open.set(l.id, open.get(l.id)! + 1);
      }
    }
  }

  private rowToItem(r: { id: number; task: string; prompt: string | null; completions: string; overlap: number; source: string | null }): Item {
    return { id: r.id, task: r.task as TaskType, prompt: r.prompt === null ? null : (JSON.parse(r.prompt) as Text), completions: JSON.parse(r.completions) as Text[], overlap: r.overlap, source: r.source };
  }

  /** The items assigned to this labeler that they have not submitted, oldest first. */
  queue(labelerId: number): Item[] {
    const rows = this.db.prepare(`SELECT i.* FROM items i JOIN assignments a ON a.item_id = i.id AND a.labeler_id = ?
      WHERE NOT EXISTS (SELECT 1 FROM submissions s WHERE s.item_id = i.id AND s.labeler_id = a.labeler_id) ORDER BY i.id`).all(labelerId);
    return (rows as Parameters<StudioStore['rowToItem']>[0][]).map((r) => this.rowToItem(r));
  }

  /** An item, only when it is assigned to this labeler (a labeler cannot read other people's work). */
  itemFor(labelerId: number, itemId: number): Item | undefined {
    const r = this.db.prepare('SELECT i.* FROM items i JOIN assignments a ON a.item_id = i.id WHERE i.id = ? AND a.labeler_id = ?').get(itemId, labelerId);
    return r ? this.rowToItem(r as Parameters<StudioStore['rowToItem']>[0]) : undefined;
  }

  /**
   * Stores a submission in one committed transaction. A second submission for the same item by the same
   * labeler replaces the first (a labeler may correct themselves before export).
   */
  submit(labelerId: number, itemId: number, payload: Submission): number {
    const r = this.db
      .prepare(`INSERT INTO submissions (item_id, labeler_id, payload) VALUES (?, ?, ?)
        ON CONFLICT (item_id, labeler_id) DO UPDATE SET payload = excluded.payload, created_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
        RETURNING id`)
      .get(itemId, labelerId, JSON.stringify(payload)) as { id: number };
    return r.id;
  }

  items(): Item[] {
    return (this.db.prepare('SELECT * FROM items ORDER BY id').all() as Parameters<StudioStore['rowToItem']>[0][]).map((r) => this.rowToItem(r));
  }

  submissions(): StoredSubmission[] {
    const rows = this.db.prepare(`SELECT s.id, s.item_id, l.name, s.payload, s.created_at FROM submissions s JOIN labelers l ON l.id = s.labeler_id ORDER BY s.item_id, l.name`).all() as Array<{ id: number; item_id: number; name: string; payload: string; created_at: string }>;
    return rows.map((r) => ({ id: r.id, itemId: r.item_id, labeler: r.name, payload: JSON.parse(r.payload) as Submission, createdAt: r.created_at }));
  }

  /** Per labeler: items assigned and done. */
  progress(): Array<{ labeler: string; assigned: number; done: number }> {
    return this.db.prepare(`SELECT l.name AS labeler, COUNT(a.item_id) AS assigned, COUNT(s.id) AS done FROM labelers l
      LEFT JOIN assignments a ON a.labeler_id = l.id
      LEFT JOIN submissions s ON s.item_id = a.item_id AND s.labeler_id = l.id
      WHERE l.admin = 0 GROUP BY l.id ORDER BY l.name`).all() as Array<{ labeler: string; assigned: number; done: number }>;
  }
}
