#!/bin/sh
# The hipstride container. With arguments: runs them (`docker compose run --rm hipstride
# hipstride run --source mqtt://...`). Without: the demo, so that the dashboards show
# data as soon as the stack is up:
#   1. once per volume, a few weeks of earlier sessions for the Training load dashboard
#      (dashboards/demo.py history, InfluxDB only, in the background);
#   2. every runner's recording replayed in real time, in a loop, to MQTT and InfluxDB,
#      each pass a new session (the session id defaults to the start time).
# HIPSTRIDE_DEMO_ONCE=1 makes one pass (tests, debugging); HIPSTRIDE_DEMO_HISTORY=0
# skips the history.
set -eu

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

here=$(dirname "$0")
recordings=${HIPSTRIDE_DEMO_RECORDINGS:-$here/recordings}
state=${HIPSTRIDE_STATE_DIR:-/var/lib/hipstride}
out=${HIPSTRIDE_DEMO_OUT:-/tmp/hipstride}
: "${HIPSTRIDE_MQTT_URL:?HIPSTRIDE_MQTT_URL is not set}"
: "${HIPSTRIDE_INFLUX_URL:?HIPSTRIDE_INFLUX_URL is not set}"

# `docker compose stop` (TERM, forwarded by the init process): stop every replay with
# this shell. (Not INT: a non-interactive shell starts background jobs with INT ignored.)
trap 'trap "" INT TERM; kill 0 2>/dev/null; wait; exit 0' INT TERM

if [ "${HIPSTRIDE_DEMO_HISTORY:-1}" = 1 ] && [ ! -e "$state/demo-history.done" ]; then
    (python "$here/demo.py" history && touch "$state/demo-history.done") &
fi

replay_loop() {
    athlete=$1
    recording=$2
    while :; do
        # --start records each pass in the training history ($HIPSTRIDE_DB), so
        # hipstride's own overload rules have a history to judge the next pass by
        hipstride replay "$recording" --out "$out/$athlete" --speed 1 --quiet \
            --athlete "$athlete" --start "$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" \
            --mqtt "$HIPSTRIDE_MQTT_URL" --influx "$HIPSTRIDE_INFLUX_URL" \
            || sleep 10  # a server still starting: try again, without a busy loop
        [ "${HIPSTRIDE_DEMO_ONCE:-0}" = 1 ] && return 0
    done
}

found=0
for recording in "$recordings"/*.hsr; do
    [ -e "$recording" ] || continue
    found=1
    replay_loop "$(basename "$recording" .hsr)" "$recording" &
done
if [ "$found" = 0 ]; then
    echo "hipstride demo: no recordings in $recordings" >&2
    exit 1
fi
wait
