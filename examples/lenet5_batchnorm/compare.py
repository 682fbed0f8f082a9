"""Compare netspec runs: validation accuracy and loss per epoch in one figure, and a table.

    python compare.py RUN_DIR... -o compare.png

Reads each run's metrics.jsonl (one JSON object per epoch: epoch, train_loss, train_acc,
val_loss, val_acc, lr, seconds, ...) and summary.json (the network's report: params). The
legend and the table name each run after its folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def read_metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("-o", "--output", type=Path, default=Path("compare.png"))
    args = parser.parse_args()

    figure, (acc_axes, loss_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = []
    for run in args.runs:
        records = read_metrics(run)
        epochs = [r["epoch"] for r in records]
        (line,) = acc_axes.plot(epochs, [r["val_acc"] for r in records], marker=".", label=run.name)
        loss_axes.plot(epochs, [r["val_loss"] for r in records], marker=".", color=line.get_color())
        loss_axes.plot(
            epochs, [r["train_loss"] for r in records], linestyle=":", color=line.get_color()
        )
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        best = max(records, key=lambda r: r["val_acc"])
        rows.append(
            (
                run.name,
                summary["params"],
                records[-1]["val_acc"],
                records[-1]["val_loss"],
                best["val_acc"],
                best["epoch"],
                sum(r["seconds"] for r in records),
            )
        )
    acc_axes.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    loss_axes.set(title="loss (solid: validation, dotted: training)", xlabel="epoch")
    acc_axes.legend(loc="lower right")
    for axes in (acc_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=100)

    width = max(len("run"), *(len(row[0]) for row in rows))
    print(
        f"{'run':<{width}}  {'params':>7}  {'val_acc':>7}  {'val_loss':>8}  "
        f"{'best (epoch)':>13}  {'seconds':>7}"
    )
    for name, params, acc, loss, best, epoch, seconds in rows:
        print(
            f"{name:<{width}}  {params:>7,}  {acc:>7.2%}  {loss:>8.4f}  "
            f"{best:>7.2%} ({epoch:>3})  {seconds:>7.1f}"
        )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
