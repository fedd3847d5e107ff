"""One contract for every registered decoder (as river does for its estimators).

Whatever bytes arrive, a decoder either returns well-formed results or raises
DecodeError: never IndexError, struct.error or a numpy exception, which would reach the
user as a traceback and kill a live session.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.protocols import PROTOCOLS, DecodedSamples, make_decoder

#: A valid packet per protocol, from the per-protocol tests' vectors.
VALID = {
    "polar-pmd": "02 da eb c3 9e 98 43 52 08 01 00 00 00 00 e8 03",
    "movesense": "02 63 40 e2 01 00" + " 0000803f" * 6,
    "witmotion": "55 61 00 08 00 00 00 f8 00 40 00 c0 01 00 00 20 00 e0 00 40",
    "rsc": "07 80 03 aa 7b 00 e8 03 00 00",
    "hipstride": "01 01 01 10 d0 07 d0 00 ff ff ff ff 04 03 02 01"
    " 00 08 00 f8 ff 7f 00 80 00 00 00 40",
}


def test_every_protocol_has_a_vector() -> None:
    assert set(VALID) == set(PROTOCOLS)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_valid_packet_gives_well_formed_results(name: str) -> None:
    decoder = make_decoder(name)
    results = decoder.feed(bytes.fromhex(VALID[name]))
    assert results
    for result in results:
        if isinstance(result, DecodedSamples):
            for arr in (result.acc_mps2, result.gyr_dps):
                if arr is not None:
                    assert arr.dtype == np.float64 and np.isfinite(arr).all()
    decoder.reset()


@pytest.mark.parametrize("name", PROTOCOLS)
def test_garbage_only_ever_raises_decode_error(name: str) -> None:
    rng = random.Random(name)
    valid = bytes.fromhex(VALID[name])
    decoder = make_decoder(name)
    for _ in range(400):
        kind = rng.randrange(3)
        if kind == 0:  # random bytes
            packet = rng.randbytes(rng.randrange(0, 64))
        elif kind == 1:  # truncated valid packet
            packet = valid[: rng.randrange(0, len(valid))]
        else:  # valid packet with one byte flipped
            packet = bytearray(valid)
            packet[rng.randrange(len(packet))] ^= 1 << rng.randrange(8)
            packet = bytes(packet)
        with contextlib.suppress(DecodeError):
            decoder.feed(packet)


def test_unknown_protocol_and_option() -> None:
    with pytest.raises(DecodeError, match="unknown protocol 'ant'"):
        make_decoder("ant")
    with pytest.raises(DecodeError, match="unknown option"):
        make_decoder("witmotion", {"rate": "100"})
    with pytest.raises(DecodeError, match="bad option"):
        make_decoder("witmotion", {"rate_hz": "fast"})
