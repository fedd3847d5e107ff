"""hipstride beside gaitmap and mobgap, on the peers' own example data and reference.

Both data sets are walking, so they test the walking path and the event physics:

* **gaitmap** 2.6.0 (MIT): ``example_data/imu_sample.csv``, IMUs on the lateral side
  of both shoes at 204.8 Hz, with ``stride_events_sample.csv``: initial and terminal
  contacts from motion capture (100 Hz, converted to IMU samples).
* **mobgap** 1.2.0 (Apache-2.0): ``example_data/data/lab``, a lower-back IMU at 100 Hz
  (3 participants, 2 healthy, 1 with multiple sclerosis; straight walks and a simulated
  daily-life course), with INDIP reference initial contacts, left/right labels and
  stance times inside reference walking bouts.

The peers run in their own virtual environment, never as hipstride dependencies::

    python3 -m venv /tmp/peers-venv
    mkdir -p /tmp/peers && cd /tmp/peers
    /tmp/peers-venv/bin/pip download --no-deps --no-binary :all: gaitmap==2.6.0 mobgap==1.2.0 -d .
    tar xzf gaitmap-2.6.0.tar.gz && tar xzf mobgap-1.2.0.tar.gz
    /tmp/peers-venv/bin/pip install ./gaitmap-2.6.0.tar.gz ./mobgap-1.2.0.tar.gz
    # Rampp event detection and the DTW stride segmentation live in gaitmap_mad (AGPL-3.0);
    # it is only run here, never shipped or imported by hipstride:
    /tmp/peers-venv/bin/pip install --no-deps ./gaitmap-2.6.0/packages/gaitmap_mad
    cd /path/to/hipstride
    # 1. the data excerpts shipped in tests/data (int16, with their licence notices)
    PYTHONPATH=. /tmp/peers-venv/bin/python -m bench.peers export --src /tmp/peers
    # 2. the peers' detectors on the same data -> bench/peers_results.json
    PYTHONPATH=. /tmp/peers-venv/bin/python -m bench.peers run --src /tmp/peers

hipstride's own figures are recomputed from ``tests/data`` by ``python -m
bench.validate`` (project environment), so the table in ``docs/validation.md`` always
shows the current code beside the peers' stored figures. Every detector is scored the
same way (:func:`bench.gait_eval.match`, one-to-one, closest first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.gait_eval import Errors, fmt, match

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
GAITMAP_NPZ = DATA / "gaitmap_walk.npz"
MOBGAP_NPZ = DATA / "mobgap_lowback.npz"
RESULTS = ROOT / "bench" / "peers_results.json"

GAITMAP_FS_HZ = 204.8
MOBGAP_FS_HZ = 100.0
#: Event matching tolerance: well under half a walking step.
GAITMAP_TOL_S = 0.2
MOBGAP_TOL_S = 0.25
# int16 storage scales (value = stored / scale): resolution far below sensor noise
SCALES = {"gaitmap": (100.0, 40.0), "mobgap": (500.0, 100.0)}  # (acc, gyr)


# -- data (project environment) -----------------------------------------------------------
@dataclass
class FootRecording:
    """gaitmap example: both shoes, reference IC/TC per foot (seconds)."""

    t_s: np.ndarray
    acc: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray]
    ic_s: dict[str, np.ndarray]
    tc_s: dict[str, np.ndarray]


@dataclass
class BackRecording:
    """mobgap example trial: lower back, reference ICs with sides inside walking bouts."""

    name: str
    t_s: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    ic_s: np.ndarray
    left: np.ndarray  # bool per reference IC
    bouts_s: np.ndarray  # (n, 2)
    #: per reference stride: start IC (s), stance time (s, NaN if unknown)
    stance: np.ndarray


def load_gaitmap(path: Path = GAITMAP_NPZ) -> FootRecording:
    z = np.load(path)
    sa, sg = SCALES["gaitmap"]
    n = z["left_acc"].shape[0]
    t = np.arange(n) / GAITMAP_FS_HZ
    sides = ("left", "right")
    return FootRecording(
        t,
        {s: z[f"{s}_acc"].astype(np.float64) / sa for s in sides},
        {s: z[f"{s}_gyr"].astype(np.float64) / sg for s in sides},
        {s: z[f"{s}_ic"] / GAITMAP_FS_HZ for s in sides},
        {s: z[f"{s}_tc"] / GAITMAP_FS_HZ for s in sides},
    )


def load_mobgap(path: Path = MOBGAP_NPZ) -> list[BackRecording]:
    z = np.load(path)
    sa, sg = SCALES["mobgap"]
    names = sorted({k.rsplit("__", 1)[0] for k in z.files})
    out = []
    for name in names:
        acc = z[f"{name}__acc"].astype(np.float64) / sa
        fs = MOBGAP_FS_HZ
        stride = z[f"{name}__stride"]
        out.append(
            BackRecording(
                name,
                np.arange(acc.shape[0]) / fs,
                acc,
                z[f"{name}__gyr"].astype(np.float64) / sg,
                z[f"{name}__ic"] / fs,
                z[f"{name}__left"].astype(bool),
                z[f"{name}__wb"] / fs,
                np.column_stack([stride[:, 0] / fs, stride[:, 1]]) if stride.size else stride,
            )
        )
    return out


# -- scoring ------------------------------------------------------------------------------
@dataclass
class EventScore:
    n_ref: int = 0
    n_det: int = 0
    n_matched: int = 0
    errors: Errors | None = None

    def to_dict(self) -> dict[str, Any]:
        e = self.errors or Errors()
        return {
            "n_ref": self.n_ref,
            "n_det": self.n_det,
            "n_matched": self.n_matched,
            "bias_ms": e.bias,
            "sd_ms": e.sd,
            "mae_ms": e.mae,
        }


def score_events(pairs_in: list[tuple[np.ndarray, np.ndarray]], tol_s: float) -> EventScore:
    """Pool (reference, detected) event-time arrays of several recordings/feet."""
    s = EventScore(errors=Errors())
    assert s.errors is not None
    for ref, det in pairs_in:
        pairs = match(ref, det, tol_s)
        s.n_ref += len(ref)
        s.n_det += len(det)
        s.n_matched += len(pairs)
        for i, j in pairs:
            s.errors.add((det[j] - ref[i]) * 1000.0)
    return s


def hipstride_gaitmap(rec: FootRecording | None = None) -> dict[str, dict[str, Any]]:
    """hipstride (both shoes) on the gaitmap example: IC and TC against mocap."""
    from pipeline.engine import Pipeline, run_all
    from pipeline.records import StepRecord
    from sensors.model import Chunk

    rec = rec or load_gaitmap()
    chunks = []
    for side in ("left", "right"):
        c = Chunk(f"{side}_foot", rec.t_s, rec.acc[side], rec.gyr[side])
        chunks.extend(c.split(205))
    chunks.sort(key=lambda c: float(c.t_s[0]))
    steps = [
        r
        for r in run_all(Pipeline(["left_foot", "right_foot"]), chunks)
        if isinstance(r, StepRecord)
    ]
    ic_pairs, tc_pairs = [], []
    for side in ("left", "right"):
        ref_ic, ref_tc = rec.ic_s[side], rec.tc_s[side]
        lo = min(ref_ic.min(), ref_tc.min()) - 0.5
        hi = max(ref_ic.max(), ref_tc.max()) + 0.5
        mine = [s for s in steps if s.side == side and lo <= s.ic_s <= hi]
        ic_pairs.append((ref_ic, np.array([s.ic_s for s in mine])))
        tc_pairs.append((ref_tc, np.array([s.to_s for s in mine])))
    return {
        "ic": score_events(ic_pairs, GAITMAP_TOL_S).to_dict(),
        "tc": score_events(tc_pairs, GAITMAP_TOL_S).to_dict(),
    }


def hipstride_mobgap(recs: list[BackRecording] | None = None) -> dict[str, Any]:
    """hipstride (pelvis only) on the mobgap lab examples, inside reference bouts."""
    from pipeline.engine import Pipeline, run_all
    from pipeline.records import StepRecord
    from sensors.model import Chunk

    recs = recs if recs is not None else load_mobgap()
    ic = EventScore(errors=Errors())
    assert ic.errors is not None
    to_err = Errors()
    side_ok = side_n = 0
    for rec in recs:
        chunks = Chunk("pelvis", rec.t_s, rec.acc, rec.gyr).split(100)
        out = run_all(Pipeline(["pelvis"]), chunks)
        steps = [r for r in out if isinstance(r, StepRecord)]
        inside = [
            s
            for s in steps
            if any(a - MOBGAP_TOL_S <= s.ic_s <= b + MOBGAP_TOL_S for a, b in rec.bouts_s)
        ]
        pairs = match(rec.ic_s, [s.ic_s for s in inside], MOBGAP_TOL_S)
        ic.n_ref += len(rec.ic_s)
        ic.n_det += len(inside)
        ic.n_matched += len(pairs)
        for i, j in pairs:
            ic.errors.add((inside[j].ic_s - rec.ic_s[i]) * 1000.0)
            side_n += 1
            side_ok += (inside[j].side == "left") == bool(rec.left[i])
        by_ic = {round(float(rec.ic_s[i]), 3): inside[j] for i, j in pairs}
        for start, stance in rec.stance:
            s = by_ic.get(round(float(start), 3))
            if s is not None and np.isfinite(stance):
                to_err.add((s.to_s - (start + stance)) * 1000.0)
    return {
        "ic": ic.to_dict(),
        "side_pct": 100.0 * side_ok / side_n if side_n else float("nan"),
        "to": {"n": to_err.n, "bias_ms": to_err.bias, "mae_ms": to_err.mae},
    }


# -- the table ------------------------------------------------------------------------------
def _ev_row(name: str, d: dict[str, Any]) -> str:
    recall = 100.0 * d["n_matched"] / d["n_ref"] if d["n_ref"] else float("nan")
    return (
        f"| {name} | {d['n_ref']} | {d['n_det']} | {d['n_matched']} ({fmt(recall, 0)} %) "
        f"| {fmt(d['bias_ms'])} | {fmt(d['sd_ms'])} | {fmt(d['mae_ms'])} |"
    )


def markdown(peers: dict[str, Any], mine_gm: dict[str, Any], mine_mg: dict[str, Any]) -> str:
    head = (
        "| detector | reference events | detected | matched (recall) | bias ms | SD ms | MAE ms |"
    )
    sep = "|---|---|---|---|---|---|---|"
    gm = peers.get("gaitmap", {})
    mg = peers.get("mobgap", {})
    lines = [
        "## Real walking data beside peers",
        "",
        "Both peers' example data sets are walking (their reference systems are for"
        " walking), so they test the walking path of the detectors and the event physics"
        " on real sensors, not running. hipstride runs on the whole recording, unsegmented;"
        " the peers as their authors pipeline them (gaitmap: DTW stride segmentation then"
        " event detection; mobgap: IC detection inside the *reference* walking bouts, and"
        " left/right on the *reference* ICs), which favours the peers. Matching is one to"
        " one, closest first, within"
        f" {GAITMAP_TOL_S * 1000:g} ms (gaitmap) and {MOBGAP_TOL_S * 1000:g} ms (mobgap)."
        " Reproduce the peers' figures with `bench/peers.py` (separate environment);"
        " hipstride's are recomputed here from `tests/data`.",
        "",
        "### Shoe IMUs: gaitmap example (lateral shoe sensors, 204.8 Hz, mocap reference)",
        "",
        "Initial contact (IC):",
        "",
        head,
        sep,
        _ev_row("**hipstride** (impact onset)", mine_gm["ic"]),
        *(_ev_row(f"gaitmap {k}", v["ic"]) for k, v in gm.items()),
        "",
        "Terminal contact (TC, toe-off):",
        "",
        head,
        sep,
        _ev_row("**hipstride** (pitch-rate extreme)", mine_gm["tc"]),
        *(_ev_row(f"gaitmap {k}", v["tc"]) for k, v in gm.items()),
        "",
        "### Lower-back IMU: mobgap lab examples (100 Hz, INDIP reference)",
        "",
        "Initial contact:",
        "",
        head,
        sep,
        _ev_row("**hipstride** (pelvis, whole recording)", mine_mg["ic"]),
        *(_ev_row(f"mobgap {k} (inside reference bouts)", v) for k, v in mg.get("icd", {}).items()),
        "",
        "Left/right of each step:",
        "",
        "| detector | steps | correct % |",
        "|---|---|---|",
        f"| **hipstride** (on its own detected ICs) | {mine_mg['ic']['n_matched']}"
        f" | {fmt(mine_mg['side_pct'])} |",
        *(
            f"| mobgap {k} (on reference ICs) | {v['n']} | {fmt(v['correct_pct'])} |"
            for k, v in mg.get("lrc", {}).items()
        ),
        "",
        f"Toe-off from the lower back in walking is not a sharp trunk event; hipstride"
        f" places it one fifth of a step after the next contact (low confidence): bias"
        f" {fmt(mine_mg['to']['bias_ms'])} ms, MAE {fmt(mine_mg['to']['mae_ms'])} ms over"
        f" {mine_mg['to']['n']} strides with a reference stance time (the mobgap peers do"
        " not detect toe-off).",
    ]
    if peers.get("versions"):
        lines += [
            "",
            "Peer versions: " + ", ".join(f"{k} {v}" for k, v in peers["versions"].items()) + ".",
        ]
    return "\n".join(lines)


def section() -> str:
    """The peers section of ``docs/validation.md`` (project environment)."""
    peers = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    if not GAITMAP_NPZ.exists() or not MOBGAP_NPZ.exists():
        return "## Real walking data beside peers\n\nNot run: the data excerpts are missing."
    return markdown(peers, hipstride_gaitmap(), hipstride_mobgap())


# -- peers' side (peers environment) ----------------------------------------------------------
def export(src: Path) -> None:
    """Write the int16 excerpts of both peers' example data to ``tests/data``."""
    import pandas as pd

    gm_dir = src / "gaitmap-2.6.0" / "example_data"
    df = pd.read_csv(gm_dir / "imu_sample.csv", header=[0, 1], index_col=0)
    ev = pd.read_csv(gm_dir / "stride_events_sample.csv")
    sa, sg = SCALES["gaitmap"]
    out: dict[str, np.ndarray] = {}
    for side in ("left", "right"):
        s = df[f"{side}_sensor"]
        out[f"{side}_acc"] = _int16(s[["acc_x", "acc_y", "acc_z"]].to_numpy() * sa)
        out[f"{side}_gyr"] = _int16(s[["gyr_x", "gyr_y", "gyr_z"]].to_numpy() * sg)
        e = ev[ev.foot == side]
        out[f"{side}_ic"] = e.ic.to_numpy(dtype=np.float64)
        out[f"{side}_tc"] = e.tc.to_numpy(dtype=np.float64)
    np.savez_compressed(GAITMAP_NPZ, **out)

    os.environ.setdefault("MOBGAP_DATA_DIR", str(_mobgap_cache(src)))
    out = {}
    sa, sg = SCALES["mobgap"]
    for dp in _mobgap_dataset():
        ref = dp.reference_parameters_
        if len(ref.ic_list) == 0:
            continue  # no reference: nothing to score
        g = dp.group_label
        name = f"{g.cohort}_{g.participant_id}_{g.test}_{g.trial}"
        data = dp.data_ss
        out[f"{name}__acc"] = _int16(data[["acc_x", "acc_y", "acc_z"]].to_numpy() * sa)
        out[f"{name}__gyr"] = _int16(data[["gyr_x", "gyr_y", "gyr_z"]].to_numpy() * sg)
        out[f"{name}__ic"] = ref.ic_list["ic"].to_numpy(dtype=np.float64)
        out[f"{name}__left"] = (ref.ic_list["lr_label"] == "left").to_numpy()
        out[f"{name}__wb"] = ref.wb_list[["start", "end"]].to_numpy(dtype=np.float64)
        sp = ref.stride_parameters
        out[f"{name}__stride"] = np.column_stack(
            [sp["start"].to_numpy(dtype=np.float64), sp["stance_time_s"].to_numpy(dtype=np.float64)]
        )
    np.savez_compressed(MOBGAP_NPZ, **out)
    print(f"wrote {GAITMAP_NPZ} and {MOBGAP_NPZ}")


def _int16(x: np.ndarray) -> np.ndarray:
    if np.abs(x).max() >= 32767:
        raise ValueError("value out of int16 range: change SCALES")
    return np.round(x).astype(np.int16)


def _mobgap_cache(src: Path) -> Path:
    """mobgap looks for its example data under $MOBGAP_DATA_DIR/v<version>."""
    cache = src / "mobgap-cache"
    cache.mkdir(exist_ok=True)
    link = cache / "v1.2.0"
    if not link.exists():
        link.symlink_to(src / "mobgap-1.2.0" / "example_data")
    return cache


def _mobgap_dataset() -> Any:
    from mobgap.data import LabExampleDataset

    return LabExampleDataset(reference_system="INDIP", reference_para_level="wb")


def run_peers(src: Path) -> dict[str, Any]:
    """Run gaitmap's and mobgap's detectors on the same data (peers environment)."""
    import warnings
    from importlib.metadata import version

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MOBGAP_DATA_DIR", str(_mobgap_cache(src)))
    gm_cache = src / "gaitmap-cache"
    gm_cache.mkdir(exist_ok=True)
    if not (gm_cache / "v2.6.0").exists():
        (gm_cache / "v2.6.0").symlink_to(src / "gaitmap-2.6.0" / "example_data")
    os.environ.setdefault("GAITMAP_DATA_DIR", str(gm_cache))

    from gaitmap.event_detection import HerzerEventDetection, RamppEventDetection
    from gaitmap.example_data import get_healthy_example_imu_data
    from gaitmap.stride_segmentation import BarthDtw
    from gaitmap.utils.coordinate_conversion import convert_to_fbf

    data = get_healthy_example_imu_data()
    rec = load_gaitmap()
    bf = convert_to_fbf(data, left_like="left_", right_like="right_")
    strides = BarthDtw().segment(data=bf, sampling_rate_hz=GAITMAP_FS_HZ).stride_list_
    gm: dict[str, Any] = {}
    for name, algo in (
        ("Rampp (DTW + Rampp)", RamppEventDetection),
        ("Herzer (DTW + Herzer)", HerzerEventDetection),
    ):
        ed = algo().detect(data=bf, stride_list=strides, sampling_rate_hz=GAITMAP_FS_HZ)
        res = {}
        for ev in ("ic", "tc"):
            pairs = []
            for side in ("left", "right"):
                det = ed.min_vel_event_list_[f"{side}_sensor"][ev].to_numpy() / GAITMAP_FS_HZ
                ref = rec.ic_s[side] if ev == "ic" else rec.tc_s[side]
                pairs.append((ref, det[np.isfinite(det)]))
            res[ev] = score_events(pairs, GAITMAP_TOL_S).to_dict()
        gm[name] = res

    from mobgap.initial_contacts import IcdHKLeeImproved, IcdIonescu, IcdShinImproved
    from mobgap.initial_contacts.pipeline import IcdEmulationPipeline
    from mobgap.laterality import LrcMcCamley, LrcUllrich
    from mobgap.laterality.pipeline import LrcEmulationPipeline

    ds = [dp for dp in _mobgap_dataset() if len(dp.reference_parameters_.ic_list)]
    icd: dict[str, Any] = {}
    for algo in (IcdShinImproved(), IcdIonescu(), IcdHKLeeImproved()):
        pairs = []
        for dp in ds:
            ref = dp.reference_parameters_.ic_list["ic"].to_numpy() / MOBGAP_FS_HZ
            det = IcdEmulationPipeline(algo).run(dp).ic_list_["ic"].to_numpy() / MOBGAP_FS_HZ
            pairs.append((ref, det))
        icd[type(algo).__name__] = score_events(pairs, MOBGAP_TOL_S).to_dict()
    lrc: dict[str, Any] = {}
    for lr in (LrcMcCamley(), LrcUllrich()):
        ok = n = 0
        for dp in ds:
            ref = dp.reference_parameters_.ic_list["lr_label"].to_numpy()
            lab = LrcEmulationPipeline(lr).run(dp).ic_lr_list_["lr_label"].to_numpy()
            ok += int((lab == ref).sum())
            n += len(ref)
        lrc[type(lr).__name__] = {"n": n, "correct_pct": 100.0 * ok / n}
    return {
        "gaitmap": gm,
        "mobgap": {"icd": icd, "lrc": lrc},
        "versions": {p: version(p) for p in ("gaitmap", "gaitmap_mad", "mobgap")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("export", "run", "table"))
    parser.add_argument("--src", type=Path, default=Path("/tmp/peers"), help="extracted sdists")
    args = parser.parse_args(argv)
    if args.command == "export":
        export(args.src)
    elif args.command == "run":
        peers = run_peers(args.src)
        RESULTS.write_text(json.dumps(peers, indent=2, allow_nan=True) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")
        print(markdown(peers, hipstride_gaitmap(), hipstride_mobgap()))
    else:
        print(section())
    return 0


if __name__ == "__main__":
    sys.exit(main())
