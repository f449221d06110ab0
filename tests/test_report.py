"""`dse report` on a small study directory laid out as `dse sweep` writes it.

``make_study`` builds that directory from real ``simulate()`` runs of a few
overridden designs (trials.parquet, study.json, best/*.yaml with per-op and
timeline sidecars, and an Optuna SQLite study holding the same trials), with
HTML in the names the user's YAML gives.
"""
from __future__ import annotations

import base64
import copy
import html as html_lib
import json
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from archs import BASE

from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads import load_workload

EVIL_ARCH = 'toy<script>alert("arch")</script>'
EVIL_TIER = "dram<script>x</script>"
WORKLOADS = [("mlp-small", "mlp:widths=256-512-256,batch=8"), ("gemm-small", "gemm:m=128,n=128,k=256")]
ROWS, DATAFLOW, CHANNELS = "compute.pe.rows", "compute.pe.dataflow", f"memories.{EVIL_TIER}.channels"
DESIGNS = [  # (rows, dataflow, channels)
    (8, "weight_stationary", 1), (16, "weight_stationary", 2), (32, "weight_stationary", 4),
    (16, "output_stationary", 1), (32, "output_stationary", 2), (8, "output_stationary", 4),
]
OBJECTIVES = [("tops_per_w", "maximize"), ("latency_s", "minimize")]


def evil_base() -> dict:
    data = copy.deepcopy(BASE)
    data["name"] = EVIL_ARCH
    data["memories"][0]["name"] = EVIL_TIER
    data["placement"]["weights"] = EVIL_TIER
    return data


def _aggregate(rows: list[dict]) -> dict:
    """Equal-weight mix: totals add up; rates are recomputed from the totals."""
    out = {k: sum(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], (int, float))}
    t, e = out["latency_s"], out["energy_j"]
    out.update(throughput_ops_per_s=out["total_ops"] / t, throughput_samples_per_s=out["samples"] / t,
               avg_power_w=e / t, tops_per_w=out["total_ops"] / e / 1e12, energy_per_sample_j=e / out["samples"],
               area_mm2=rows[0]["area_mm2"], bound=rows[0]["bound"])
    return out


def _ranks(values: list[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting of (maximise, minimise) pairs."""
    signed = [(-a, b) for a, b in values]
    rank, left, r = [-1] * len(values), set(range(len(values))), 0
    while left:
        front = {i for i in left if not any(signed[j][0] <= signed[i][0] and signed[j][1] <= signed[i][1]
                                            and signed[j] != signed[i] for j in left)}
        for i in front:
            rank[i] = r
        left -= front
        r += 1
    return rank


def make_study(out: Path, *, running: bool = False, sidecars: bool = True) -> Path:
    """A study output directory of DESIGNS (plus a failed trial, and a running one if asked)."""
    out.mkdir(parents=True, exist_ok=True)
    base = evil_base()
    (out / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="tiny", directions=[d for _, d in OBJECTIVES])
    dists = {ROWS: optuna.distributions.CategoricalDistribution([8, 16, 32]),
             DATAFLOW: optuna.distributions.CategoricalDistribution(["weight_stationary", "output_stationary"]),
             CHANNELS: optuna.distributions.CategoricalDistribution([1, 2, 4])}
    rows, aggs, results = [], [], {}
    for n, (r, df, ch) in enumerate(DESIGNS):
        params = {ROWS: r, DATAFLOW: df, CHANNELS: ch}
        arch = load_architecture(out / "base.yaml", overrides={ROWS: r, "compute.pe.cols": r, DATAFLOW: df,
                                                               CHANNELS: ch})
        per = []
        for label, spec in WORKLOADS:
            res = simulate(arch, load_workload(spec))
            results[(n, label)] = res
            m = {k: v for k, v in res.summary_row.items() if k not in ("architecture", "workload")}
            per.append(m)
            rows.append({"trial": n, "workload": label, "state": "COMPLETE", "feasible": True, "error": None,
                         **{f"param_{k}": v for k, v in params.items()}, **m})
        agg = _aggregate(per)
        aggs.append(agg)
        rows.append({"trial": n, "workload": "__all__", "state": "COMPLETE", "feasible": True, "error": None,
                     **{f"param_{k}": v for k, v in params.items()}, **agg})
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  values=[agg[m] for m, _ in OBJECTIVES]))
    ranks = _ranks([(a["tops_per_w"], a["latency_s"]) for a in aggs])
    extra = [(len(DESIGNS), "FAIL", "interrupted")] + ([(len(DESIGNS) + 1, "RUNNING", None)] if running else [])
    for n, state, err in extra:
        for label in [w for w, _ in WORKLOADS] + ["__all__"]:
            rows.append({"trial": n, "workload": label, "state": state, "feasible": False, "error": err,
                         f"param_{ROWS}": 16, f"param_{DATAFLOW}": "weight_stationary", f"param_{CHANNELS}": 1})
    table = pd.DataFrame(rows)
    table["pareto_rank"] = table["trial"].map(dict(enumerate(ranks))).fillna(-1).astype(int)
    table.to_parquet(out / "trials.parquet", index=False)
    table.to_csv(out / "trials.csv", index=False)
    info = {"name": "tiny", "description": "three knobs of a <b>toy</b> design", "architecture": EVIL_ARCH,
            "objectives": [{"metric": m, "direction": d} for m, d in OBJECTIVES],
            "parameters": [ROWS, DATAFLOW, CHANNELS], "derived": [], "categorical": [DATAFLOW],
            "workloads": [{"name": w, "spec": s, "weight": 1.0} for w, s in WORKLOADS], "constraints": [],
            "sampler": "grid", "seed": 0, "storage": storage, "optuna_study_name": "tiny"}
    (out / "study.json").write_text(json.dumps(info, indent=2))
    best = out / "best"
    best.mkdir(exist_ok=True)
    order = sorted(range(len(DESIGNS)), key=lambda i: (ranks[i], -aggs[i]["tops_per_w"]))
    for n in order[:3]:
        r, df, ch = DESIGNS[n]
        data = copy.deepcopy(base)
        data["compute"][0].update(rows=r, cols=r, dataflow=df)
        data["memories"][0]["channels"] = ch
        stem = f"{ranks[n]}-trial{n}"
        (best / f"{stem}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        if sidecars:
            res = results[(n, WORKLOADS[0][0])]
            res.ops.to_parquet(best / f"{stem}.ops.parquet", index=False)
            pd.DataFrame(res.timeline).to_parquet(best / f"{stem}.timeline.parquet", index=False)
    return out


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("study") / "out")


@pytest.fixture(scope="module")
def built(study: Path) -> tuple[Path, str]:
    """The report of ``study``, built with the simulator disabled: reports never simulate."""
    import dse.sim.engine as engine

    from dse.report.build import build_report

    def forbidden(*a, **k):
        raise AssertionError("a report must not simulate")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "simulate", forbidden)
        path = build_report(study)
    return path, path.read_text(encoding="utf-8")


def test_report_is_one_self_contained_page(built):
    path, page = built
    assert path.name == "report.html"
    # no external resource: no src/href to another file or host, only data URIs and in-page anchors
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    pngs = images(page)
    # Pareto, importance, energy per sample, bytes per tier, roofline, op bounds (one per
    # workload with per-op results: the fixture's sidecars hold the first), timeline, history
    assert len(pngs) == 8
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)


def test_names_with_html_are_escaped(built):
    _, page = built
    assert "<script" not in page.lower()
    # the architecture name is there as text: escaped markup that unescapes to the name
    assert "toy&lt;script&gt;alert(" in page and EVIL_ARCH in html_lib.unescape(page)
    assert "&lt;b&gt;toy&lt;/b&gt;" in page                          # the study description
    assert "memories.dram&lt;script&gt;x&lt;/script&gt;.channels" in page  # a parameter path naming the tier


def test_markdown_twin_with_images_beside_it(built):
    path, _ = built
    md = path.with_suffix(".md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 8
    for link in links:
        assert (path.parent / link).read_bytes().startswith(b"\x89PNG")
    assert "<script" not in md and "&lt;script&gt;" in md


def test_top_designs_table_ranks_by_pareto_then_first_objective(built, study):
    _, page = built
    t = pd.read_parquet(study / "trials.parquet")
    agg = t[(t["workload"] == "__all__") & (t["state"] == "COMPLETE")]
    expected = agg.sort_values(["pareto_rank", "tops_per_w"], ascending=[True, False])["trial"].tolist()
    section = page.split("Top designs</h2>", 1)[1].split("</table>", 1)[0]
    shown = [int(x) for x in re.findall(r"<th>trial (\d+)", section)]   # one column per design
    assert shown == expected[:len(shown)] and len(shown) == min(5, len(expected))


def test_running_study_without_sidecars_notes_the_missing_figures(tmp_path):
    from dse.report.build import build_report

    out = make_study(tmp_path / "run", running=True, sidecars=False)
    (out / "trials.parquet").unlink()              # fall back to the CSV table
    page = build_report(out).read_text(encoding="utf-8")
    assert "still running" in page
    assert "ops.parquet is missing" in page and "timeline.parquet is missing" in page
    assert len(images(page)) == 5


def test_damaged_study_files_are_noted_not_fatal(tmp_path):
    """A study.json or a per-op table cut short (a full disk, an editor) leaves a report that
    says so, not a traceback."""
    from dse.report.build import build_report

    out = make_study(tmp_path / "run")
    (out / "study.json").write_text("{")
    for sidecar in (out / "best").glob("*.ops.parquet"):
        sidecar.write_bytes(sidecar.read_bytes()[:100])
    page = build_report(out).read_text(encoding="utf-8")
    assert "study.json could not be read" in page
    assert "ops.parquet is missing or could not be read" in page
