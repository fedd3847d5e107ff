#!/usr/bin/env bash
# The one test command (README, CI): installs what the tests need, then lint, types, tests.
#   ./scripts/test.sh [pytest args...]
# Debian packages for the real-server tests (Mosquitto, VictoriaMetrics, InfluxDB 1.x), gcc
# for the firmware test and docker-compose 1.29 (compose file check) are installed with apt-get when missing and we are root;
# otherwise those tests skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${HIPSTRIDE_TEST_VENV:-.venv-test}

missing=()
for pair in mosquitto:mosquitto mosquitto-clients:mosquitto_pub victoria-metrics:victoria-metrics \
    influxdb:influxd gcc:gcc docker-compose:docker-compose; do
  pkg=${pair%%:*}; bin=${pair##*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ] && [ ! -x "/usr/bin/$bin" ]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages' own services are not wanted: tests start their own on free ports.
    for svc in mosquitto victoria-metrics influxdb; do
      (command -v systemctl >/dev/null && systemctl stop "$svc") >/dev/null 2>&1 || true
      (command -v service >/dev/null && service "$svc" stop) >/dev/null 2>&1 || true
    done
  else
    echo "note: missing ${missing[*]} (not root or no apt-get): their tests will skip"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e ".[test,publish,ble,virtual]"

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 1
fi
exit "$rc"
