"""Clock mapping against simulated BLE arrivals with known truth.

Latency model (what a Linux/BlueZ host sees): a packet waits for the next connection
event (interval 7.5 ms on the host's clock, so the wait's phase walks at the sensor's
drift rate, as on a real link), plus exponential host/stack jitter (mean 8 ms), plus on
5 % of packets a retransmission delay of up to 60 ms. Latency is never negative.
Until the phase has walked through one interval (interval / drift = 150 s at 50 ppm)
the offset is only known to within one interval; the tests check both regimes.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensors.clock import ClockConfig, LowerEnvelopeFit, SensorClock
from sensors.protocols.types import DecodedSamples

RATE_HZ = 100.0
PER_PACKET = 5


def latency(rng: np.random.Generator, send_s: np.ndarray, interval_s: float = 0.0075) -> np.ndarray:
    phase = rng.uniform(0, interval_s)
    event = np.ceil((send_s - phase) / interval_s) * interval_s + phase
    jitter = rng.exponential(0.008, send_s.shape)
    retry = np.where(rng.random(send_s.shape) < 0.05, rng.uniform(0, 0.06, send_s.shape), 0.0)
    return event - send_s + jitter + retry


def packet(
    n: int,
    sensor_time_s: float | None,
    stamp_index: int = 0,
    counter: int | None = None,
    rate_hz: float = RATE_HZ,
    wrap: float | None = None,
) -> DecodedSamples:
    return DecodedSamples(
        acc_mps2=np.zeros((n, 3)),
        gyr_dps=None,
        sensor_time_s=sensor_time_s,
        stamp_index=stamp_index,
        time_wrap_s=wrap,
        sample_counter=counter,
        counter_modulo=2**32 if counter is not None else None,
        rate_hz=rate_hz,
    )


def run_timestamped(
    drift_ppm: float, duration_s: float, drop: frozenset[int] = frozenset(), seed: int = 1
) -> tuple[SensorClock, np.ndarray, np.ndarray]:
    """Sensor stamps its FIRST sample (Movesense/hipstride style), clock runs fast."""
    rng = np.random.default_rng(seed)
    n_packets = int(duration_s * RATE_HZ / PER_PACKET)
    k = np.arange(n_packets * PER_PACKET)
    sensor_t = 5000.0 + k / RATE_HZ  # sensor clock: exact nominal rate
    host_t = 42.0 + (sensor_t - 5000.0) / (1 + drift_ppm * 1e-6)  # true host time
    last = host_t[PER_PACKET - 1 :: PER_PACKET]
    arrivals = last + latency(rng, last)
    clock = SensorClock()
    got, truth = [], []
    for j in range(n_packets):
        if j in drop:
            continue
        first = j * PER_PACKET
        mapped = clock.map(packet(PER_PACKET, float(sensor_t[first])), float(arrivals[j]))
        got.append(mapped.t_s)
        truth.append(host_t[first : first + PER_PACKET])
    return clock, np.concatenate(got), np.concatenate(truth)


def test_offset_within_5ms_and_drift_of_50ppm_recovered() -> None:
    clock, got, truth = run_timestamped(drift_ppm=50.0, duration_s=600.0)
    error = got - truth
    warming = error[int(2 * RATE_HZ) : int(200 * RATE_HZ)]
    settled = error[int(200 * RATE_HZ) :]
    assert np.abs(warming).max() < 0.0075 + 0.002  # one connection interval + jitter floor
    assert np.abs(settled).max() < 0.005, np.abs(settled).max()
    assert clock.drift_ppm == pytest.approx(50.0, abs=10.0)
    assert clock.lost_samples == 0
    assert np.all(np.diff(got) > 0)


def test_least_squares_would_fail_where_the_envelope_succeeds() -> None:
    # Guard against a test that cannot fail: the mean latency here is ~20 ms.
    _, got, truth = run_timestamped(drift_ppm=0.0, duration_s=60.0, seed=3)
    assert np.abs(got - truth)[int(2 * RATE_HZ) :].max() < 0.0095
    rng = np.random.default_rng(3)
    assert latency(rng, np.arange(0, 60, 0.05)).mean() > 0.01


def test_lost_packets_are_counted_never_invented() -> None:
    clock, got, truth = run_timestamped(
        drift_ppm=0.0, duration_s=60.0, drop=frozenset({300, 301, 302})
    )
    assert clock.lost_samples == 3 * PER_PACKET
    assert len(got) == (60 * RATE_HZ) - 3 * PER_PACKET
    assert np.abs(got - truth)[int(2 * RATE_HZ) :].max() < 0.0095  # a gap, not a shift


def test_last_sample_stamp_like_polar() -> None:
    rng = np.random.default_rng(5)
    clock = SensorClock()
    errors = []
    for j in range(2000):
        last_host = 10.0 + (j + 1) * PER_PACKET / 52.0 - 1 / 52.0
        arrival = last_host + float(latency(rng, np.array([last_host]))[0])
        pkt = packet(PER_PACKET, 7.0e8 + last_host, stamp_index=PER_PACKET - 1, rate_hz=52.0)
        t = clock.map(pkt, arrival).t_s
        errors.append(t[-1] - last_host)
    assert np.abs(errors[500:]).max() < 0.005


def test_counter_jump_and_timestamp_wrap() -> None:
    clock = SensorClock()
    wrap = 2**32 * 1e-6
    start = wrap - 0.5  # the µs clock wraps half a second in
    times = []
    for j in range(200):
        if j == 50:
            continue  # one packet lost: its counter values never arrive
        first = j * PER_PACKET
        raw = (start + first / RATE_HZ) % wrap
        pkt = packet(PER_PACKET, raw, counter=first, wrap=wrap)
        times.append(clock.map(pkt, 1.0 + first / RATE_HZ + 0.004).t_s)
    t = np.concatenate(times)
    assert clock.lost_samples == PER_PACKET
    steps = np.diff(t)
    assert np.all(steps > 0)
    assert steps.max() == pytest.approx((PER_PACKET + 1) / RATE_HZ, abs=1e-3)  # the gap


def test_counter_wraps_without_false_loss() -> None:
    clock = SensorClock()
    for j in range(10):
        counter = (2**32 - 10 + j * PER_PACKET) % 2**32
        clock.map(packet(PER_PACKET, j * 0.05, counter=counter), j * 0.05 + 0.01)
    assert clock.lost_samples == 0 and clock.resets == 0


def test_sensor_reboot_starts_a_new_fit() -> None:
    clock = SensorClock()
    clock.map(packet(5, 100.0), 1.0)
    clock.map(packet(5, 100.05), 1.05)
    t = clock.map(packet(5, 0.2), 1.3).t_s  # clock back to zero: rebooted
    assert clock.resets == 1
    assert t[0] > 1.05  # still after what came before


# ------------------------------------------------------------ untimestamped (WitMotion)


def run_untimestamped(
    rate_error_ppm: float,
    duration_s: float,
    silence: tuple[float, float] | None = None,
    stall: tuple[float, float] | None = None,
    seed: int = 2,
) -> tuple[SensorClock, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true_rate = RATE_HZ * (1 + rate_error_ppm * 1e-6)
    host_t = 3.0 + np.arange(int(duration_s * true_rate)) / true_rate
    arrivals = host_t + latency(rng, host_t, interval_s=0.0075)
    if stall:  # link stalls: everything queued is delivered at once afterwards
        arrivals = np.where((host_t > stall[0]) & (host_t < stall[1]), stall[1], arrivals)
        arrivals = np.maximum.accumulate(arrivals)
    clock = SensorClock()
    got, truth = [], []
    reconnect_pending = False
    for i, (t_true, arrival) in enumerate(zip(host_t, arrivals, strict=True)):
        if silence and silence[0] <= t_true < silence[1]:
            reconnect_pending = True  # sensor out of range: link lost, samples gone
            continue
        if reconnect_pending:
            clock.reconnected()
            reconnect_pending = False
        got.append(clock.map(packet(1, None), float(arrival)).t_s[0])
        truth.append(t_true)
        del i
    return clock, np.array(got), np.array(truth)


def test_untimestamped_sensor_with_wrong_nominal_rate() -> None:
    clock, got, truth = run_untimestamped(rate_error_ppm=3000.0, duration_s=300.0)
    settled = (got - truth)[int(30 * RATE_HZ) :]
    assert np.abs(settled).max() < 0.005, np.abs(settled).max()
    assert clock.drift_ppm == pytest.approx(3000.0, abs=50.0)


def test_untimestamped_link_loss_counts_missing_samples() -> None:
    clock, got, truth = run_untimestamped(0.0, duration_s=120.0, silence=(60.0, 62.0))
    assert clock.lost_samples == pytest.approx(200, abs=2)
    assert np.abs((got - truth)[int(30 * RATE_HZ) :]).max() < 0.01


def test_untimestamped_stall_is_not_mistaken_for_loss() -> None:
    clock, got, truth = run_untimestamped(0.0, duration_s=90.0, stall=(60.0, 60.3))
    assert clock.lost_samples == 0
    assert np.abs((got - truth)[int(30 * RATE_HZ) :]).max() < 0.005


# ------------------------------------------------------------ the envelope fit itself


def test_envelope_is_below_every_point_and_touches_it() -> None:
    rng = np.random.default_rng(9)
    fit = LowerEnvelopeFit(window=1000.0, bin_width=1.0, min_span=0.0, max_slope=1.0)
    xs = np.linspace(0, 100, 2001)
    ys = 0.5 + 1e-4 * xs + rng.exponential(0.01, xs.shape)
    for x, y in zip(xs, ys, strict=True):
        fit.add(float(x), float(y))
    line = fit.a + fit.b * xs
    assert np.all(ys >= line - 1e-12)
    assert fit.b == pytest.approx(1e-4, abs=2e-5)
    assert fit.a == pytest.approx(0.5, abs=1e-3)


def test_window_bounds_memory() -> None:
    fit = LowerEnvelopeFit(window=10.0, bin_width=1.0, min_span=0.0, max_slope=1.0)
    for x in np.arange(0, 1000, 0.01):
        fit.add(float(x), 0.0)
    assert len(fit) <= 12


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ClockConfig().window_s = 1.0
