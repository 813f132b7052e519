// node lock-closure.mjs NAME...: prints, one per line, the paths (relative to the repository root) of the installed
// root node_modules folders that the named packages need to load: each package and, recursively, its dependencies
// and optional dependencies as package-lock.json resolves them (a nested node_modules first, as node does), plus
// their node_modules/.bin links. Folders not installed here (another platform's optional binaries) are left out.
// bench/gpu-carry.sh tars them for a GPU machine that has no network. Run from the repository root.
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages;

/** The lock key node would load `name` from when required inside the folder `from` ('' for the root). */
function resolveIn(name, from) {
  let dir = from;
  for (;;) {
    const key = (dir ? `${dir}/` : '') + `node_modules/${name}`;
    if (lock[key]) return key;
    if (!dir) return null;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i < 0 ? '' : dir.slice(0, i);
  }
}

const seen = new Set();
function walk(key) {
  if (seen.has(key)) return;
  seen.add(key);
  const entry = lock[key];
  for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
    const found = resolveIn(dep, key);
    if (found) walk(found);
  }
}
for (const name of process.argv.slice(2)) {
  const key = resolveIn(name, '');
  if (!key) throw new Error(`lock-closure: ${name} is not in package-lock.json`);
  walk(key);
}

const out = [...seen].filter((k) => existsSync(k)).sort();
// keep nested folders out when their parent is listed (tar would list them twice)
const kept = out.filter((k) => !out.some((p) => p !== k && k.startsWith(`${p}/`)));
// the .bin links that point into a kept package
if (existsSync('node_modules/.bin')) {
  for (const bin of readdirSync('node_modules/.bin')) {
    const link = `node_modules/.bin/${bin}`;
    if (!lstatSync(link).isSymbolicLink()) continue;
    const target = posix.normalize(posix.join('node_modules/.bin', readlinkSync(link)));
    if (kept.some((k) => target.startsWith(`${k}/`))) kept.push(link);
  }
}
for (const k of kept) console.log(k);
