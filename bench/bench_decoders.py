"""Decoder throughput: packets/s and samples/s per protocol, one core.

    .venv/bin/python bench/bench_decoders.py [--seconds 1.0]

Each protocol decodes a realistic notification (the size its sensor sends at the rate
hipstride asks for), through the same ``make_decoder(...).feed`` the collector uses.
The live budget is small: 3 sensors x 200 Hz is ~600 samples/s in ~100 packets/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sensors.protocols import hipstride_profile as hp
from sensors.protocols import (
    make_decoder,
    rsc,
    witmotion,
)
from sensors.protocols import movesense as ms
from sensors.protocols import polar_pmd as pmd
from sensors.protocols.types import DecodedSamples, RscMeasurement


def _counts(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(-200, 200, size=(n, 3)), axis=0) + 1000


def cases() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(label, protocol, options, packet) for one typical notification each."""
    acc = _counts(19, 1)
    return [
        (
            "polar-pmd Verity ACC, compressed, 36 samples",
            "polar-pmd",
            {"factor": "0.244"},
            pmd.encode_frame(pmd.Measurement.ACC, 10**17, _counts(36, 2), compressed=True),
        ),
        (
            "polar-pmd H10 ACC, raw int16, 36 samples",
            "polar-pmd",
            {"rate_hz": "200"},
            pmd.encode_frame(pmd.Measurement.ACC, 10**17, _counts(36, 3), compressed=False),
        ),
        (
            "movesense IMU6 104 Hz, 8 samples",
            "movesense",
            {"mtu": "247"},
            ms.encode_data(99, 1000, _counts(8, 4) / 100.0, _counts(8, 5) / 10.0)[0],
        ),
        (
            "witmotion, 1 sample per packet",
            "witmotion",
            {},
            witmotion.encode_packet(np.array([0.1, 0.2, 9.8]), np.array([1.0, 2.0, 3.0])),
        ),
        (
            "rsc measurement",
            "rsc",
            {},
            rsc.encode_measurement(RscMeasurement(3.5, 170, 1.2, 1e3, True)),
        ),
        (
            "hipstride 6-axis, 19 samples",
            "hipstride",
            {},
            hp.pack_packet(hp.StreamConfig(), 0, 0, acc.astype(np.int16), acc.astype(np.int16)),
        ),
    ]


def bench(
    protocol: str, options: dict[str, str], packet: bytes, seconds: float
) -> tuple[float, float]:
    decoder = make_decoder(protocol, options)
    samples_per_packet = sum(
        len(r) if isinstance(r, DecodedSamples) else 1 for r in decoder.feed(packet)
    )
    packets = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            decoder.feed(packet)
        packets += 200
    elapsed = time.perf_counter() - start
    return packets / elapsed, packets * samples_per_packet / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per protocol")
    args = parser.parse_args()
    print(f"{'case':<48} {'bytes':>5} {'packets/s':>12} {'samples/s':>12}")
    for label, protocol, options, packet in cases():
        pps, sps = bench(protocol, options, packet, args.seconds)
        print(f"{label:<48} {len(packet):>5} {pps:>12,.0f} {sps:>12,.0f}")


if __name__ == "__main__":
    main()
