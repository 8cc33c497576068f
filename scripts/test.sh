#!/usr/bin/env bash
# The one test command: installs what is missing (Debian packages as root, npm deps), builds,
# then runs unit, integration (network namespaces) and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/build.mjs
npx vitest run --project unit --project netns "$@"
if [ -z "${TSCNI_SKIP_E2E:-}" ] && ls test/e2e/*.test.ts >/dev/null 2>&1; then
  npx vitest run --project e2e
fi
