#!/usr/bin/env bash
# `make verify`: every static check in scripts/verify/, each a script that runs alone and says how to fix
# what it finds. All of them run; the summary names the ones that failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
failed=()
for check in scripts/verify/*.sh; do
  name=$(basename "$check" .sh)
  start=$(date +%s)
  if output=$(bash "$check" 2>&1); then
    echo "verify: $name ok ($(( $(date +%s) - start ))s)"
  else
    failed+=("$name")
    printf 'verify: %s FAILED\n%s\n(fix: see the header of %s)\n' "$name" "$output" "$check"
  fi
done
if (( ${#failed[@]} )); then
  echo "verify: failed: ${failed[*]}"
  exit 1
fi
echo "verify: every check passed"
