#!/usr/bin/env bash
# The test command: every package's vitest suite (after building what it depends on), one package at a
# time so that timings are not distorted and two native-heavy suites do not fight over 2 cores,
# then a closing line that sums them up.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -f packages/*/test-results.json
export TURBO_TELEMETRY_DISABLED=1 TURBO_NO_UPDATE_NOTIFIER=1
npx turbo run test --concurrency=1 --continue "$@"
status=$?
node scripts/test-summary.mjs || status=1
exit $status
