#!/usr/bin/env bash
# Set up simreal on a fresh Debian/Ubuntu machine with Python 3.11: the one system package it needs, then a
# virtual environment in .venv with simreal installed in editable mode.
#
#   bash scripts/setup.sh          # the package
#   bash scripts/setup.sh test     # the package and the test tools
#
# The system package is Debian's libllvm19: Mitsuba's CPU variant (llvm_ad_rgb, `simreal render cinematic`)
# JIT-compiles with it; the LLVM 15 of Debian 12 crashes at the first render and LLVM 14 is rejected.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p 2>/dev/null | grep -q 'libLLVM-19\|libLLVM.so.19'; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian's libllvm19 (for Mitsuba's CPU renderer) ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libllvm19 >/dev/null
fi

python3 -m venv .venv
extra=""
if [ "${1:-}" = "test" ]; then extra="[test]"; fi
.venv/bin/pip install -q -e ".${extra}"
