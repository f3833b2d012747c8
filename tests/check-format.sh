#!/usr/bin/env bash
# Every C file of the tree follows .clang-format (STYLE.md: applied to every file).
# Prints TAP: one case, naming the files that drift.
set -u
cd "${CS_SOURCE_DIR:-$(dirname "$0")/..}" || exit 1
echo "1..1"
if ! command -v clang-format >/dev/null || ! command -v git >/dev/null; then
  echo "not ok 1 - clang-format and git are needed (tests/install-deps.sh installs them)"
  exit 1
fi
bad=()
while IFS= read -r f; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.c' '*.h')
if [ ${#bad[@]} -eq 0 ]; then
  echo "ok 1 - every C file follows .clang-format"
else
  echo "not ok 1 - not formatted (run clang-format -i on them): ${bad[*]}"
  exit 1
fi
