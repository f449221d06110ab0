"""`dse system FILE` (describe a system, or simulate it with -w) and the system branch of
`dse run`. Printing lives here; the library never prints."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dse.errors import SpecError


def is_system_file(path_or_name: str) -> bool:
    """True if ``path_or_name`` names a system YAML (it has chips and a topology)."""
    from dse.spec.loader import resolve
    from dse.spec.yaml_io import read_yaml
    from dse.system.spec import is_system_doc

    for kind in ("systems", "architectures"):
        try:
            if is_system_doc(read_yaml(resolve(path_or_name, kind)).data):
                return True
        except SpecError:
            continue
    return False


def parse_parallel(text: str | None, base: dict | None) -> dict | None:
    """``data=8,tensor=8,sequence=true`` over the system file's parallelism."""
    from pydantic import ValidationError

    from dse.system.spec import ParallelismSpec
    from dse.workloads.registry import parse_spec

    if not text:
        return base
    _, given = parse_spec("p:" + text)
    merged = {**(base or {}), **given}
    try:
        ParallelismSpec.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "parallelism"
        msg = err["msg"].removeprefix("Value error, ")
        if "\x00" in msg:
            loc, msg = msg.split("\x00")[1][3:], msg.split("\x00")[2]
        raise SpecError(msg, where="--parallel", field=loc) from None
    return merged


def run_system(file: str, workload: str, batch: int | None, precision: str | None, parallel: str | None,
               fmt: str, out_file: Path | None) -> None:
    from dse.console import print_records, print_summary, write_frame
    from dse.system import load_system, simulate_system
    from dse.workloads import load_workload

    sysm = load_system(file)
    base = sysm.spec.parallelism.model_dump() if sysm.spec.parallelism is not None else None
    par = parse_parallel(parallel, base)
    wl = load_workload(workload, batch=batch, precision=precision)
    result = simulate_system(sysm, wl, par)
    df = result.summary
    if out_file is not None:
        write_frame(df, out_file)
    if not print_records(df, fmt):
        print_summary(result.summary_row, title=f"{sysm.name} · {wl.name}")


def system(
    file: str = typer.Argument(..., help="System YAML file or bundled name."),
    workload: Optional[str] = typer.Option(None, "--workload", "-w",
                                           help="Simulate one training step of this model (its batch is one micro-batch)."),
    parallel: Optional[str] = typer.Option(None, "--parallel", "-P",
                                           help="Parallelism over the file's, e.g. data=8,tensor=8,pipeline=2,micro_batches=8."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", min=1, help="Micro-batch size."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """Describe a system of many chips (links, topology), or simulate a training step on it."""
    from dse.console import fail, out
    from dse.system import load_system
    from dse.units import fmt as show

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    if workload is not None:
        run_system(file, workload, batch, None, parallel, fmt, None)
        return
    sysm = load_system(file)
    spec = sysm.spec
    t = spec.topology
    out.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    shape = f" {'x'.join(map(str, t.shape))}" if t.shape else ""
    out.print(f"{sysm.chips} chips, topology {t.kind}{shape}"
              + (f", nodes of {t.node_size}" if t.node_size else ""))
    chips = Table(title="chips")
    for c in ("architecture", "count"):
        chips.add_column(c)
    for a, g in zip(sysm.archs, spec.chips):
        chips.add_row(a.name, str(g.count))
    out.print(chips)
    inv = sysm.topology.inventory()
    links = Table(title="links (bandwidth per direction of a port)")
    for c in ("name", "kind", "bandwidth", "latency", "energy/bit", "static", "count"):
        links.add_column(c)
    for name, ln in spec.links.items():
        links.add_row(name, ln.kind, show(ln.bandwidth_bps, "bandwidth"), show(ln.latency, "time"),
                      show(ln.energy_per_bit, "energy_per_bit"), show(ln.static_power_w, "power"),
                      str(inv.get(name, 0)))
    out.print(links)
    if spec.parallelism is not None:
        p = spec.parallelism
        out.print(f"parallelism: data {p.data} x tensor {p.tensor} x pipeline {p.pipeline}, "
                  f"{p.micro_batches} micro-batches, ZeRO {p.zero}, recompute {p.recompute}")


def list_systems() -> None:
    """Bundled systems of many chips."""
    from dse.console import out
    from dse.spec.loader import bundled_dir, bundled_names
    from dse.system.spec import load_system_spec

    table = Table(title="bundled systems")
    for c in ("name", "chips", "topology", "description"):
        table.add_column(c, overflow="fold")
    for name in bundled_names("systems"):
        spec, _ = load_system_spec(bundled_dir("systems") / f"{name}.yaml")
        table.add_row(name, str(spec.chip_count), spec.topology.kind, spec.description)
    out.print(table)


def list_links() -> None:
    """Link and switch presets (dse/tech/data/links.yaml; sources in LINKS.md)."""
    from dse.console import out
    from dse.system.links import link_presets, switch_presets

    table = Table(title="link presets (bandwidth per direction of one link) and switches")
    for c in ("name", "kind", "bandwidth", "latency", "energy/bit", "description"):
        table.add_column(c, overflow="fold")
    for name, e in link_presets().items():
        table.add_row(name, e["kind"], str(e["bandwidth"]), str(e["latency"]), str(e["energy_per_bit"]),
                      e.get("description", ""))
    for name, e in switch_presets().items():
        table.add_row(name, "switch", str(e["bandwidth"]), str(e["latency"]), str(e["energy_per_bit"]),
                      e.get("description", ""))
    out.print(table)
