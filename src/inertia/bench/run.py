"""``inertia bench``: its options, their checks, the run and ``main``.

``main(argv)`` is the whole command (``inertia bench ARGS``, ``python -m inertia.bench ARGS``,
benchmarks/run.py): it parses ``argv``, checks every option (and that the output folder can be
written) before any work, runs the workloads and prints the table. A bad option is one line,
``inertia: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from .machine import installed, load_average, machine_info, machine_limits, merge_limits
from .processes import process_context, rescale_shares, run_workload, say
from .report import METHOD, SCHEMA, momentum_cost, table, write_results, write_sweep
from .runners import PEERS
from .workloads import WORKLOADS

DEFAULT_OUT = os.path.join("benchmarks", "results")


@dataclass
class Config:
    """What one run does: workload keys, inertia engines, peer names (PEERS keys, installed),
    repetitions, device, output folder, and the sizes of the timing and the limit
    measurements (set from --quick and --tiny)."""

    workloads: list
    engines: list
    peers: list
    reps: int
    device: str = "cpu"
    out: str = DEFAULT_OUT
    plot: bool = True
    quick: bool = False
    tiny: bool = False
    rep_seconds: float = 0.5
    max_epochs: int = 100_000
    limit_n: int = 2048
    limit_reps: int = 5
    exp_n: int = 10_000_000


# -------------------------------------------------------------------------------- options
def add_arguments(p):
    """The ``inertia bench`` options, on an argparse (sub)parser."""
    p.add_argument("--quick", action="store_true",
                   help="3 repetitions of about 0.1 s each, W2 timed on a 64-step prefix of "
                        "its epoch: a minute or two on an idle 2-core machine")
    p.add_argument("--tiny", action="store_true",
                   help="a smoke test on reduced data, one repetition: checks the harness, "
                        "its numbers mean nothing")
    p.add_argument("--workloads", default=None,
                   help="comma list from W1,W2,W3,W4,W5 (default W1-W4; W5 with --device cuda)")
    p.add_argument("--engines", default=None,
                   help="inertia engines to time (default: every installed one)")
    p.add_argument("--peers", default=None,
                   help=f"comma list from {','.join(PEERS)}, or none (default: all installed)")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per system (default 7; --quick 3)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: inertia's torch engine and PyTorch eager on the GPU, plus W5")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for the JSON and the chart (default {DEFAULT_OUT})")
    p.add_argument("--no-plot", action="store_true", help="write no chart")
    p.add_argument("--sweep", action="store_true",
                   help="instead of the workloads, W6: a 64-configuration sweep of the "
                        "comparison network against 64 sequential fits, in run-epochs a "
                        "second (see inertia.bench.sweeps); writes sweep-*.json in --out")
    p.add_argument("--configs", type=int, default=None, metavar="N",
                   help="with --sweep: the grid's size, a square (default 64 = 8 x 8; 256 = "
                        "16 x 16); with --device cuda the torch engine's sweep and PyTorch's "
                        "runs are on the GPU")
    p.add_argument("--jax-python", default=None, metavar="PATH",
                   help="with --sweep: the Python interpreter (with NumPy, jax and optax) "
                        "that runs the JAX peer (default: this one)")
    return p


def build_parser():
    """The argument parser of ``inertia bench``."""
    p = argparse.ArgumentParser(
        prog="inertia bench",
        description="Run the benchmark workloads with every installed engine and peer, side "
                    "by side, and save JSON and a bar chart.")
    return add_arguments(p)


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def choose_workloads(text, device):
    """The workload keys of ``--workloads`` (default: every CPU workload, and W5 on cuda)."""
    if not text:
        return [k for k, w in WORKLOADS.items() if not w.gpu or device == "cuda"]
    wl = [k.upper() for k in _split(text)]
    bad = [k for k in wl if k not in WORKLOADS]
    if bad or not wl:
        raise ValueError(f"--workloads: unknown {', '.join(bad) or '(empty)'}: choose from "
                         f"{', '.join(WORKLOADS)}")
    return wl


def choose_engines(text, notes):
    """The installed inertia engines of ``--engines`` (default: every installed one); one
    note per engine asked for and not installed."""
    from .. import engines as engines_mod

    known = list(engines_mod.ENGINES)
    have = engines_mod.available()
    if not text:
        return have
    eng = _split(text)
    bad = [e for e in eng if e not in known]
    if bad or not eng:
        raise ValueError(f"--engines: unknown {', '.join(bad) or '(empty)'}: choose from "
                         f"{', '.join(known)}")
    notes += [f"inertia engine {e}: skipped (not installed)" for e in eng if e not in have]
    eng = [e for e in eng if e in have]
    if not eng:
        raise ValueError("none of the --engines asked for is installed: "
                         f"installed engines are {', '.join(have)}")
    return eng


def choose_peers(text, notes):
    """The installed peers of ``--peers`` (default: all; "none": none); one note per peer
    whose modules are missing, with how to install them."""
    if text is None:
        peers = list(PEERS)
    elif text.strip().lower() == "none":
        peers = []
    else:
        peers = _split(text)
        bad = [p for p in peers if p not in PEERS]
        if bad:
            raise ValueError(f"--peers: unknown {', '.join(bad)}: choose from "
                             f"{', '.join(PEERS)} (or none)")
    avail = []
    for p in peers:
        missing = [m for m in PEERS[p][1] if not installed(m)]
        if missing:
            notes.append(f"{PEERS[p][0]}: skipped ({', '.join(missing)} not installed: "
                         f"{PEERS[p][2]})")
        else:
            avail.append(p)
    return avail


def check_device(device):
    """A ValueError unless ``device`` is cpu, or cuda with PyTorch seeing a GPU."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        if not installed("torch"):
            raise ValueError("--device cuda needs PyTorch with CUDA: pip install torch")
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: PyTorch sees no CUDA GPU on this machine")


def check_output_folder(out):
    """A ValueError unless the folder ``out`` exists or can be made, and a file can be written
    in it. Tried for real (root may be refused where permissions say yes, as under /proc):
    the folders made for the test and the test file are removed again."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out}: not a folder: give a folder for the results")
    made, parent = [], os.path.abspath(out)
    while not os.path.exists(parent):
        made.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".inertia-bench-", dir=out)
        os.close(fd)
        os.remove(probe)
    except OSError as ex:
        raise ValueError(f"--out {out}: cannot write there ({ex.strerror or ex}): give a "
                         "writable folder") from None
    finally:
        for folder in made:                       # the deepest first
            try:
                os.rmdir(folder)
            except OSError:
                pass


def configure(args):
    """(Config, notes) from parsed arguments; a one-line ValueError for bad ones, raised
    before any work."""
    device = args.device
    quick, tiny = bool(args.quick), bool(getattr(args, "tiny", False))
    notes = []
    wl = choose_workloads(args.workloads, device)
    eng = choose_engines(args.engines, notes)
    peers = choose_peers(args.peers, notes)
    check_device(device)
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    check_output_folder(args.out)
    reps = args.reps or (1 if tiny else 3 if quick else 7)
    cfg = Config(workloads=wl, engines=eng, peers=peers, reps=reps, device=device,
                 out=args.out, plot=not args.no_plot, quick=quick, tiny=tiny,
                 rep_seconds=0.0 if tiny else 0.1 if quick else 0.5,
                 limit_n=512 if tiny else 2048, limit_reps=3 if (quick or tiny) else 7,
                 exp_n=1_000_000 if tiny else 10_000_000)
    return cfg, notes


# ---------------------------------------------------------------------------------- run
def measure_limits(cfg):
    """The machine's limits at this moment, said on stderr."""
    limits = machine_limits(cfg.limit_n, cfg.limit_reps, cfg.exp_n)
    say(f"  machine limits: sgemm {cfg.limit_n}^3 "
        f"{limits['sgemm']['flops_per_s_best'] / 1e9:.1f} GFLOP/s, np.exp "
        f"{limits['exp']['elements_per_s_best'] / 1e9:.2f} Gelem/s")
    return limits


def run_bench(cfg, notes=(), command="inertia bench"):
    """Run the benchmark described by ``cfg``; returns (record, json path, png path)."""
    t_start = time.perf_counter()
    started = datetime.now().astimezone()
    machine = machine_info()
    say(f"inertia bench: {', '.join(cfg.workloads)} · {cfg.reps} repetitions after a warm-up, "
        f"round-robin · {machine['cpu_model']} ({machine['cores']} cores)")
    for note in notes:
        say(f"  {note}")
    limits = measure_limits(cfg)
    ctx = process_context(cfg)
    results = {key: run_workload(ctx, cfg, WORKLOADS[key], limits) for key in cfg.workloads}
    limits = merge_limits(limits, machine_limits(cfg.limit_n, cfg.limit_reps, cfg.exp_n))
    rescale_shares(results, limits)              # shares against the final peak
    machine["load_average_at_end"] = load_average()
    record = {
        "schema": SCHEMA,
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "wall_s": time.perf_counter() - t_start,
        "config": {k: v for k, v in asdict(cfg).items() if k != "out"},
        "machine": machine,
        "limits": limits,
        "workloads": results,
        "momentum_cost": momentum_cost(results),
        "notes": list(notes),
        "method": METHOD,
    }
    json_path, png_path = write_results(record, cfg.out, started, cfg.plot)
    record["wall_s"] = time.perf_counter() - t_start
    return record, json_path, png_path


def run_command(args, command="inertia bench"):
    """Run ``inertia bench`` from parsed arguments and print the table; a bad argument is a
    ValueError. Returns the exit status."""
    if getattr(args, "sweep", False):
        from .sweeps import grid, measure, peers_option

        peers = peers_option(args.peers)
        check_output_folder(args.out)
        configs = getattr(args, "configs", None) or 64
        grid(configs)
        check_device(args.device)
        kw = dict(peers=peers, jax_python=getattr(args, "jax_python", None),
                  configs=configs, device=None if args.device == "cpu" else args.device)
        started, machine = datetime.now().astimezone(), machine_info()
        if args.tiny:
            result = measure(rows=1000, epochs=2, rounds=1, **kw)
        else:
            result = measure(epochs=5 if args.quick else 50, rounds=1 if args.quick else 3,
                             **kw)
        path = write_sweep(args.out, started, {"date": started.isoformat(timespec="seconds"),
                                          "command": command, "machine": machine,
                                          "W6": result})
        print(f"wrote {path}")
        return 0
    if getattr(args, "configs", None) is not None:
        raise ValueError("--configs goes with --sweep (the size of W6's grid): add --sweep "
                         "or leave --configs out")
    if getattr(args, "jax_python", None):
        raise ValueError("--jax-python goes with --sweep (the workloads run JAX in this "
                         "interpreter)")
    cfg, notes = configure(args)
    record, json_path, png_path = run_bench(cfg, notes, command)
    print("\n".join(table(record)))
    print()
    print(f"wrote {json_path}" + (f" and {png_path}" if png_path else "")
          + f" in {record['wall_s']:.0f} s")
    return 0


def main(argv=None):
    """``inertia bench ARGS``: the exit status; bad arguments are one line on stderr,
    ``inertia: error: ...``, and status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return run_command(args, " ".join(["inertia", "bench", *argv]))
    except ValueError as ex:
        print(f"inertia: error: {ex}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inertia: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                    # output piped into head and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
