"""Decode a recording's raw BLE packets again, exactly as the collector did live.

Recordings keep every notification with its arrival time (and an empty packet where a
link came back). Running them through the same decoders, clock fits and stream pairing
reproduces the live chunks bit for bit; with a fixed decoder it mends old recordings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

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
