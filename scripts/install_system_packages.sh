#!/usr/bin/env bash
# System packages the test suite needs beyond Python (Debian/Ubuntu names), installed by
# `make test` when it runs as root with apt-get; otherwise listed, so you can install them.
#   qemu-user  runs the embedded server under an emulated CPU without AVX-512 (tests/db)
#   binutils   objdump, to read the embedded server's machine code (tests/db)
#   gcc        compiles the AVX-512 sample that proves that check can fail (tests/db)
#   redis-server  the shared embedding cache's tests (tests/embeddings)
#   chromium   the browser Playwright drives in the web client tests (tests/web)
#   fonts-liberation  a font for that browser (a Recommends of chromium, skipped by --no-install-recommends)
set -euo pipefail
packages=(qemu-user binutils gcc redis-server chromium fonts-liberation)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
else
  echo "note: system packages not installed: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]});" \
       "the tests that need them skip with that reason outside CI and fail in CI" >&2
fi
