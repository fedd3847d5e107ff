#!/bin/sh
# Writes Mosquitto's password file from the environment at every start, then runs the
# broker. Passwords live only in .env and in this container's memory and tmp file.
set -eu
: "${MQTT_HIPSTRIDE_PASSWORD:?set MQTT_HIPSTRIDE_PASSWORD in .env}"
: "${MQTT_COACH_PASSWORD:?set MQTT_COACH_PASSWORD in .env}"

auth=/mosquitto/auth
umask 077
mkdir -p "$auth"
rm -f "$auth/passwd"
touch "$auth/passwd"
mosquitto_passwd -b "$auth/passwd" hipstride "$MQTT_HIPSTRIDE_PASSWORD"
mosquitto_passwd -b "$auth/passwd" coach "$MQTT_COACH_PASSWORD"
# Mosquitto refuses (or, in 2.0, warns about) readable auth files: own copies, mode 600.
cp /mosquitto/config/acl "$auth/acl"
chown -R mosquitto:mosquitto "$auth"
chmod 600 "$auth/passwd" "$auth/acl"
exec mosquitto -c /mosquitto/config/mosquitto.conf
