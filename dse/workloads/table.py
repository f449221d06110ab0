"""A workload as a table: one row per op with its arithmetic and bytes per role."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dse.workloads.ops import ROLES, Workload

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["name", "kind", "tag", "precision", "macs", "vector_ops", "ops",
           *(f"bytes_{r}" for r in ROLES), "arithmetic_intensity", "deps"]


def op_table(workload: Workload) -> "pd.DataFrame":
    """One row per op; ``bytes_<role>`` columns for every role (0 where unused); deps comma-joined."""
    import pandas as pd  # on first use, so that loading a workload does not pay for it

    rows = []
    for op in workload.ops:
        by_role = op.bytes_by_role()
        rows.append({
            "name": op.name, "kind": op.kind, "tag": op.tag, "precision": op.precision,
            "macs": op.macs, "vector_ops": float(op.vector_ops), "ops": op.ops,
            **{f"bytes_{r}": float(by_role.get(r, 0.0)) for r in ROLES},
            "arithmetic_intensity": op.arithmetic_intensity, "deps": ",".join(op.deps),
        })
    return pd.DataFrame(rows, columns=COLUMNS)
