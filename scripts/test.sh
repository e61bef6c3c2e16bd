#!/usr/bin/env bash
# Installs the test dependencies (Python packages; Prometheus and Chromium from Debian when missing) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run for real: Prometheus (promtool) and Chromium (the comparison
# page's browser tests, driven by Playwright; never `playwright install`).
MISSING=""
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  MISSING="prometheus"
fi
command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium"
if [ -n "$MISSING" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m sidecar.telemetry.metrics_doc --check
python3 -m sidecar.config.doc --check
python3 -m sidecar.tools.doc_examples --check
python3 -m dashboards --check
python3 -m alerts --check
python3 -m pytest -q -p no:cacheprovider "$@"
