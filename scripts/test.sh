#!/usr/bin/env bash
# The test command: every package's vitest suite (after building what it depends on), one package at a
# time so that timings are not distorted and two native-heavy suites do not fight over 2 cores,
# then a closing line that sums them up.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -f packages/*/test-results.json
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
# Types first (tsc --noEmit in every package, ~1 min): vitest strips types without checking them, so a
# type error in a test or a source file would otherwise pass unseen. A failure is reported and fails the
# command, but the tests still run.
npx turbo run typecheck --output-logs=errors-only --continue
typecheck=$?
npx turbo run test --concurrency=1 --continue "$@"
status=$?
if [ $typecheck -ne 0 ]; then
  echo "typecheck: failed (the tsc errors are at the top of this output); the command fails"
  status=1
fi
node scripts/test-summary.mjs || status=1
exit $status
