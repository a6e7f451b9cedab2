#!/usr/bin/env bash
# Playwright's own browser download does not work here: use the OS's Chromium, installed from the
# distribution's packages when missing (needs root, as on CI).
set -euo pipefail
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$c" ]; then echo "chromium: $c"; exit 0; fi
done
if [ "$(id -u)" != 0 ]; then echo "chromium missing and not root: cannot install it" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] && echo "chromium: /usr/bin/chromium (installed)"
