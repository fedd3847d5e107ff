"""InfluxDB sink: records -> line protocol (schema in :mod:`influx_schema`) -> HTTP writes.

Two write paths behind one interface:

* ``v2``: ``POST /api/v2/write`` with a token, org and bucket, through the official
  ``influxdb-client`` (InfluxDB 2.x/3.x, and VictoriaMetrics which speaks it).
* ``v1``: ``POST /write?db=`` with optional user/password (InfluxDB 1.x), through the
  standard library: influxdb-client has no ``/write`` path, and 1.x before 1.8 has no
  ``/api/v2/write``.

Batching (by size and age), retries, backoff and the disk spool come from the shared
:class:`~pipeline.sinks.spool.DeliveryQueue`; writes here are synchronous, one batch
per call from its sender thread. (influxdb-client's own batching mode is not used: its
``flush()`` does nothing in 1.50, and errors would surface in a thread we do not own.)
"""

from __future__ import annotations

import base64
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pipeline.sinks.base import Record
from pipeline.sinks.config import InfluxSettings, check_athlete, import_optional
from pipeline.sinks.influx_schema import Point, to_point
from pipeline.sinks.spool import DeliveryQueue, Entry, PermanentError, QueueConfig

#: 4xx answers that mean "this data is wrong" (retrying cannot help). Other errors --
#: 401/403/404 included, a token or database that may be fixed -- keep the data spooled.
REJECTING_STATUS = (400, 413, 422)


# -- line protocol ------------------------------------------------------------------------
def _escape(text: str, chars: str) -> str:
    text = text.replace("\\", "\\\\")
    for c in chars:
        text = text.replace(c, "\\" + c)
    return text.replace("\n", "\\n")


def _field_value(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line(p: Point) -> str:
    """One line of InfluxDB line protocol (tags sorted, as InfluxDB recommends)."""
    head = _escape(p.measurement, ", ")
    for k in sorted(p.tags):
        head += f",{_escape(k, ',= ')}={_escape(p.tags[k], ',= ')}"
    fields = ",".join(f"{_escape(k, ',= ')}={_field_value(v)}" for k, v in p.fields.items())
    return f"{head} {fields} {p.time_ns}"


# -- writers ------------------------------------------------------------------------------
class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class V2Writer:
    def __init__(self, s: InfluxSettings) -> None:
        client_mod = import_optional("influxdb_client", "InfluxDB publishing")
        sync = import_optional("influxdb_client.client.write_api", "InfluxDB publishing")
        self._rest = import_optional("influxdb_client.rest", "InfluxDB publishing")
        self.s = s
        self._client = client_mod.InfluxDBClient(
            url=s.url,
            token=s.token.reveal() if s.token else "",
            org=s.org or "-",
            timeout=int(s.timeout_s * 1000),
            verify_ssl=s.verify_tls,
            ssl_ca_cert=s.ca_file,
            retries=False,  # our queue retries, with backoff and a spool
        )
        self._api = self._client.write_api(write_options=sync.SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        try:
            self._api.write(bucket=self.s.bucket, org=self.s.org or "-", record="\n".join(lines))
        except self._rest.ApiException as err:
            detail = f"HTTP {err.status}: {(err.body or err.reason or '')!s:.300}"
            if err.status in REJECTING_STATUS:
                raise PermanentError(detail) from None
            raise ConnectionError(detail) from None

    def close(self) -> None:
        self._api.close()
        self._client.close()


class V1Writer:
    def __init__(self, s: InfluxSettings) -> None:
        self.s = s
        query = {"db": s.database, "precision": "ns"}
        if s.retention_policy:
            query["rp"] = s.retention_policy
        self._url = f"{s.url}/write?{urllib.parse.urlencode(query)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if s.username:
            # Basic auth, not u=/p= in the URL: URLs end up in logs and error messages.
            pw = s.password.reveal() if s.password else ""
            token = base64.b64encode(f"{s.username}:{pw}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._ssl: ssl.SSLContext | None = None
        if s.url.startswith("https"):
            self._ssl = ssl.create_default_context(cafile=s.ca_file)
            if not s.verify_tls:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE

    def write(self, lines: Sequence[str]) -> None:
        body = "\n".join(lines).encode("utf-8")
        req = urllib.request.Request(self._url, body, self._headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.s.timeout_s, context=self._ssl):
                pass
        except urllib.error.HTTPError as err:
            detail = f"HTTP {err.code}: {err.read(300).decode('utf-8', 'replace')}"
            if err.code in REJECTING_STATUS:
                raise PermanentError(detail) from None
            raise ConnectionError(detail) from None
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(str(getattr(err, "reason", err))) from None

    def close(self) -> None:
        pass


def make_writer(s: InfluxSettings) -> Writer:
    return V1Writer(s) if s.api == "v1" else V2Writer(s)


# -- the sink -----------------------------------------------------------------------------
class InfluxSink:
    """Writes one athlete's records as points; see :mod:`influx_schema` for the schema."""

    def __init__(
        self,
        settings: InfluxSettings,
        athlete: str,
        *,
        spool_dir: str | Path,
        session: str | None = None,
        start_unix_s: float,
        redact: Callable[[str], str] = lambda text: text,
        writer: Writer | None = None,
    ) -> None:
        self.settings = settings
        self.athlete = check_athlete(athlete)
        self.session = session
        self.start_unix_s = start_unix_s
        self._writer = writer or make_writer(settings)
        config = QueueConfig(
            max_queue=settings.max_queue,
            batch_size=settings.batch_size,
            max_delay_s=settings.flush_interval_s,
        )
        # Lines, not records, are queued and spooled: a spool left for the next run
        # keeps this run's athlete, session and time axis.
        self.queue = DeliveryQueue(
            f"influx-{athlete}", self._deliver, spool_dir, config, redact=redact
        )
        self.skipped = 0

    def add(self, records: Iterable[Record]) -> None:
        lines = []
        for r in records:
            p = to_point(
                r, athlete=self.athlete, session=self.session, start_unix_s=self.start_unix_s
            )
            if p is None:
                self.skipped += 1
            else:
                lines.append(line(p))
        if lines:
            self.queue.put(lines)

    def _deliver(self, entries: Sequence[Entry], abort: threading.Event) -> None:
        self._writer.write([e.item for e in entries])

    def status(self) -> dict[str, Any]:
        return {
            "sink": "influx",
            "target": self.settings.target(),
            "athlete": self.athlete,
            "skipped": self.skipped,
            **self.queue.status(),
        }

    def close(self, timeout: float = 5.0) -> None:
        self.queue.close(timeout)
        self._writer.close()
