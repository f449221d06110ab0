"""Regenerate tests/data/scalesim_3.0.0.yaml by running SCALE-Sim 3.0.0 itself.

Not part of the test suite (CI does not install SCALE-Sim). To rerun:

    python -m venv /work/venvs/scalesim
    /work/venvs/scalesim/bin/pip install scalesim==3.0.0 'numpy<2.4'
    /work/venvs/scalesim/bin/python tests/data/make_scalesim_3.0.0.py

For every array size and dataflow it writes a SCALE-Sim config (stall-free:
``InterfaceBandwidth: CALC``), a GEMM topology (M, N, K per layer) and a layout
file (required by the CLI, unused with custom layouts off), runs
``python -m scalesim.scale -c CFG -t TOPO -l LAYOUT -p OUT -i gemm`` and records
the ``Total Cycles`` column of COMPUTE_REPORT.csv for every layer.
"""
from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ARRAYS = [(32, 32), (8, 16)]          # (ArrayHeight = rows, ArrayWidth = cols)
DATAFLOWS = ["os", "ws", "is"]
SHAPES = [                            # (M, N, K): M x K input times K x N filter
    (64, 128, 96), (256, 256, 256), (32, 32, 32), (1, 1, 1), (33, 33, 33), (100, 50, 70),
    (17, 200, 45), (256, 128, 256), (7, 300, 129), (128, 1, 512), (1, 512, 128), (65, 31, 97),
]

CONFIG = """[general]
run_name = dse_{df}_{rows}x{cols}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   1024
FilterSramSzkB:  1024
OfmapSramSzkB:   1024
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

LAYOUT_HEADER = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, "
                 "Filter Height Intraline Factor, Filter Width Intraline Factor, Channel Intraline Factor, "
                 "Num Filter Intraline Factor, IFMAP Height Intraline Order, IFMAP Width Intraline Order, "
                 "Channel Intraline Order, IFMAP Height Interline Order, IFMAP Width Interline Order, "
                 "Channel Interline Order, Num Filter Intraline Order, Channel Intraline Order, "
                 "Filter Height Intraline Order, Filter Width Intraline Order, Num Filter Interline Order, "
                 "Channel Interline Order, Filter Height Interline Order, Filter Width Interline Order,\n")
LAYOUT_ROW = "1,1,1,1,1,1,1,2,0,4,5,3,3,0,1,2,7,4,5,6,"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config) as literal blocks, readable in the data file."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))


def main() -> None:
    out = Path(__file__).with_name("scalesim_3.0.0.yaml")
    work = Path(tempfile.mkdtemp(prefix="scalesim-"))
    topo = work / "gemms.csv"
    topo.write_text("Layer Name, M, N, K,\n" + "".join(f"g{i}, {m}, {n}, {k},\n" for i, (m, n, k) in enumerate(SHAPES)))
    layout = work / "layout.csv"
    layout.write_text(LAYOUT_HEADER + "".join(f"g{i},{LAYOUT_ROW}\n" for i in range(len(SHAPES))))
    runs = []
    for rows, cols in ARRAYS:
        for df in DATAFLOWS:
            cfg = work / f"{df}_{rows}x{cols}.cfg"
            cfg.write_text(CONFIG.format(df=df, rows=rows, cols=cols))
            logdir = work / f"out_{df}_{rows}x{cols}"
            cmd = [sys.executable, "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo),
                   "-l", str(layout), "-p", str(logdir), "-i", "gemm"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            report = next(logdir.rglob("COMPUTE_REPORT.csv"))
            with report.open() as f:
                table = [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
            for (m, n, k), row in zip(SHAPES, table):
                runs.append({"rows": rows, "cols": cols, "dataflow": df, "m": m, "n": n, "k": k,
                             "cycles": int(row["Total Cycles"])})
            print(df, rows, cols, [r["cycles"] for r in runs[-len(SHAPES):]], flush=True)
    doc = {
        "tool": "SCALE-Sim 3.0.0 (pip install scalesim==3.0.0 'numpy<2.4')",
        "command": "python -m scalesim.scale -c CFG -t gemms.csv -l layout.csv -p OUT -i gemm",
        "generator": "tests/data/make_scalesim_3.0.0.py (writes the config, topology and layout files)",
        "config": CONFIG.format(df="{os|ws|is}", rows="{rows}", cols="{cols}"),
        "topology_columns": "Layer Name, M, N, K (M x K input, K x N filter, M x N output)",
        "cycles_column": "COMPUTE_REPORT.csv 'Total Cycles' (stall-free: InterfaceBandwidth CALC)",
        "runs": runs,
    }
    out.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
