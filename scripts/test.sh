#!/usr/bin/env bash
# Installs the test dependencies (Python packages; Prometheus from Debian when missing) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m sidecar.telemetry.metrics_doc --check
python3 -m sidecar.config.doc --check
python3 -m sidecar.tools.doc_examples --check
python3 -m dashboards --check
python3 -m alerts --check
python3 -m pytest -q -p no:cacheprovider "$@"
