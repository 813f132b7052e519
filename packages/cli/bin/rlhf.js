#!/usr/bin/env node
// The `rlhf` executable that npm links. It is committed (not built) because npm links a package's bin only if
// the file exists at install time, and in a fresh clone dist/ is built after the install (by postinstall): a
// bin pointing into dist/ would not be linked, and `npx rlhf` would then ask the public registry for `rlhf`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(built))) {
  process.stderr.write(
    `rlhf: the CLI is not built (no ${fileURLToPath(built)}). ` +
      'In a clone of the repository, run `npm run build` at its root (`npm ci` does it after installing).\n',
  );
  process.exit(1);
}
await import(built.href);
