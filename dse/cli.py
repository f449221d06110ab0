"""The `dse` command line (Typer + Rich). Errors become one line on stderr and exit 2."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from dse.console import err, fail, out, print_records, print_summary, print_table, text, write_frame  # noqa: F401 (dse.cli.out...)
from dse.errors import DseError, printable

# Plain help screens (rich_markup_mode=None): no type tags such as `<bool>` on flags, and
# brackets in help text ('[size]') stay text instead of being read as Rich markup.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Design-space exploration of AI accelerators and their memory hierarchies.")
list_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Show what is bundled.")
app.add_typer(list_app, name="list")
def _version(value: bool) -> None:
    if value:
        from dse import __version__

        out.print(f"dse {__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Design-space exploration of AI accelerators and their memory hierarchies.

    Start with `dse list architectures`, `dse run tpu-v1-like -w resnet50` and `dse sweep quickstart`.
    """


@app.command()
def run(
    arch: str = typer.Argument(..., metavar="ARCH", help="Architecture YAML file or bundled name (see `dse list architectures`)."),
    workload: str = typer.Option(..., "--workload", "-w", help="Workload: generator name (with :k=v,...), trace file or .onnx."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", min=1, help="Override the workload's batch size."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p",
                                            help="Run every op at this precision (int8, fp8, bf16, fp16, fp32)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    per_op: bool = typer.Option(False, "--per-op", help="Print one row per op instead of the summary."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the table to FILE.csv or FILE.parquet."),
    parallel: Optional[str] = typer.Option(None, "--parallel", "-P",
                                           help="For a system file: data=8,tensor=8,pipeline=2,micro_batches=8,..."),
) -> None:
    """Simulate one workload on one architecture (or one training step on a system) and print the summary."""
    from dse.sim.engine import simulate
    from dse.spec.cache import cached_architecture, load_architecture_cached
    from dse.system.cli import is_system_file, run_system
    from dse.workloads import load_workload

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    a = cached_architecture(arch)  # a chip validated before (so not a system file), or None
    if a is None and is_system_file(arch):
        if per_op:
            fail("--per-op: a system has no per-op table")
        return run_system(arch, workload, batch, precision, parallel, fmt, out_file)
    if parallel is not None:
        fail("--parallel applies to a system file (chips and a topology), not to one chip")
    if workload.startswith("serve:") or workload == "serve":  # a request stream: dse/serving/cli.py
        from dse.serving.cli import run_serving_spec
        return run_serving_spec(arch, workload, batch, precision, per_op, fmt, out_file)
    if a is None:
        a = load_architecture_cached(arch)
    w = load_workload(workload, batch=batch, precision=precision)
    result = simulate(a, w)
    if not per_op and out_file is None:  # the common case needs no pandas
        if not print_records([result.summary_row], fmt):
            print_summary(result.summary_row, title=f"{a.name} · {w.name}")
        return
    df = result.ops if per_op else result.summary
    if out_file is not None:
        write_frame(df, out_file)
        # on stderr, so that --format csv/json output stays clean on stdout
        what = f"{len(df)} ops" if per_op else "the summary row"
        reader = "pandas.read_parquet" if out_file.suffix == ".parquet" else "pandas.read_csv"
        err.print(f"wrote {what} ({len(df.columns)} columns) to {out_file}; load it with "
                  f"{reader}('{out_file}')", markup=False)
    if print_records(df, fmt):
        return
    if per_op:
        cols = ["op", "kind", "unit", "latency_s", "macs", "n_tiles", "bound"]
        print_table(df[cols], title=f"{a.name} · {w.name}")
    else:
        print_summary(result.summary_row, title=f"{a.name} · {w.name}")


@app.command("workload")
def workload_table(
    spec: str = typer.Argument(..., metavar="WORKLOAD", help="Generator name (with :k=v,...), trace file or .onnx."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", min=1, help="Override the batch size."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="Run every op at this precision."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write FILE.csv or FILE.parquet."),
) -> None:
    """Print a workload's ops: MACs, vector ops, bytes per tensor role, arithmetic intensity."""
    from dse.workloads import load_workload, op_table

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    w = load_workload(spec, batch=batch, precision=precision)
    df = op_table(w)
    if out_file is not None:
        write_frame(df, out_file)
        err.print(f"wrote {len(df)} ops to {out_file}", markup=False)
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
    else:
        roles = [c for c in df.columns if c.startswith("bytes_") and df[c].any()]
        cols = ["name", "kind", "precision", "macs", "vector_ops", *roles, "arithmetic_intensity"]
        print_table(df[cols], title=f"{w.name}: {len(df)} ops, {w.macs / 1e9:.4g} GMAC, {w.samples} samples")


@app.command()
def check(file: str = typer.Argument(..., metavar="ARCH", help="Architecture YAML file or bundled name.")) -> None:
    """Validate an architecture and print it resolved to SI units."""
    from dse.spec.describe import describe
    from dse.spec.loader import load_architecture

    a = load_architecture(file)
    out.print(describe(a))


from dse.search.cli import sweep; app.command()(sweep)  # noqa: E402,E702  (dse sweep, in dse/search/cli.py)
from dse.report.cli import report; app.command()(report)  # noqa: E402,E702  (dse report, in dse/report/cli.py)
from dse.search.cli import compare; app.command()(compare)  # noqa: E402,E702  (dse compare, in dse/search/cli.py)
from dse.system.cli import system; app.command()(system)  # noqa: E402,E702  (dse system, in dse/system/cli.py)
from dse.validate.cli import validate; app.command()(validate)  # noqa: E402,E702  (dse validate, in dse/validate/cli.py)
from dse.serving.cli import serve; app.command()(serve)  # noqa: E402,E702  (dse serve, in dse/serving/cli.py)


@list_app.command("architectures")
def list_architectures() -> None:
    """Bundled architectures."""
    from dse.spec.loader import bundled_dir, bundled_names, load_architecture

    table = Table(title="bundled architectures")
    for c in ("name", "description"):
        table.add_column(c)
    for name in bundled_names("architectures"):
        a = load_architecture(bundled_dir("architectures") / f"{name}.yaml")
        table.add_row(text(name), text(a.description))
    out.print(table)


from dse.system.cli import list_links, list_systems  # noqa: E402  (dse list systems / links)
list_app.command("systems")(list_systems)
list_app.command("links")(list_links)


@list_app.command("workloads")
def list_workloads() -> None:
    """Built-in workload generators and their parameters."""
    from dse.workloads import list_generators

    table = Table(title="workload generators")
    for c in ("name", "description", "parameters (defaults)"):
        table.add_column(c, overflow="fold")
    for g in list_generators():
        params = ", ".join(f"{k}={v}" for k, v in g.params.items())
        table.add_row(g.name, g.description, params)
    out.print(table)


@app.command()
def replay(
    trace: Path = typer.Argument(..., metavar="TRACE", help="Memory-access trace: '<time> <hex address> <R|W> [size]' per line."),
    memory: str = typer.Option("ddr4-3200,ddr5-4800,hbm3,optane-pmem", "--memory", "-m",
                               help="Comma-separated technologies (see `dse list memories`)."),
    units: int = typer.Option(1, "--units", min=1, help="Channels / DIMMs / stacks of each technology."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """Replay a memory-access trace against memory technologies, without a compute model."""
    import pandas as pd

    from dse.sim.replay import replay as run_replay
    from pydantic import ValidationError

    from dse.spec.architecture import MemoryTier
    from dse.spec.yaml_io import YamlDoc, spec_error_from_validation
    from dse.tech.library import MEMORY_ALIASES, technology
    from dse.tech.models import tier_model
    from dse.workloads.memtrace import parse_memtrace

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    if not trace.exists():
        fail(f"{trace}: file not found")
    df = parse_memtrace(trace)
    rows = []
    for name in [MEMORY_ALIASES.get(m.strip(), m.strip()) for m in memory.split(",") if m.strip()]:
        technology(name)  # one clear line for an unknown name
        try:
            tier = MemoryTier(name=name, technology=name, channels=units)
        except ValidationError as exc:  # a technology that cannot stand alone as a tier
            raise spec_error_from_validation(exc, YamlDoc({}, {}, f"--memory {name}")) from None
        rows.append(run_replay(df, tier_model(tier)))
    table = pd.DataFrame(rows)
    if fmt == "csv":
        sys.stdout.write(table.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(table.to_json(orient="records", indent=2) + "\n")
    else:
        cols = [c for c in ("memory", "family", "accesses", "time_s", "achieved_bandwidth_bps", "row_hit_rate",
                            "energy_j", "energy_per_byte_j", "media_bytes_written") if c in table]
        print_table(table[cols], title=f"replay of {trace.name} ({len(df):,} accesses)")


def _pair(read, write) -> str:
    """'13.9/14.2 pJ/bit' for a read and a write energy in the same unit, else both in full."""
    if read is None and write is None:
        return "-"
    r, w = str(read if read is not None else "-"), str(write if write is not None else "-")
    ru, wu = r.split(" ", 1), w.split(" ", 1)
    if len(ru) == 2 and len(wu) == 2 and ru[1] == wu[1]:
        return f"{ru[0]}/{wu[0]} {ru[1]}"
    return f"{r}/{w}"


@list_app.command("memories")
def list_memories() -> None:
    """Memory technologies of the sourced library (dse/tech/data/memories.yaml)."""
    from dse.tech.library import memory_technologies

    # one line per technology at any width (80 columns, piped): numbers in a table, the source
    # of each energy on a line of its own, cut to what fits
    rows = []
    for name, e in memory_technologies().items():
        timing = e.get("timing") or {}
        energy = e.get("energy") or {}
        rows.append([name, str(e.get("family", "")),
                     str(e.get("peak_bandwidth") or e.get("read_bandwidth") or "-"),
                     str(e.get("read_latency") or timing.get("tRCD") or "-"),
                     _pair(energy.get("read"), energy.get("write")), str(e.get("background_power", "not sourced")),
                     f"{e.get('family', '?')}; activate {energy.get('activate', '-')}; energy from "
                     f"{(e.get('energy_sources') or {}).get('read', '-')}"])
    heads = ("name", "family", "bandwidth", "latency/tRCD", "read/write energy", "background")
    table = Table(title="memory technologies (per unit: a channel, a DIMM or a stack)", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    for c in heads[:1] + heads[2:]:   # the family goes on the line below
        table.add_column(c, no_wrap=True)
    for r in rows:
        table.add_row(*(r[:1] + r[2:-1]))
    out.print(table)
    out.print("family, activate energy and the source of each energy (all: dse/tech/data/SOURCES.md):",
              markup=False, highlight=False)
    for r in rows:
        out.print(f"  {r[0]}: {r[-1]}", markup=False, highlight=False, no_wrap=True, overflow="ellipsis")


@list_app.command("studies")
def list_studies() -> None:
    """Bundled studies: run one with `dse sweep NAME`."""
    from dse.search.resolve import bundled_file, bundled_studies, load_spec

    table = Table(title="bundled studies (dse sweep NAME)")
    table.add_column("name", no_wrap=True)
    table.add_column("description", overflow="fold")
    for name in bundled_studies():
        spec, _, _ = load_spec(bundled_file("studies", name))
        table.add_row(name, spec.description)
    out.print(table)


_warned: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (implausible values, unmapped ONNX ops) as one plain line on stderr, each once."""
    line = f"warning: {printable(str(message))}"
    if line not in _warned:
        _warned.add(line)
        err.print(line, markup=False, highlight=False)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    import atexit
    import gc
    import warnings

    warnings.showwarning = _show_warning
    import signal

    from dse.errors import Terminated

    def terminated(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, terminated)  # as Ctrl-C: a sweep writes its tables before it ends
    # At exit Python looks once more for reference cycles among every object the imports made
    # (~5% of a `dse run`); dse leaves none that need finalising (files are closed by `with`).
    # Frozen objects are skipped; atexit handlers registered later still run before this one.
    atexit.register(gc.freeze)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except DseError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt as exc:
        err.print("terminated" if isinstance(exc, Terminated) else "interrupted")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except BrokenPipeError:  # `dse ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # (Python would write to the closed pipe at exit)
        sys.exit(1)
    except OSError as exc:  # an output or input path the system refuses: a file where a folder
        # must be, a folder where a file must be, no permission, a full disk
        where = exc.filename if exc.filename is not None else ""
        why = {FileExistsError: "exists and is not a folder", NotADirectoryError: "is not a folder",
               IsADirectoryError: "is a folder, not a file"}.get(type(exc), exc.strerror or str(exc))
        err.print(f"error: {where}{': ' if where else ''}{why}", markup=False)
        sys.exit(2)
    except Exception as exc:  # usage errors (Typer vendors its own click: match by behaviour)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dse`, `dse list`: the help is the answer
            sys.stdout.write(exc.format_message() + "\n")
            sys.exit(0)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err.print(f"error: {exc.format_message()}{hint}", markup=False)
            sys.exit(2)
        raise
