"""What a sweep leaves in ``--out`` and shows on the terminal.

- ``best.toml``: the base config with the best trial's values, for ``mmbot run --config``;
- ``sweep.json``: every trial, the best one, the holdout rows, the study and its storage
  (password masked);
- ``param_importances.png`` and ``optimization_history.png``: optuna's matplotlib plots.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from mmbot.config import dumps_toml
from mmbot.sweep.metrics import OBJECTIVES
from mmbot.sweep.storage import mask_url
from mmbot.sweep.study import Counts, SweepOutcome, TrialRecord

__all__ = ["progress_line", "sweep_json", "top_table", "write_outputs"]


def _shown(r: TrialRecord) -> str:
    """The objective as a person reads it: exact decimal text where it is money."""
    if r.objective_exact is not None:
        return r.objective_exact
    return "-" if r.value is None else f"{r.value:.6g}"


def progress_line(total: int, counts: Counts, best: TrialRecord | None, objective: str) -> str:
    """One line: trials done of the total, running, failed, and the best so far."""
    done = counts.claimed - counts.running - counts.waiting
    width = 20
    filled = min(width, width * done // total) if total else width
    bar = "#" * filled + "." * (width - filled)
    best_text = f"best #{best.number} {objective}={_shown(best)}" if best else "best -"
    return (
        f"[{bar}] {done}/{total} trials, {counts.running} running, "
        f"{counts.failed} failed | {best_text}"
    )


def sweep_json(outcome: SweepOutcome) -> dict[str, Any]:
    spec = outcome.spec
    return {
        "study": spec.study_name,
        "storage": mask_url(spec.url),
        "trials_requested": spec.trials,
        "objective": spec.objective.to_dict(),
        "space": spec.space.to_dict(),
        "data": list(spec.search_data),
        "holdout_data": list(spec.holdout),
        "duration_s": spec.duration_s,
        "seed": spec.seed,
        "counts": {
            state: sum(1 for r in outcome.records if r.state == state)
            for state in sorted({r.state for r in outcome.records})
        },
        "ran_here": outcome.ran_here,
        "best": outcome.best.to_dict() if outcome.best else None,
        "holdout": outcome.holdout,
        "trials": [r.to_dict() for r in outcome.records],
    }


def _plots(outcome: SweepOutcome, out: Path) -> dict[str, str]:
    """Write optuna's plots; a plot optuna cannot draw yet is reported, not faked."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import optuna  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    from optuna.visualization import matplotlib as ovm  # noqa: PLC0415

    written: dict[str, str] = {}
    complete = sum(1 for r in outcome.records if r.state == "COMPLETE")
    for name, plot, need in (
        ("optimization_history.png", ovm.plot_optimization_history, 1),
        ("param_importances.png", ovm.plot_param_importances, 2),
    ):
        path = out / name
        if complete < need:
            written[name] = f"not drawn: needs {need} complete trials, have {complete}"
            path.unlink(missing_ok=True)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("always", UserWarning)
            ax = plot(outcome.study)
        fig = ax.figure
        assert isinstance(fig, Figure), "optuna draws on a top-level figure"
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        # e.g. "importances will be equal" with few trials: part of the answer, kept with it
        notes = sorted(
            {
                str(w.message)
                for w in caught
                if not issubclass(w.category, optuna.exceptions.ExperimentalWarning)
            }
        )
        written[name] = str(path) + "".join(f" (optuna: {n})" for n in notes)
    return written


def write_outputs(outcome: SweepOutcome, *, plots: bool = True) -> dict[str, str]:
    """Write every output into ``spec.out_dir``; return name -> path (or why not)."""
    out = outcome.spec.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    best_path = out / "best.toml"
    if outcome.best is not None and outcome.best_config is not None:
        b = outcome.best
        header = (
            f"# mmbot sweep: study {outcome.spec.study_name!r}, trial #{b.number}, "
            f"{outcome.spec.objective.name} = {_shown(b)}\n"
        )
        best_path.write_text(header + dumps_toml(outcome.best_config), encoding="utf-8")
        paths["best.toml"] = str(best_path)
    else:
        best_path.unlink(missing_ok=True)  # never leave an older sweep's answer behind
    if plots:
        paths.update(_plots(outcome, out))
    data = sweep_json(outcome)
    data["files"] = paths
    sweep_path = out / "sweep.json"
    sweep_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    paths["sweep.json"] = str(sweep_path)
    return paths


def _params(params: dict[str, Any]) -> str:
    # the last part of a key names it, unless two keys share it (fixed vs skew half spread)
    last = [k.rsplit(".", 1)[-1] for k in params]
    labels = [
        k.split(".", 1)[-1] if last.count(tail) > 1 else tail
        for k, tail in zip(params, last, strict=True)
    ]
    return " ".join(
        f"{label}={v:.4g}" if isinstance(v, float) else f"{label}={v}"
        for label, v in zip(labels, params.values(), strict=True)
    )


def top_table(outcome: SweepOutcome) -> str:
    """The top trials, with the holdout result beside each where there is one."""
    name = outcome.spec.objective.name
    hold = {row["number"]: row["holdout"] for row in outcome.holdout}
    pnl_too = name != "net_pnl"  # else the objective column already is the net PnL
    head = ["trial", name] + (["net_pnl"] if pnl_too else []) + ["fills"]
    if hold:
        head += [f"holdout {name}"] + (["holdout net_pnl"] if pnl_too else [])
    head.append("params")
    rows = []
    for r in outcome.top:
        m = r.metrics or {}
        row = (
            [f"#{r.number}", _shown(r)]
            + ([m.get("net_pnl", "-")] if pnl_too else [])
            + [str(m.get("fills", "-"))]
        )
        if hold:
            h = hold.get(r.number, {})
            if "error" in h:
                row += [h["error"]] + (["-"] if pnl_too else [])
            else:
                shown = h.get("objective_exact")
                if shown is None:
                    shown = "-" if h.get("value") is None else f"{h['value']:.6g}"
                row += [shown] + ([h["metrics"]["net_pnl"]] if pnl_too else [])
        row.append(_params(r.params))
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)).rstrip()
        for line in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = f"objective: {OBJECTIVES[name]}"
    return "\n".join([*lines, note])
