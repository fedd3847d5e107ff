"""Decode a recording's raw BLE packets again, exactly as the collector did live.

Recordings keep every notification with its arrival time (and an empty packet where a
link came back). Running them through the same decoders, clock fits and stream pairing
reproduces the live chunks bit for bit, in the order and cut the live pipeline got
them; with a fixed decoder it mends old recordings. ``collect`` writes its sensor list
into the recording's header (:func:`specs_to_meta`) so that ``hipstride replay`` can
do this without the config file: the only way to reproduce the live run's steps
exactly, since the pipeline's output depends on the order in which the sensors' data
came (a sensor silent for longer than ``PipelineConfig.stall_s`` stops holding the
others back live, while a replay of decoded samples, merged by time, never stalls).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sensors.ble.assemble import SensorAssembler
from sensors.ble.drivers import make_driver
from sensors.ble.transport import RECONNECTED, SensorSpec
from sensors.clock import ClockConfig
from sensors.errors import DecodeError
from sensors.model import Chunk
from sensors.protocols import Decoder
from sensors.protocols.types import DecodedSamples
from sensors.recording import RawPacket


def chunks_from_raw(
    packets: Iterable[RawPacket],
    specs: Sequence[SensorSpec] = (),
    clock_config: ClockConfig | None = None,
) -> Iterator[Chunk]:
    """Chunks from ``(arrival_s, placement, protocol, data)`` packets in arrival order.

    ``specs`` (e.g. from the collect config) supply what the packets do not carry: the
    device model and options (a Polar H10 streams at 200 Hz, a Verity Sense at 52).
    Packets that do not decode are skipped, as they were live.
    """
    by_key = {(s.placement, s.protocol): s for s in specs}
    streams: dict[tuple[str, str], tuple[Decoder, SensorAssembler]] = {}
    for arrival_s, placement, protocol, data in packets:
        key = (placement, protocol)
        if key not in streams:
            spec = by_key.get(key) or SensorSpec("", protocol, placement)
            driver = make_driver(protocol, spec.model, spec.options)
            assembler = SensorAssembler(
                placement,
                spec.name or spec.address,
                separate_streams=driver.separate_streams,
                clock_config=clock_config,
            )
            streams[key] = (driver.make_decoder(), assembler)
        decoder, assembler = streams[key]
        if data == RECONNECTED:
            decoder.reset()
            assembler.reconnected()
            continue
        try:
            results = decoder.feed(data)
        except DecodeError:
            continue
        for result in results:
            if isinstance(result, DecodedSamples):
                yield from assembler.push(result, arrival_s)


#: Key of the sensor list in a native recording's metadata (written by ``collect``).
SENSORS_META_KEY = "sensors"


def specs_to_meta(specs: Sequence[SensorSpec]) -> list[dict[str, Any]]:
    """The sensors as JSON for a recording's header: what raw replay needs to decode."""
    return [
        {
            "address": s.address,
            "protocol": s.protocol,
            "placement": s.placement,
            "name": s.name,
            "model": s.model,
            "options": dict(s.options),
        }
        for s in specs
    ]


def specs_from_meta(meta: Mapping[str, Any]) -> list[SensorSpec] | None:
    """The sensors a collecting run recorded in its header, or ``None`` if it did not."""
    entries = meta.get(SENSORS_META_KEY)
    if not isinstance(entries, list) or not entries:
        return None
    return [
        SensorSpec(
            address=str(e.get("address", "")),
            protocol=str(e["protocol"]),
            placement=str(e["placement"]),
            name=str(e.get("name", "")),
            model=str(e.get("model", "")),
            options={str(k): str(v) for k, v in dict(e.get("options", {})).items()},
        )
        for e in entries
    ]
