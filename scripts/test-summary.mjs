// Sums the vitest JSON reports of every package (written by `npm test`) into one closing line,
// "tests: N passed, N failed", so that CI and people see the whole count at a glance.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
for (const pkg of readdirSync('packages')) {
  const file = join('packages', pkg, 'test-results.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  rows.push(`  @rlhf/${pkg}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
}
console.log(rows.join('\n'));
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
