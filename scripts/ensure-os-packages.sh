#!/usr/bin/env bash
# What the test suite needs from the OS, installed from the distribution's packages when missing
# (needs root, as on CI): Chromium for the browser tests (Playwright's own browser download does not
# work here) and a CJK font so report charts carry Chinese labels (best effort: charts fall back to
# ASCII labels without it).
set -uo pipefail
want=()
[ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || want+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || want+=(fonts-wqy-microhei)
if [ ${#want[@]} -eq 0 ]; then echo "OS packages: chromium and a CJK font present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "missing ${want[*]} and not root: cannot install" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1
apt-get install -y -qq "${want[@]}" >/dev/null 2>&1 || apt-get install -y -qq chromium >/dev/null 2>&1
[ -x /usr/bin/chromium ] && echo "chromium: /usr/bin/chromium"
fc-list :lang=zh 2>/dev/null | grep -q . && echo "CJK font: present"
[ -x /usr/bin/chromium ]
