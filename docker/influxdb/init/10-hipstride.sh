#!/bin/bash
# Runs once, when the InfluxDB volume is new, right after the image's `influx setup`
# (DOCKER_INFLUXDB_INIT_*): makes the bucket answer InfluxQL and creates two
# least-privilege v1 users, so neither hipstride nor Grafana needs the admin token.
set -euo pipefail
: "${INFLUXDB_WRITE_USER:?}" "${INFLUXDB_WRITE_PASSWORD:?}"
: "${INFLUXDB_GRAFANA_USER:?}" "${INFLUXDB_GRAFANA_PASSWORD:?}"
bucket=${DOCKER_INFLUXDB_INIT_BUCKET_ID:?set by the image after setup}

# InfluxQL database "hipstride" = this bucket (InfluxDB 2.x's v1 compatibility API):
# the dashboards' queries run unchanged on InfluxDB 1.8, 2.x and 3.x.
influx v1 dbrp create --db hipstride --rp autogen --bucket-id "$bucket" --default

# hipstride writes through /write?db=hipstride (its v1 path) with this user...
influx v1 auth create --username "$INFLUXDB_WRITE_USER" --password "$INFLUXDB_WRITE_PASSWORD" \
    --write-bucket "$bucket" --description "hipstride (write)"
# ...and Grafana reads with this one.
influx v1 auth create --username "$INFLUXDB_GRAFANA_USER" --password "$INFLUXDB_GRAFANA_PASSWORD" \
    --read-bucket "$bucket" --description "grafana (read)"
