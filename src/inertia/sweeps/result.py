"""SweepResult: what a sweep measured, run by run (a run = a grid point and a seed)."""

from __future__ import annotations

import numpy as np

from .runs import build_network, history_from


class SweepResult:
    """What ``inertia.sweep`` measured.

    configs   one dict a run: the grid point's hyperparameters and "seed" (None when the
              runs started from the given network's weights)
    names     the grid's hyperparameter names, in order
    loss      (runs, epochs) float64: each epoch's training loss; NaN after a run stopped
    val_loss  (runs, epochs) the validation loss after each epoch, or None without
              validation data
    final     (runs,) the last epoch's val_loss (with validation data) or loss; NaN for a
              run that diverged or did not finish
    final_name  what ``final`` measures: "validation mse" with validation data, else "mse"
    diverged  one entry a run: None, or where it diverged (``Divergence(epoch, step, loss)``)
    best      the index of the finished run with the lowest ``final`` (None if none did)
    """

    def __init__(self, configs, records, arch, loss_name, names, validated, seeded):
        self.configs = configs
        self.names = names
        self.loss_name = loss_name
        self._arch = arch
        self._records = [records[k] for k in range(len(configs))]
        self._histories = [history_from(r) for r in self._records]
        self.seeded = seeded
        epochs = max([len(h.loss) for h in self._histories] + [0])
        self.loss = self._table([h.loss for h in self._histories], epochs)
        self.val_loss = (self._table([h.val_loss for h in self._histories], epochs)
                         if validated else None)
        self.diverged = [h.diverged for h in self._histories]
        last = self.val_loss if validated else self.loss
        done = np.array([d is None and len(h.loss) == epochs
                         for d, h in zip(self.diverged, self._histories)])
        self.final = np.where(done, last[:, -1] if epochs else np.nan, np.nan)
        ok = np.flatnonzero(np.isfinite(self.final))
        self.best = int(ok[np.argmin(self.final[ok])]) if ok.size else None
        # what ``final`` measures: "validation mse" with validation data, else "mse"
        self.final_name = f"validation {loss_name}" if validated else loss_name

    @staticmethod
    def _table(rows, epochs):
        out = np.full((len(rows), epochs), np.nan)
        for k, r in enumerate(rows):
            out[k, :len(r)] = r
        return out

    def __len__(self):
        return len(self.configs)

    def __repr__(self):
        stopped = sum(d is not None for d in self.diverged)
        best = "none finished" if self.best is None else \
            f"best run {self.best} {self.configs[self.best]} at {self.final[self.best]:.6g}"
        return (f"SweepResult({len(self)} runs x {self.loss.shape[1]} epochs, {stopped} "
                f"diverged; {best})")

    def _index(self, k):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise TypeError(f"a run index is an integer (a row of configs), got "
                            f"{type(k).__name__} {k!r}")
        if not -len(self) <= k < len(self):
            raise IndexError(f"run index {k!r} is out of range: the sweep has {len(self)} "
                             "runs (0 .. {})".format(len(self) - 1))
        return int(k) % len(self)

    def network(self, k):
        """A new Network holding run k's trained weights (the last finite ones for a run
        that diverged)."""
        return build_network(self._arch, params=self._records[self._index(k)]["params"])

    def history(self, k):
        """Run k's History (loss, val_loss, time, segment_loss, diverged)."""
        return self._histories[self._index(k)]

    def rows(self):
        """One dict a run: its configuration, final_loss, final_val_loss (with validation
        data), final (the ranked value), diverged (bool), diverged_epoch (from 1, or None),
        epochs (completed)."""
        out = []
        for k, (c, h) in enumerate(zip(self.configs, self._histories)):
            row = dict(c)
            row["final_loss"] = float(h.loss[-1]) if h.loss else float("nan")
            if self.val_loss is not None:
                row["final_val_loss"] = float(h.val_loss[-1]) if h.val_loss else float("nan")
            row["final"] = float(self.final[k])
            row["diverged"] = h.diverged is not None
            row["diverged_epoch"] = None if h.diverged is None else h.diverged.epoch + 1
            row["epochs"] = len(h.loss)
            out.append(row)
        return out

    def to_frame(self):
        """``rows()`` as a pandas DataFrame, one row a run."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SweepResult.to_frame needs pandas: pip install pandas (or use "
                              "SweepResult.rows() for plain dicts)") from None
        return pd.DataFrame(self.rows())

    def points(self):
        """{grid point key: [run indices]} in the grid's order (values given as lists, such
        as AggMo's betas, are keyed by their repr)."""
        groups = {}
        for k, c in enumerate(self.configs):
            key = tuple(repr(c[n]) for n in self.names)
            groups.setdefault(key, []).append(k)
        return groups

    def summary(self):
        """The grid points, best first: [(point, mean final, std final, finished runs,
        diverged runs)], mean and std over the seeds that finished (NaN when none did)."""
        out = []
        for ks in self.points().values():
            vals = self.final[ks]
            ok = vals[np.isfinite(vals)]
            stopped = sum(self.diverged[k] is not None for k in ks)
            point = {n: self.configs[ks[0]][n] for n in self.names}
            out.append((point, float(ok.mean()) if ok.size else np.nan,
                        float(ok.std()) if ok.size else np.nan, int(ok.size), stopped))
        out.sort(key=lambda r: (np.isnan(r[1]), r[1] if not np.isnan(r[1]) else 0.0))
        return out

    def plot(self, path=None, x="lr", y="momentum", color=None, what="both"):
        """The final loss as a heatmap over grid axes x and y (mean over seeds and any other
        axes; an X marks cells where a run diverged) beside the loss curves (mean over
        seeds, one per grid point, coloured by ``color``, default x). ``what``: "both",
        "heatmap" or "curves". With ``path`` the picture is written there (png, pdf, svg,
        jpg; atomically) and the path returned; without, the matplotlib Figure."""
        from . import draw

        return draw.plot(self, path, x, y, color, what)
