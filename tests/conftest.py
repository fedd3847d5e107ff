"""Fixtures shared by every test module: the real servers from tests/servers.py."""

from tests.servers import (  # noqa: F401 - re-exported as fixtures
    influxd,
    mosquitto,
    mosquitto_auth,
    mosquitto_persistent,
    mosquitto_tls,
    victoria,
)
