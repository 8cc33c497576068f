#!/usr/bin/env bash
# The one test command: installs what is missing (Debian packages as root, npm deps), lints
# (oxlint: any finding fails the run), builds, then runs unit (with the import layer and cycle
# check), integration (network namespaces) and end-to-end tests. The last line is
# `N passed, N failed` (counted from vitest's JSON reports) for CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent lint
node scripts/build.mjs
mkdir -p .tmp
rm -f .tmp/test-results-*.json
status=0
npx vitest run --project unit --project netns --reporter=default --reporter=json --outputFile.json=.tmp/test-results-main.json "$@" || status=$?
if [ -z "${TSCNI_SKIP_E2E:-}" ] && ls test/e2e/*.test.ts >/dev/null 2>&1; then
  npx vitest run --project e2e --reporter=default --reporter=json --outputFile.json=.tmp/test-results-e2e.json || status=$?
fi
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const f of fs.readdirSync(".tmp").filter((f) => /^test-results-.*\.json$/.test(f))) {
    const r = JSON.parse(fs.readFileSync(".tmp/" + f, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
  }
  // A run that failed without failing a test (a suite that did not load, a crash) still counts.
  if (process.argv[1] !== "0" && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed`);
' "$status"
exit "$status"
