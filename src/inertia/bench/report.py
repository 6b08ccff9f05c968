"""The benchmark's report: the printed table, the bar chart and the JSON record.

The record (``run.run_bench``) is a dict of plain values; ``write_results`` writes it as
``bench-DATE-HOST.json`` (schema ``SCHEMA``, every non-finite float as null) with the chart
beside it, both atomically. ``table`` and ``chart`` read only the record, so a stored JSON can
be redrawn.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

SCHEMA = 1

METHOD = {
    "timing": "time.perf_counter around E epochs inside each system's own process, after a "
              "synchronize where the system is on a GPU; per-step time = rep time / E / "
              "steps, per-epoch time = per-step time x the full epoch's steps (the same as "
              "rep time / E unless --quick times a prefix of the epoch). A warm-up call of one "
              "epoch and a calibration (calls of growing E until one lasts a quarter of "
              "rep_seconds, which sets E so that a repetition lasts about rep_seconds) come "
              "first; then every repetition runs each system once, the order rotated by one "
              "system per repetition. Median and interquartile range over the repetitions. "
              "rep_cpu_s: time.process_time over the same calls (all of the process's threads; "
              "rep_cpu_s / rep_times_s is the average number of busy threads).",
    "memory": "peak RSS growth: VmHWM after warm-up, calibration and the timed repetitions "
              "minus VmRSS just before the system built its model and its copy of the data, "
              "the high-water mark reset there through /proc/self/clear_refs (method "
              "ru_maxrss: the process's lifetime peak minus its peak so far, where the reset "
              "is not allowed). Each system and workload has a fresh process forked from a "
              "server that has imported the libraries; before the reset it trains a 64-row "
              "copy of the problem for one epoch so that thread pools and lazy "
              "initialisation are not counted. On CUDA, gpu_growth_bytes is torch's "
              "max_memory_allocated growth.",
    "gemm_share": "GEMM FLOPs per epoch (per layer and step: forward 2 m in out, backward "
                  "delta 2 m out in except for the first layer, weight gradient 2 m out in) "
                  "divided by the median epoch time, over the best float32 sgemm rate "
                  "(scipy.linalg.blas.sgemm on n x n, n=2048) measured at the start and the "
                  "end of the same run.",
    "exp_share": "sigmoid/tanh/softmax outputs per epoch (one exp-like evaluation each) per "
                 "second, over the best np.exp float32 element rate (1e7 elements, one "
                 "thread) of the same run.",
    "check": "after the timed runs each system retrains from the shared initial weights on "
             "the workload's first check rows; max |p - p_ref| / max |p_ref| over all "
             "parameters against inertia's NumPy engine with the same rule and activations.",
    "same_work": "every system: float32, the same initial weights (inertia's seed-0 "
                 "initialisation), the same rows in the same order (no shuffling), the same "
                 "loss, heavy-ball momentum at a constant learning rate without weight decay "
                 "(PyTorch's b = mu b + g, w -= lr b; optax's trace; scikit-learn's v = mu v - "
                 "lr g, w += v: the same steps). The W1 'neanderthal wd 0.1' row is inertia's "
                 "README run (decoupled decay lr wd / n, biases without momentum): the same "
                 "number of engine calls, a different rule, so it is not a ratio base.",
}



def clean_json(x):
    """JSON-safe copy of ``x``: NumPy scalars to Python, non-finite floats to None, tuples to
    lists, keys to strings."""
    if isinstance(x, dict):
        return {str(k): clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean_json(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_results(record, out, started, plot=True):
    """Write ``record`` to ``out``/bench-YYYYMMDD-HHMMSS-HOST.json (``started``: a datetime)
    and, with ``plot`` and something to draw, the chart as a .png of the same name; sets
    ``record["files"]``. Returns (json path, png path or None)."""
    from ..serialize import atomic_write

    os.makedirs(out, exist_ok=True)
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in record["machine"]["host"])
    stem = os.path.join(out, f"bench-{started:%Y%m%d-%H%M%S}-{host[:40]}")
    json_path = stem + ".json"
    drawable = any("epoch_s" in e and not e["variant"]
                   for rec in record["workloads"].values() for e in rec["systems"].values())
    png_path = stem + ".png" if plot and drawable else None
    record["files"] = {"json": os.path.basename(json_path),
                       "png": os.path.basename(png_path) if png_path else None}
    text = json.dumps(clean_json(record), indent=1, allow_nan=False)
    atomic_write(json_path, lambda f: f.write(text.encode() + b"\n"))
    if png_path:
        chart(record, png_path)
    return json_path, png_path


def write_sweep(out, started, record):
    """Write the sweep workload's ``record`` to ``out``/sweep-YYYYMMDD-HHMMSS-HOST.json
    (atomically); returns the path."""
    from ..serialize import atomic_write

    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in record["machine"]["host"])
    path = os.path.join(out, f"sweep-{started:%Y%m%d-%H%M%S}-{host[:40]}.json")
    text = json.dumps(clean_json(record), indent=1, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode() + b"\n"))
    return path


def momentum_cost(results):
    """{workload: {inertia system: {momentum, epoch_s, epoch_s_momentum_0, ratio,
    iqrs_overlap}}}: inertia's median epoch time with the workload's momentum over its time
    with momentum 0 (W1, W2)."""
    out = {}
    for key in ("W1", "W2"):
        rec = results.get(key)
        if not rec:
            continue
        for name, e in rec["systems"].items():
            if e["kind"] != "inertia" or e["variant"] or "epoch_s" not in e:
                continue
            zero = rec["systems"].get(name + " · momentum 0")
            if zero and "epoch_s" in zero:
                a, b = e["epoch_s"], zero["epoch_s"]
                out.setdefault(key, {})[name] = {
                    "momentum": e["momentum"], "epoch_s": a["median"],
                    "epoch_s_momentum_0": b["median"], "ratio": a["median"] / b["median"],
                    "iqrs_overlap": bool(a["q1"] <= b["q3"] and b["q1"] <= a["q3"])}
    return out


# -------------------------------------------------------------------------------- table
def format_number(x, digits=4):
    """``digits`` significant digits, never in exponent form above 1e-3; "—" for none."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 else f"{x:.2g}"


def format_share(x):
    """A fraction as a percentage with one or two decimals; "—" for none."""
    if x is None:
        return "—"
    x *= 100
    return f"{x:.1f}" if x >= 0.1 else f"{x:.2f}" if x >= 0.01 else "<0.01"


LEGEND = ("×inertia: median time / inertia's fastest engine (> 1: slower). RSS+MiB: "
          "peak resident-set growth of the system's own process (g: GPU MiB). GEMM%: "
          "the network's gemm FLOP/s over the sgemm peak. exp%: sigmoid/tanh/softmax "
          "outputs per second over the np.exp rate. check: max relative parameter "
          "difference to inertia numpy after a few steps from the same weights.")

TABLE_HEAD = (f"  {'system':<42}{'ms/epoch':>10}{'IQR':>8}{'µs/step':>10}{'×inertia':>9}"
              f"{'RSS+MiB':>9}{'GEMM%':>7}{'exp%':>7}{'check':>9}")


def header_lines(record):
    """The table's opening lines: machine, versions, limits, configuration, notes and a
    warning when the machine was busy."""
    m, lim, cfg = record["machine"], record["limits"], record["config"]
    v = m["versions"]
    lines = [f"inertia bench · {record['date']} · {m['host']} · {m['cpu_model']} "
             f"({m['cores']} cores)",
             "  " + ", ".join(f"{k} {v[k]}" for k in ("numpy", "scipy", "torch", "jax",
                                                      "optax", "scikit-learn") if v.get(k)),
             f"  machine limits: sgemm {lim['sgemm']['n']}^3 float32 "
             f"{lim['sgemm']['flops_per_s_best'] / 1e9:.1f} GFLOP/s best "
             f"({lim['sgemm']['flops_per_s_median'] / 1e9:.1f} median); np.exp float32 "
             f"{lim['exp']['elements_per_s_best'] / 1e9:.2f} Gelem/s best, one thread",
             f"  {cfg['reps']} repetition(s) per system after a warm-up and a calibration, "
             "round-robin, medians with the interquartile range"
             + (" (--quick)" if cfg["quick"] else "")
             + (" (--tiny: numbers mean nothing)" if cfg["tiny"] else "")]
    lines += [f"  {note}" for note in record["notes"]]
    loads = [m.get("load_average_at_start"), m.get("load_average_at_end")]
    busy = max((x[0] for x in loads if x), default=0.0)
    if busy > 0.5 * (m.get("cores_usable") or m["cores"] or 1):
        lines.append(f"  warning: the machine was busy (1-minute load average up to {busy:.1f} "
                     f"on {m['cores']} cores): other processes took CPU time; multi-threaded "
                     "BLAS and OpenMP suffer most")
    return lines


def system_line(name, e):
    """One system's row of the table (or why it has no timing)."""
    if "epoch_s" not in e:
        return f"  {name:<42}failed: {e.get('error') or 'no timing'}"
    st, step = e["epoch_s"], e["step_s"]
    mem = e.get("memory", {})
    rss = mem.get("rss_growth_bytes")
    rss = "—" if rss is None else f"{rss / 2**20:.1f}"
    if "gpu_growth_bytes" in mem:
        rss += f"/{mem['gpu_growth_bytes'] / 2**20:.0f}g"
    chk = e.get("check", {}).get("max_rel_param_diff")
    chk = "—" if chk is None else ("0" if chk == 0 else f"{chk:.0e}")
    return (f"  {name:<42}{format_number(st['median'] * 1e3):>10}"
            f"{format_number(st['iqr'] * 1e3, 3):>8}{format_number(step['median'] * 1e6):>10}"
            f"{format_number(e['ratio_to_inertia'], 3):>9}{rss:>9}"
            f"{format_share(e['gemm_share_of_sgemm']):>7}{format_share(e['exp_share']):>7}"
            f"{chk:>9}")


def workload_lines(key, rec):
    """A workload's block of the table: its description, one row per system, the skipped
    systems, the notes, and (W4, W5) inertia's GFLOP/s."""
    lines = ["", rec["description"], TABLE_HEAD]
    lines += [system_line(name, e) for name, e in rec["systems"].items()]
    lines += [f"  {name:<42}skipped: {why}" for name, why in rec["skipped"].items()]
    notes = {}
    for name, e in rec["systems"].items():
        if e.get("note"):
            notes.setdefault(e["note"], []).append(name)
    lines += [f"    note · {', '.join(names)}: {note}" for note, names in notes.items()]
    if key in ("W4", "W5"):
        for name, e in rec["systems"].items():
            if e["kind"] == "inertia" and not e["variant"] and "epoch_s" in e:
                lines.append(f"  {name} on {key}: {e['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s "
                             f"in its 3 gemms per layer per step = "
                             f"{100 * e['gemm_share_of_sgemm']:.0f}% of the measured "
                             "sgemm peak")
    return lines


def momentum_cost_lines(mc):
    """The line on momentum's cost (none without a measurement)."""
    if not mc:
        return []
    parts = []
    for key, d in mc.items():
        for name, c in d.items():
            parts.append(f"{key} {name}: {c['ratio']:.3f}× "
                         f"({format_number(c['epoch_s'] * 1e3)} vs "
                         f"{format_number(c['epoch_s_momentum_0'] * 1e3)} ms/epoch"
                         + ("; the IQRs overlap" if c["iqrs_overlap"] else "") + ")")
    return ["", "momentum's cost (epoch time with momentum / with momentum 0): "
            + "; ".join(parts)]


def table(record):
    """The report as text lines."""
    lines = header_lines(record)
    for key, rec in record["workloads"].items():
        lines += workload_lines(key, rec)
    lines += momentum_cost_lines(record["momentum_cost"])
    lines += ["", LEGEND]
    return lines


# -------------------------------------------------------------------------------- chart
SYSTEM_COLORS = {"inertia numpy": "#d62728", "inertia torch": "#ff7f0e",
                 "torch": "#1f77b4", "jax": "#2ca02c", "sklearn": "#9467bd",
                 "numpy-loop": "#7f7f7f"}


def system_color(e, k):
    """The bar colour of system entry ``e``, the k-th system of the chart."""
    from .. import plots

    if e["kind"] == "inertia":
        return SYSTEM_COLORS.get(f"inertia {e['engine']}", plots.CYCLE[(k + 3) % 10])
    return SYSTEM_COLORS.get(e["kind"], plots.CYCLE[k % 10])


def _draw_bar(ax, x, width, e, name, color):
    """One system's bar at x: median epoch time in ms, IQR whiskers, the ratio label.
    Returns (q1, q3) in ms."""
    st = e["epoch_s"]
    med = st["median"] * 1e3
    ax.bar(x, med, width * 0.92, color=color,
           label=name if name not in ax.get_legend_handles_labels()[1] else None)
    ax.errorbar(x, med, yerr=[[med - st["q1"] * 1e3], [st["q3"] * 1e3 - med]],
                fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    if e.get("ratio_to_inertia") and e["ratio_to_inertia"] != 1.0:
        ratio = e["ratio_to_inertia"]
        text = f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:#.2g}×"
        ax.annotate(text, (x, st["q3"] * 1e3),
                    xytext=(0, 2), textcoords="offset points", ha="center",
                    va="bottom", fontsize=7, rotation=90)
    return st["q1"] * 1e3, st["q3"] * 1e3


def _label_axes(ax, wls, record):
    """Log scale, workload tick labels, the y label and the title."""
    ax.set_yscale("log")
    ax.set_xticks(range(len(wls)))
    ax.set_xticklabels([f"{rec['key']} {rec['title']}\n"
                        f"{'-'.join(str(s) for s in rec['sizes'])}, "
                        + ("full batch" if rec["batch_size"] is None
                           else f"batch {rec['batch_size']}")
                        for rec in wls], fontsize=9)
    ax.set_ylabel("median time per epoch (ms, log scale)", fontsize=11)
    m = record["machine"]
    ax.set_title(f"inertia bench: time per epoch, lower is better\n{m['cpu_model']}, "
                 f"{m['cores']} cores, {record['date'][:10]}; whiskers: IQR of "
                 f"{record['config']['reps']} reps; labels: time / inertia's fastest engine",
                 fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)


def chart(record, path):
    """Grouped bars: median time per epoch (log scale) per workload and system (variants
    aside), IQR whiskers, the ratio to inertia above each bar. Writes ``path``."""
    from .. import plots

    wls = [rec for rec in record["workloads"].values()
           if any("epoch_s" in e and not e["variant"] for e in rec["systems"].values())]
    names = []
    for rec in wls:
        for name, e in rec["systems"].items():
            if "epoch_s" in e and not e["variant"] and name not in names:
                names.append(name)
    fig, ax = plots.new_figure(figsize=(max(8.0, 1.6 + 1.5 * len(wls)), 5.4))
    width = 0.8 / max(1, len(names))
    colors = {}
    top, bottom = 0.0, math.inf
    for gi, rec in enumerate(wls):
        for k, name in enumerate(names):
            e = rec["systems"].get(name)
            if not e or "epoch_s" not in e:
                continue
            colors.setdefault(name, system_color(e, k))
            q1, q3 = _draw_bar(ax, gi - 0.4 + width * (k + 0.5), width, e, name, colors[name])
            top, bottom = max(top, q3), min(bottom, q1)
    _label_axes(ax, wls, record)
    if top > 0:                                     # room for the ratio labels
        ax.set_ylim(bottom / 2, top * 4)
    fig.legend(fontsize=9, loc="outside lower center", ncols=min(4, len(names)),
               frameon=False)
    return plots.save(fig, path)
