"""Paper scale: the assessment on stand-ins of Kvasir and PlantVillage, its stages' time and its peak memory.

    python benchmarks/bench_scale.py --mode a --n 8000                # Kvasir-like, the whole assessment
    python benchmarks/bench_scale.py --mode a --n 8000 --twice        # ... twice: the second reuses the stores
    python benchmarks/bench_scale.py --mode b                         # PlantVillage-like, 54,309 images
    python benchmarks/bench_scale.py --mode a --n 80 --size 64 --out /tmp/scale_check   # a check in ~1 min
    python -m pytest benchmarks/bench_scale.py --benchmark-only      # mode a, 16 images a class at 64 px

Data (``benchmarks/scale_data.py``; seeded, cached under ``--cache``/data and reused): (a) Kvasir-like, N RGB
PNGs (default 8,000 at 256 px) in 8 class folders plus a synthetic folder of 3N with its labels CSV;
(b) PlantVillage-like, M = 54,309 in 38 classes plus a 1x synthetic folder. ``--n``, ``--classes``,
``--synthetic-multiplier`` and ``--size`` make them small for a check.

Mode a runs ``medsyn.workflows.assessment.run_assessment`` with the real set as an ``image_folder`` source and
the synthetic one as a ``folder`` set, both ``store: true`` with ``cache_dir`` = ``--cache``/stores, every
image (per_class, val_per_class, test_per_class null) and these stage settings (``KVASIR_SETTINGS``):
one seed (0); utility cnn3 for 1 epoch (its paper batch size and lr), multipliers [1] (all five regimes);
robustness DeepFool 5 steps (paper 000 §4.1.5), engine auto; privacy SSIM-max q 100, l 10 (paper 000
§4.1.6; the full scan too, unless ``--ssim-scan paper``: only the drawn images), DCR in pixel space and in effnet_lite0 features, empirical epsilon off (a folder
set cannot have it); fidelity effnet_lite0 and the domain space of the Baseline Real classifier: PRDC k 3,
FID, KID (100 subsets of 1000: cheap next to the rest), Inception Score; sampling speed is not run for a
folder set.

Mode b runs only the stages the issue names for PlantVillage, through the evaluation layer (the assessment
always trains the utility classifiers and attacks them, so it cannot be used): the real store build and
split, the synthetic folder's store, effnet_lite0 features of train, test and synthetic, fidelity (PRDC k 3,
FID, KID) of the 1x subset against train, SSIM-max by the paper protocol (q 100, l 10, ``scan="paper"``:
only the drawn synthetic images are scanned against all of train; the value equals the full scan's
``ssim_max_paper``, tests/metrics/test_privacy_ssim_max_protocol.py) and DCR in the feature space (synthetic -> train, holdout test -> train; the pixel-space DCR is left out).

Measured, per run, in a child process (``python bench_scale.py --child job.json``):
  stages       ``metadata.costs.stages`` of results.json: seconds, calls and VmHWM at the stage's end
  outside      the assessment's wall seconds minus its stages: input checks, the output folder's claim
  store        the "real data (read, split)" stage (the real store) + any stage with "store" in its name
               (the synthetic folder's: "synthetic sets (read, store)") + outside
  peak RSS     the sum of VmRSS over the child and all its descendants, sampled from /proc every 0.2 s
               (``--sample-interval``; a peak shorter than that can fall between samples); also the sum
               of RssAnon (without file-backed pages, e.g. of memory-mapped files, which the kernel
               can drop), the child's own VmHWM (exact, at its end) and the sum over every process seen
               of its VmHWM (an upper bound of the tree's peak)
``--twice`` runs the same mode again into the same store cache and reports both store times (target for
mode a: the second >= 10x faster). The first run starts from an empty store cache unless ``--reuse-stores``.
Outputs under ``--out`` (default benchmarks/.scale_runs/): ``<mode>-n<n>-<size>px-<time>/summary.json`` and
``summary.md`` (the tables printed); per run ``run<k>/``: the assessment folder, the child's log and
``memory.csv`` (the tree's RSS at every sample, to see when the peak came).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_data import DataSetPaths, DataSetSpec, ensure_data_set, kvasir_like, plantvillage_like

DEFAULT_OUT = Path(__file__).resolve().parent / ".scale_runs"
SAMPLE_INTERVAL_S = 0.2
STORE_SPEEDUP_TARGET = 10.0
REAL_DATA_STAGE = "real data (read, split)"
SEED = 0
# The order the stages run in, for the tables (results.json sorts its keys); other names follow in theirs.
STAGE_ORDER = (REAL_DATA_STAGE, "synthetic sets (read, store)", "synthetic folder (read, store)", "features", "utility: classifier training",
               "robustness: DeepFool", "synthetic images (generator training and sampling)", "fidelity",
               "fidelity: PSNR, SSIM, LPIPS",
               "sampling speed", "privacy: SSIM-max", "privacy: SSIM-max (paper protocol)", "privacy: DCR",
               "privacy: DCR (feature space)", "privacy: empirical epsilon (ablated generators, Isomap)", "figures")

# Mode a: the stage settings of run_assessment (module doc); every other value is the config's default.
KVASIR_SETTINGS: dict[str, Any] = {
    "seeds": [SEED],
    "utility": {"classifier": {"arch": "cnn3", "epochs": 1}, "multipliers": [1]},
    "robustness": {},                                  # DeepFool steps 5 (paper), engine auto
    "privacy": {"empirical_epsilon": {"enabled": False}},  # SSIM-max q 100, l 10; DCR pixel + effnet_lite0
    "fidelity": {},                                    # effnet_lite0 + domain; PRDC k 3, FID, KID 100 x 1000
    "speed": {},                                       # not run for a folder set
}
# Mode b: fidelity and privacy sections as the assessment parses them, without the domain space (no classifier).
PLANTVILLAGE_FIDELITY: dict[str, Any] = {"domain": False}
PLANTVILLAGE_PRIVACY: dict[str, Any] = {}

# The pytest-benchmark case: mode a at 16 images a class, 64 px.
TINY = {"n": 128, "classes": 8, "size": 64, "synthetic_multiplier": 3}


# --- the data and the job of a run -------------------------------------------------------------------------------


def data_spec(mode: str, n: int | None, classes: int | None, multiplier: int | None, size: int,
              seed: int = SEED) -> DataSetSpec:
    """The stand-in of ``mode`` (a: Kvasir-like, b: PlantVillage-like), paper sizes unless given."""
    make = kvasir_like if mode == "a" else plantvillage_like
    given = {"count": n, "classes": classes, "synthetic_multiplier": multiplier}
    return make(size=size, seed=seed, **{key: value for key, value in given.items() if value is not None})


def store_options(cache: Path, stored: bool = True) -> dict[str, Any]:
    """``store: true`` with the cache's store folder; ``stored=False``: the in-memory path (``--in-memory``)."""
    return {"store": True, "cache_dir": str(cache / "stores")} if stored else {"store": False}


def real_data_options(paths: DataSetPaths, size: int, cache: Path, stored: bool = True) -> dict[str, Any]:
    return {"path": str(paths.real), "size": size, "channels": 3, **store_options(cache, stored)}


def assessment_arguments(paths: DataSetPaths, size: int, cache: Path, ssim_scan: str = "full",
                         stored: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``run_assessment`` for mode a (all but output_dir and progress)."""
    data = {"kind": "image_folder", "options": real_data_options(paths, size, cache, stored), "per_class": None,
            "val_per_class": None, "test_per_class": None}
    synthetic = {"kind": "folder", "path": str(paths.synthetic), "labels_csv": str(paths.labels_csv),
                 **store_options(cache, stored)}
    settings = {**KVASIR_SETTINGS, "privacy": {**KVASIR_SETTINGS["privacy"], "ssim_scan": ssim_scan}}
    return {"data": data, "synthetic_sets": {"synthetic": synthetic}, **settings}


def make_job(mode: str, paths: DataSetPaths, size: int, cache: Path, output_dir: Path,
             ssim_scan: str = "full", stored: bool = True) -> dict[str, Any]:
    """What the child process runs: JSON only, so it travels as a file."""
    if mode == "a":
        return {"mode": "a", "output_dir": str(output_dir),
                "arguments": assessment_arguments(paths, size, cache, ssim_scan, stored)}
    if not stored:
        raise ValueError("--in-memory: mode a only (mode b reads the synthetic folder into its store)")
    return {"mode": "b", "output_dir": str(output_dir), "seed": SEED,
            "data_options": real_data_options(paths, size, cache),
            "synthetic": {"path": str(paths.synthetic), "labels_csv": str(paths.labels_csv), **store_options(cache)},
            "fidelity": PLANTVILLAGE_FIDELITY, "privacy": PLANTVILLAGE_PRIVACY}


# --- the child process: one assessment (mode a) or the PlantVillage stages (mode b) ------------------------------


def run_assessment_job(job: dict[str, Any]) -> Path:
    from medsyn.workflows.assessment import run_assessment

    run_assessment(job["output_dir"], **job["arguments"], progress=False)
    return Path(job["output_dir"]) / "results.json"


def run_plantvillage_job(job: dict[str, Any]) -> Path:
    """Mode b through the evaluation layer, with the assessment's stage names; writes results.json."""
    from medsyn.config.sections import FIRST_FIDELITY_EXTRACTOR, AssessmentPrivacy, FidelitySection
    from medsyn.config.strict import parse_section, section_to_dict
    from medsyn.data.labelled_folder import load_labelled_folder
    from medsyn.data.sources import draw_splits
    from medsyn.evaluation.feature_spaces import FeatureSpaces
    from medsyn.evaluation.fidelity_suite import FIDELITY_METRICS, fidelity_scores
    from medsyn.evaluation.privacy_suite import dcr_scores, ssim_max_scores
    from medsyn.evaluation.stage_costs import StageCosts
    from medsyn.evaluation.synthetic_labels import first_per_class_index

    started = time.perf_counter()
    seed = job["seed"]
    fidelity = section_to_dict(parse_section(FidelitySection, job["fidelity"], path="fidelity"))
    privacy = section_to_dict(parse_section(AssessmentPrivacy, job["privacy"], path="privacy"))
    spaces = FeatureSpaces.from_settings(fidelity, dcr_extractor=FIRST_FIDELITY_EXTRACTOR)
    space = spaces.names[0]
    costs = StageCosts()
    with costs.stage(REAL_DATA_STAGE):
        splits, _manifest = draw_splits("image_folder", job["data_options"], seed=0, per_class=None)
    train, test = splits["train"], splits["test"]
    with costs.stage("synthetic folder (read, store)"):
        synthetic = load_labelled_folder(job["synthetic"]["path"], job["synthetic"]["labels_csv"],
                                         class_names=train.class_names, image_shape=train.image_shape,
                                         store=True, cache_dir=job["synthetic"]["cache_dir"])
    with costs.stage("features"):
        features = {name: spaces.extract(images, space)
                    for name, images in (("train", train.images), ("test", test.images),
                                         ("synthetic", synthetic.images))}
    index_1x = first_per_class_index(synthetic.labels, train.class_counts())
    with costs.stage("fidelity"):
        scores = fidelity_scores(features["train"], features["synthetic"][index_1x], metrics=FIDELITY_METRICS,
                                 k=fidelity["k"], kid=fidelity["kid"], seed=seed)
    with costs.stage("privacy: SSIM-max (paper protocol)"):
        ssim, _ = ssim_max_scores(synthetic.images, train.images, q=privacy["q"], repeats=privacy["repeats"],
                                  seed=seed, scan="paper")
    with costs.stage("privacy: DCR (feature space)"):
        dcr, _ = dcr_scores({space: (features["synthetic"], features["train"], features["test"])})
    results = {
        "workflow": "bench_scale mode b",
        "scores": {"fidelity": {space: scores}, "privacy": {**dcr, **ssim}},
        "metadata": {"wall_seconds": time.perf_counter() - started, "costs": costs.as_metadata(),
                     "data": {"split_sizes": {name: len(split) for name, split in splits.items()},
                              "synthetic": len(synthetic), "image_shape": list(train.image_shape)}},
    }
    path = Path(job["output_dir"]) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return path


def own_status_bytes(key: str) -> int:
    """A kB line of /proc/self/status (VmHWM, VmRSS) in bytes; 0 where there is none."""
    return process_status_bytes(os.getpid(), (key,)).get(key, 0)


def child_main(job_path: Path) -> int:
    """Run the job of ``job_path``; write ``child.json`` next to it (wall seconds, VmHWM, threads, error)."""
    job = json.loads(job_path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    report: dict[str, Any] = {"ok": False}
    try:
        import torch

        report["torch_threads"] = torch.get_num_threads()
        runner = run_assessment_job if job["mode"] == "a" else run_plantvillage_job
        report["results"] = str(runner(job))
        report["ok"] = True
    except BaseException:
        report["error"] = traceback.format_exc()
        traceback.print_exc()
    report["wall_seconds"] = time.perf_counter() - started
    report["vm_hwm_bytes"] = own_status_bytes("VmHWM")
    (job_path.parent / "child.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


# --- the parent: memory of the child's process tree ---------------------------------------------------------


def process_status_bytes(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    """kB fields of /proc/<pid>/status in bytes (a process that has gone returns {})."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in keys:
                    values[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return values


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (/proc/<pid>/stat: the field after the command name); None when it has gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def process_tree(root: int, parent_of: dict[int, int]) -> list[int]:
    """``root`` and all its descendants alive now. ``parent_of`` caches each pid's parent between calls, so
    a sample reads the stat file of new processes only (an orphan, re-parented, leaves the tree either way)."""
    alive = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]
    for gone in set(parent_of) - set(alive):
        del parent_of[gone]
    children: dict[int, list[int]] = {}
    for pid in alive:
        if pid not in parent_of:
            parent = parent_pid(pid)
            if parent is None:
                continue
            parent_of[pid] = parent
        children.setdefault(parent_of[pid], []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


@dataclass
class TreeMemory:
    """Peaks over the samples of a process tree: sum of VmRSS, sum of RssAnon, most processes at once; and
    the sum over every process seen of its last VmHWM (an upper bound of the tree's peak that a peak
    between two samples cannot escape)."""

    peak_rss_bytes: int = 0
    peak_anon_bytes: int = 0
    max_processes: int = 0
    samples: int = 0
    hwm_by_pid: dict[int, int] = field(default_factory=dict)
    parent_of: dict[int, int] = field(default_factory=dict, repr=False)
    series: list[tuple[float, int, int]] = field(default_factory=list, repr=False)  # (s, RSS, anon RSS)

    @property
    def hwm_sum_bytes(self) -> int:
        return sum(self.hwm_by_pid.values())

    def sample(self, root: int, elapsed: float) -> None:
        rss = anon = count = 0
        for pid in process_tree(root, self.parent_of):
            status = process_status_bytes(pid, ("VmRSS", "RssAnon", "VmHWM"))
            if status:
                rss += status.get("VmRSS", 0)
                anon += status.get("RssAnon", 0)
                self.hwm_by_pid[pid] = max(self.hwm_by_pid.get(pid, 0), status.get("VmHWM", 0))
                count += 1
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.peak_anon_bytes = max(self.peak_anon_bytes, anon)
        self.max_processes = max(self.max_processes, count)
        self.samples += 1
        self.series.append((elapsed, rss, anon))

    def write_series(self, path: Path) -> None:
        """memory.csv: seconds since the start, tree RSS and tree anonymous RSS in MiB, one row per sample."""
        rows = [f"{t:.1f},{rss / 2**20:.0f},{anon / 2**20:.0f}" for t, rss, anon in self.series]
        path.write_text("seconds,tree_rss_mib,tree_anon_rss_mib\n" + "\n".join(rows) + "\n", encoding="utf-8")

    def as_dict(self) -> dict[str, int]:
        return {"peak_rss_bytes": self.peak_rss_bytes, "peak_anon_bytes": self.peak_anon_bytes,
                "hwm_sum_bytes": self.hwm_sum_bytes, "max_processes": self.max_processes,
                "processes_seen": len(self.hwm_by_pid), "samples": self.samples}


@dataclass
class RunMeasurement:
    """One child run: its own report (child.json), the tree's memory and the stages of its results.json."""

    label: str
    folder: str
    returncode: int
    wall_seconds: float
    memory: TreeMemory
    child: dict[str, Any]
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    assessment_wall_seconds: float | None = None

    @property
    def outside_stages_seconds(self) -> float | None:
        if self.assessment_wall_seconds is None:
            return None
        return self.assessment_wall_seconds - sum(entry["seconds"] for entry in self.stages.values())

    @property
    def store_seconds(self) -> float:
        """The real store's stage, any stage named for a store, and the unstaged part (module doc)."""
        named = sum(entry["seconds"] for name, entry in self.stages.items()
                    if name == REAL_DATA_STAGE or "store" in name)
        return named + max(self.outside_stages_seconds or 0.0, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "folder": self.folder, "returncode": self.returncode,
                "wall_seconds": self.wall_seconds, "memory": self.memory.as_dict(), "child": self.child,
                "stages": self.stages, "assessment_wall_seconds": self.assessment_wall_seconds,
                "outside_stages_seconds": self.outside_stages_seconds, "store_seconds": self.store_seconds}


def run_child(job: dict[str, Any], folder: Path, label: str, interval: float) -> RunMeasurement:
    """Run ``job`` in a child process, sampling its tree's memory every ``interval`` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job, indent=1) + "\n", encoding="utf-8")
    memory = TreeMemory()
    started = time.perf_counter()
    with open(folder / "child.log", "wb") as log:
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(job_path)],
                                 stdout=log, stderr=subprocess.STDOUT)
        while child.poll() is None:
            memory.sample(child.pid, time.perf_counter() - started)
            time.sleep(interval)
    wall = time.perf_counter() - started
    memory.write_series(folder / "memory.csv")
    report_path = folder / "child.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {"ok": False}
    measured = RunMeasurement(label, str(folder), child.returncode, wall, memory, report)
    if report.get("ok"):
        metadata = json.loads(Path(report["results"]).read_text(encoding="utf-8"))["metadata"]
        measured.stages = metadata["costs"]["stages"]
        measured.assessment_wall_seconds = metadata.get("wall_seconds")
    return measured


# --- one benchmark: data, runs, tables ----------------------------------------------------------------------


def megabytes(value: float | int | None) -> str:
    return "" if value is None else f"{value / 2**20:,.0f}"


def seconds_text(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def stage_table(runs: list[RunMeasurement]) -> list[str]:
    """Markdown: one row per stage (first-seen order), per run its seconds, calls, VmHWM at the end and the
    work it counted with its rate (``metadata.costs``: images, image pairs, ...)."""
    from medsyn.report.cost_table import work_text

    seen = list(dict.fromkeys(name for run in runs for name in run.stages))
    names = [name for name in STAGE_ORDER if name in seen] + [name for name in seen if name not in STAGE_ORDER]
    header = "| stage |" + "".join(f" {run.label} s | calls | VmHWM MiB | work (rate) |" for run in runs)
    lines = [header, "|---|" + "---:|---:|---:|---:|" * len(runs)]
    for name in names:
        cells = ""
        for run in runs:
            entry = run.stages.get(name)
            cells += (f" {seconds_text(entry['seconds'])} | {entry['calls']} | {megabytes(entry['peak_rss_bytes'])} "
                      f"| {work_text(entry)} |" if entry else " | | | |")
        lines.append(f"| {name} |{cells}")
    return lines


def summary_table(runs: list[RunMeasurement]) -> list[str]:
    """Markdown: wall, store, outside-stage seconds and the memory peaks of each run."""
    rows = [
        ("child wall s", lambda r: seconds_text(r.wall_seconds)),
        ("assessment wall s (results.json)", lambda r: seconds_text(r.assessment_wall_seconds)),
        ("outside stages s (synthetic store, checks)", lambda r: seconds_text(r.outside_stages_seconds)),
        ("**store s** (real data stage + store stages + outside)", lambda r: f"**{seconds_text(r.store_seconds)}**"),
        ("peak RSS, process tree MiB (sum of VmRSS)", lambda r: megabytes(r.memory.peak_rss_bytes)),
        ("peak anonymous RSS, process tree MiB (sum of RssAnon)", lambda r: megabytes(r.memory.peak_anon_bytes)),
        ("child VmHWM MiB", lambda r: megabytes(r.child.get("vm_hwm_bytes"))),
        ("sum of VmHWM over the tree's processes MiB (upper bound)", lambda r: megabytes(r.memory.hwm_sum_bytes)),
        ("processes: most at once / seen / samples",
         lambda r: f"{r.memory.max_processes} / {len(r.memory.hwm_by_pid)} / {r.memory.samples}"),
        ("torch threads", lambda r: str(r.child.get("torch_threads", ""))),
    ]
    lines = ["| |" + "".join(f" {run.label} |" for run in runs), "|---|" + "---:|" * len(runs)]
    lines += [f"| {name} |" + "".join(f" {cell(run)} |" for run in runs) for name, cell in rows]
    return lines


def clear_stores(cache: Path) -> None:
    shutil.rmtree(cache / "stores", ignore_errors=True)


def prepare_data(mode: str, spec: DataSetSpec, cache: Path, workers: int) -> DataSetPaths:
    paths = ensure_data_set(spec, cache / "data", workers)
    print(f"data ({mode}): {paths.folder} {'built' if paths.built else 'reused'} in {paths.seconds:.1f} s",
          flush=True)
    return paths


def model_flops(size: int, classes: int) -> dict[str, float]:
    """FLOPs per image (torch's FlopCounterMode; a multiply-add counts 2) of the networks the stages run:
    effnet_lite0's forward at its 224 px input, cnn3's forward and forward + backward at ``size``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from medsyn.metrics.features.effnet_lite0 import INPUT_SIZE, build_effnet_lite0
    from medsyn.models.classifiers import build_classifier

    def counted(run) -> float:
        with FlopCounterMode(display=False) as counter:
            run()
        return float(counter.get_total_flops())

    effnet = build_effnet_lite0().eval()
    cnn3 = build_classifier("cnn3", num_classes=classes, image_shape=(3, size, size))
    with torch.no_grad():
        effnet_forward = counted(lambda: effnet(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)))
        cnn3_forward = counted(lambda: cnn3(torch.zeros(1, 3, size, size)))
    cnn3_training = counted(lambda: cnn3(torch.zeros(1, 3, size, size)).sum().backward())
    return {"effnet_lite0_forward": effnet_forward, "cnn3_forward": cnn3_forward,
            "cnn3_forward_backward": cnn3_training}


def throughput_lines(flops: dict[str, float], runs: list[RunMeasurement]) -> list[str]:
    """What the FLOP counts say about each run's rates: features (an image-extraction is one effnet_lite0 or
    one cnn3 forward, so its GFLOP/s lie between those two bounds) and classifier training (every image pass
    counted as a forward + backward: an upper bound, validation and test passes are forward only)."""
    lines = [f"FLOPs per image: effnet_lite0 forward (224 px) {flops['effnet_lite0_forward'] / 1e9:.3f} G; cnn3 "
             f"forward {flops['cnn3_forward'] / 1e9:.3f} G, forward + backward {flops['cnn3_forward_backward'] / 1e9:.3f} G."]
    for run in runs:
        features = run.stages.get("features", {})
        training = run.stages.get("utility: classifier training", {})
        parts = []
        if features.get("items") and features["seconds"] > 0:
            rate = features["items"] / features["seconds"]
            low, high = sorted((rate * flops["cnn3_forward"], rate * flops["effnet_lite0_forward"]))
            parts.append(f"features {rate:,.1f} extractions/s = {low / 1e9:.1f}-{high / 1e9:.1f} GFLOP/s")
        if training.get("items") and training["seconds"] > 0:
            rate = training["items"] / training["seconds"]
            parts.append(f"classifier training {rate:,.1f} image passes/s <= "
                         f"{rate * flops['cnn3_forward_backward'] / 1e9:.1f} GFLOP/s")
        if parts:
            lines.append(f"{run.label}: " + "; ".join(parts) + ".")
    return lines


def report_lines(mode: str, spec: DataSetSpec, summary: dict[str, Any], runs: list[RunMeasurement]) -> list[str]:
    """The markdown printed and written to summary.md: a heading line, the stage table, the summary table."""
    load_before, load_after = summary["load_average_before"][0], summary["load_average_after"][0]
    lines = [f"Mode {mode}: {spec.count} real + {spec.synthetic_count} synthetic RGB {spec.size} px images, "
             f"{spec.classes} classes; {summary['started']}; load average {load_before:.2f} before, "
             f"{load_after:.2f} after; OMP_NUM_THREADS={summary['omp_num_threads']}",
             "", *stage_table(runs), "", *summary_table(runs), "", *throughput_lines(summary["flops"], runs)]
    if "store_speedup" in summary:
        met = "met" if summary["store_speedup_target_met"] else "not met"
        lines += ["", f"store s, run 1 / run 2: {summary['store_speedup']:.1f}x "
                      f"(target >= {STORE_SPEEDUP_TARGET:.0f}x: {met})"]
    return lines


def measure_runs(mode: str, spec: DataSetSpec, paths: DataSetPaths, *, out: Path, cache: Path, twice: bool,
                 reuse_stores: bool, interval: float, ssim_scan: str = "full",
                 stored: bool = True) -> dict[str, Any]:
    """Run the mode once or twice in child processes; write summary.json and summary.md; return the summary."""
    memory_tag = "" if stored else "-in-memory"
    folder = out / f"{mode}-n{spec.count}-{spec.size}px{memory_tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not reuse_stores:
        clear_stores(cache)
    summary: dict[str, Any] = {
        "mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average_before": os.getloadavg(),
        "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "data": {**asdict(spec), "folder": str(paths.folder), "built": paths.built, "build_seconds": paths.seconds},
        "stored": stored,
        "job": make_job(mode, paths, spec.size, cache, folder / "run1" / "assessment", ssim_scan, stored),
    }
    runs = []
    for number in (1, 2) if twice else (1,):
        label, run_folder = f"run {number}", folder / f"run{number}"
        print(f"{label}: mode {mode}, {spec.count} real + {spec.synthetic_count} synthetic images, "
              f"{spec.size} px -> {run_folder}", flush=True)
        measured = run_child(make_job(mode, paths, spec.size, cache, run_folder / "assessment", ssim_scan, stored),
                             run_folder, label, interval)
        runs.append(measured)
        if measured.returncode != 0:
            print(f"{label} failed (exit {measured.returncode}); log: {run_folder / 'child.log'}")
            print(measured.child.get("error", ""))
            break
    summary.update(finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"), load_average_after=os.getloadavg(),
                   runs=[run.as_dict() for run in runs], flops=model_flops(spec.size, spec.classes))
    if len(runs) == 2 and all(run.returncode == 0 for run in runs):
        summary["store_speedup"] = runs[0].store_seconds / max(runs[1].store_seconds, 1e-9)
        summary["store_speedup_target_met"] = summary["store_speedup"] >= STORE_SPEEDUP_TARGET
    lines = report_lines(mode, spec, summary, runs)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (folder / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwritten: {folder / 'summary.json'}, {folder / 'summary.md'}")
    return summary


# --- pytest-benchmark -----------------------------------------------------------------------------------------


def test_bench_scale_mode_a_tiny(benchmark, tmp_path):
    """Mode a at TINY (16 images a class at 64 px, 3x synthetic): one assessment in a child process."""
    spec = data_spec("a", TINY["n"], TINY["classes"], TINY["synthetic_multiplier"], TINY["size"])
    cache = tmp_path / "cache"
    paths = prepare_data("a", spec, cache, workers=1)
    summaries = []
    benchmark.pedantic(lambda: summaries.append(measure_runs(
        "a", spec, paths, out=tmp_path / "out", cache=cache, twice=False, reuse_stores=False,
        interval=SAMPLE_INTERVAL_S)), rounds=1, iterations=1)
    run = summaries[-1]["runs"][0]
    assert run["returncode"] == 0, run["child"].get("error")
    benchmark.extra_info.update(
        images=spec.count, synthetic=spec.synthetic_count, size=spec.size,
        peak_tree_rss_bytes=run["memory"]["peak_rss_bytes"], child_vm_hwm_bytes=run["child"]["vm_hwm_bytes"],
        store_seconds=run["store_seconds"], stage_seconds={k: v["seconds"] for k, v in run["stages"].items()},
    )


# --- command line -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--mode", choices=("a", "b"), default="a",
                        help="a: Kvasir-like, whole assessment; b: PlantVillage-like, store/features/fidelity/SSIM/DCR")
    parser.add_argument("--n", type=int, default=None, help="real images (default 8,000 for a, 54,309 for b)")
    parser.add_argument("--classes", type=int, default=None, help="classes (default 8 for a, 38 for b)")
    parser.add_argument("--synthetic-multiplier", type=int, default=None,
                        help="synthetic images per real image (default 3 for a, 1 for b)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default benchmarks/.scale_runs)")
    parser.add_argument("--cache", type=Path, default=None, help="data and store cache (default OUT/cache)")
    parser.add_argument("--workers", type=int, default=1, help="processes that write the stand-in PNGs")
    parser.add_argument("--twice", action="store_true", help="run a second time, reusing the stores")
    parser.add_argument("--reuse-stores", action="store_true", help="keep stores of an earlier invocation")
    parser.add_argument("--sample-interval", type=float, default=SAMPLE_INTERVAL_S, help="seconds between RSS samples")
    parser.add_argument("--ssim-scan", choices=("full", "paper"), default="full",
                        help="mode a: privacy.ssim_scan (paper: only the drawn images; the full scan is m x n pairs)")
    parser.add_argument("--in-memory", action="store_true",
                        help="mode a: store: false for both sets (the in-memory path; compare its results.json "
                             "with a stored run's by scripts/compare_results.py)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        return child_main(arguments.child)
    cache = arguments.cache or arguments.out / "cache"
    spec = data_spec(arguments.mode, arguments.n, arguments.classes, arguments.synthetic_multiplier, arguments.size)
    paths = prepare_data(arguments.mode, spec, cache, arguments.workers)
    summary = measure_runs(arguments.mode, spec, paths, out=arguments.out, cache=cache, twice=arguments.twice,
                           reuse_stores=arguments.reuse_stores, interval=arguments.sample_interval,
                           ssim_scan=arguments.ssim_scan, stored=not arguments.in_memory)
    return 0 if all(run["returncode"] == 0 for run in summary["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
