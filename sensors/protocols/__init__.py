"""Wire-protocol decoders, one module per protocol; none of them imports bleak.

``make_decoder(name, options)`` is the registry every caller (BLE transport, replay of
raw packets, ``hipstride decode``) goes through, so a decoder fix reaches them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sensors.errors import DecodeError
from sensors.protocols import hipstride_profile, movesense, polar_pmd, rsc, witmotion
from sensors.protocols.types import Decoded, DecodedSamples, Decoder, RscMeasurement

DecoderFactory = Callable[[Mapping[str, str] | None], Decoder]

#: Protocol name -> factory taking ``--set``-style string options.
DECODERS: dict[str, DecoderFactory] = {
    polar_pmd.NAME: polar_pmd.make_decoder,
    movesense.NAME: movesense.make_decoder,
    witmotion.NAME: witmotion.make_decoder,
    rsc.NAME: rsc.make_decoder,
    hipstride_profile.NAME: hipstride_profile.make_decoder,
}

PROTOCOLS: tuple[str, ...] = tuple(DECODERS)


def make_decoder(name: str, options: Mapping[str, str] | None = None) -> Decoder:
    factory = DECODERS.get(name)
    if factory is None:
        raise DecodeError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    try:
        return factory(options)
    except ValueError as err:  # a bad option value such as rate_hz=fast
        if isinstance(err, DecodeError):
            raise
        raise DecodeError(f"{name}: bad option: {err}") from None


__all__ = [
    "DECODERS",
    "PROTOCOLS",
    "Decoded",
    "DecodedSamples",
    "Decoder",
    "RscMeasurement",
    "make_decoder",
]
