/**
 * Entry of the server child in kill.test.ts: serves a project folder and prints its URL as one JSON line.
 * Bundled by the test with esbuild (the package has no TS runner for child processes).
 */
import { startStudio } from '../server';

startStudio({ projectDir: process.argv[2], port: 0 }).then(
  (s) => process.stdout.write(`${JSON.stringify({ url: s.url })}\n`),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
