"""The benchmark harness (``inertia bench``): it runs end to end on a tiny configuration,
writes valid JSON and PNG files, skips missing peers with a note, and every peer trains the
same network with the same update rule as inertia. No assertion here is about a time."""

import json

import numpy as np
import pytest

from inertia import bench
from inertia.bench import report, run, runners, workloads

PNG = b"\x89PNG\r\n\x1a\n"


def _tiny(tmp_path, capsys, monkeypatch, *extra, missing=()):
    real = run.installed
    monkeypatch.setattr(run, "installed", lambda m: m not in missing and real(m))
    code = bench.main(["--tiny", "--engines", "numpy", "--out", str(tmp_path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_tiny_run_writes_json_and_png(tmp_path, capsys, monkeypatch):
    code, out, err = _tiny(tmp_path, capsys, monkeypatch, "--workloads", "W1,W2",
                           "--peers", "numpy-loop,jax", missing=("jax",))
    assert code == 0, err
    jsons = list(tmp_path.glob("bench-*.json"))
    pngs = list(tmp_path.glob("bench-*.png"))
    assert len(jsons) == 1 and len(pngs) == 1
    assert pngs[0].read_bytes()[:8] == PNG
    assert jsons[0].stem == pngs[0].stem
    rec = json.loads(jsons[0].read_text())
    for key in ("schema", "date", "command", "config", "machine", "limits", "workloads",
                "momentum_cost", "notes", "method", "files"):
        assert key in rec
    m = rec["machine"]
    for key in ("cpu_model", "cores", "host", "versions", "numpy_blas"):
        assert key in m
    assert m["versions"]["numpy"] == np.__version__
    assert rec["limits"]["sgemm"]["flops_per_s_best"] > 0
    assert rec["limits"]["exp"]["elements_per_s_best"] > 0
    assert len(rec["limits"]["sgemm"]["times_s"]) >= 2
    # the missing peer: a note, printed and stored, and no row
    assert any("JAX" in n and "skipped" in n for n in rec["notes"])
    assert "JAX + optax jit: skipped" in err
    assert set(rec["workloads"]) == {"W1", "W2"}
    w1 = rec["workloads"]["W1"]
    assert w1["steps_per_epoch"] == 1 and w1["gemm_flops_per_epoch"] > 0
    systems = w1["systems"]
    assert "inertia numpy" in systems and "NumPy loop" in systems
    assert not any("JAX" in name for name in systems)
    assert "inertia numpy · momentum 0" in systems
    for name, e in systems.items():
        assert e["error"] is None, (name, e["error"])
        assert len(e["rep_times_s"]) == len(e["rep_cpu_s"]) == rec["config"]["reps"]
        assert e["warmup_s"] is not None
        for k in ("median", "q1", "q3", "iqr"):
            assert k in e["epoch_s"] and k in e["step_s"]
        assert e["ratio_to_inertia"] is not None
        assert e["memory"]["rss_growth_bytes"] is not None
        assert e["check"]["max_rel_param_diff"] < 1e-4, name
    assert systems["inertia numpy"]["check"]["max_rel_param_diff"] == 0
    assert "W1" in rec["momentum_cost"]
    w2 = rec["workloads"]["W2"]
    assert w2["batch_size"] == 32 and w2["steps_per_epoch"] == -(-w2["n"] // 32)
    assert "momentum" in json.dumps(rec["momentum_cost"]["W2"])
    # the printed table
    assert "ms/epoch" in out and "µs/step" in out and "×inertia" in out
    assert "W1 full batch" in out and "W2 small batches" in out
    assert "momentum's cost" in out
    assert str(jsons[0]) in out


def test_no_plot_and_no_peers(tmp_path, capsys, monkeypatch):
    code, out, err = _tiny(tmp_path, capsys, monkeypatch, "--workloads", "W4", "--peers",
                           "none", "--no-plot", "--reps", "2")
    assert code == 0, err
    assert not list(tmp_path.glob("*.png"))
    rec = json.loads(next(tmp_path.glob("bench-*.json")).read_text())
    w4 = rec["workloads"]["W4"]
    assert list(w4["systems"]) == ["inertia numpy"]
    e = w4["systems"]["inertia numpy"]
    assert len(e["rep_times_s"]) == 2
    assert e["gemm_share_of_sgemm"] > 0
    assert "3 gemms per layer per step" in out


@pytest.mark.parametrize("argv,msg", [
    (["--workloads", "W9"], "--workloads"),
    (["--peers", "caffe"], "--peers"),
    (["--engines", "fortran"], "--engines"),
    (["--reps", "0"], "--reps"),
])
def test_bad_arguments(tmp_path, capsys, argv, msg):
    code = bench.main(["--tiny", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("inertia: error:") and msg in err
    assert not list(tmp_path.iterdir())


def test_add_arguments_hooks_into_a_subparser(tmp_path):
    import argparse

    ap = argparse.ArgumentParser(prog="inertia")
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("bench")
    run.add_arguments(p)
    p.set_defaults(func=run.run_command)
    args = ap.parse_args(["bench", "--quick", "--workloads", "W1,W4", "--device", "cpu",
                          "--out", str(tmp_path)])
    assert args.func is run.run_command and args.quick and args.workloads == "W1,W4"
    cfg, notes = run.configure(args)
    assert cfg.workloads == ["W1", "W4"] and cfg.reps == 3 and cfg.quick


def test_gemm_flop_count():
    # 1000-500-1, batch 64 over 1000 rows: 15 batches of 64 and one of 40
    flops = workloads.gemm_flops((1000, 500, 1), 1000, 64)
    per_row = 2 * 1000 * 500 * 2 + 2 * 500 * 1 * 3     # no backward delta into the inputs
    assert flops == 1000 * per_row
    assert workloads.batches(1000, 64)[-1] == (960, 1000)
    assert workloads.gemm_flops((4, 32, 16, 1), 10, None) == 10 * (2 * 4 * 32 * 2 + 2 * 32 * 16 * 3
                                                               + 2 * 16 * 3)


def test_plan():
    w1, w5 = workloads.WORKLOADS["W1"], workloads.WORKLOADS["W5"]
    systems, skipped = runners.plan(w1, ["numpy"], list(runners.PEERS), "cpu")
    names = [s.name for s in systems]
    assert names[0] == "inertia numpy" and not skipped
    assert "inertia numpy · momentum 0" in names
    assert "inertia numpy · neanderthal wd 0.1" in names
    sk = next(s for s in systems if s.kind == "sklearn")
    assert sk.acts == ("sigmoid", "sigmoid", "linear") and "one hidden activation" in sk.note
    systems, skipped = runners.plan(w5, ["numpy"], ["sklearn", "torch"], "cuda")
    assert [s.name for s in systems] == ["PyTorch eager (cuda)"]
    assert "inertia numpy (cpu)" in skipped and "scikit-learn MLP (cpu)" in skipped


@pytest.mark.parametrize("kind", ["torch", "jax", "sklearn", "numpy-loop"])
@pytest.mark.parametrize("key", ["W1", "W3", "W4", "W5"])
def test_peer_trains_the_same_thing(kind, key):
    """Each peer, from the shared weights, lands where inertia's NumPy engine does: full
    batch, mini-batches with and without a last smaller batch, all three losses, and the
    relu network of the GPU workload (here on the cpu, on a few rows)."""
    for mod in runners.PEERS[kind][1]:
        pytest.importorskip(mod)
    w = workloads.WORKLOADS[key]
    system = next(s for s in runners.plan(w, [], [kind], "cpu")[0])
    acts = system.acts or w.acts
    rows = {"W1": 256, "W3": 12, "W4": 104, "W5": 48}[key]
    X, y = workloads.make_data(w, rows)
    r = runners.RUNNERS[kind](system, w, X, y, runners.initial_params(w, acts))
    r.train(2)
    r.sync()
    ref = runners.reference_params(w, rows, acts, w.momentum, "pytorch", 0.0, 2, rows)
    diff = runners.max_rel_param_diff(r.params(), ref)
    assert diff is not None and diff < 1e-4
    start = runners.initial_params(w, acts)
    assert runners.max_rel_param_diff(start, ref) > 1e-4          # training did move the weights


def _written_results():
    """The newest stored run of benchmarks/results (the JSON format users compare with)."""
    import os

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "results")
    if not os.path.isdir(folder):
        pytest.skip("no benchmarks/results folder")
    files = sorted(f for f in os.listdir(folder) if f.startswith("bench-") and
                   f.endswith(".json"))
    if not files:
        pytest.skip("no stored benchmark run")
    with open(os.path.join(folder, files[-1])) as f:
        return json.load(f)


def test_json_keeps_the_stored_format(tmp_path, capsys, monkeypatch):
    """A new run's JSON has the keys of the stored runs, at every level the README lists,
    and the stored run's record prints as a table."""
    stored = _written_results()
    code, out, err = _tiny(tmp_path, capsys, monkeypatch, "--workloads", "W1",
                           "--peers", "numpy-loop")
    assert code == 0, err
    rec = json.loads(next(tmp_path.glob("bench-*.json")).read_text())
    assert set(rec) == set(stored)
    assert set(rec["machine"]) == set(stored["machine"])
    assert set(rec["limits"]["sgemm"]) == set(stored["limits"]["sgemm"])
    assert set(rec["limits"]["exp"]) == set(stored["limits"]["exp"])
    assert set(rec["workloads"]["W1"]) == set(stored["workloads"]["W1"])
    for name in ("inertia numpy", "NumPy loop"):
        assert set(rec["workloads"]["W1"]["systems"][name]) == \
            set(stored["workloads"]["W1"]["systems"][name]), name
    assert rec["method"] == report.METHOD and rec["schema"] == report.SCHEMA
    lines = report.table(stored)
    assert stored["workloads"]["W1"]["description"] in lines


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_out_is_one_line_before_any_work(tmp_path, capsys, where):
    """--out where no folder can be made: a one-line error, through the command line too,
    before any benchmark work (nothing is written, no traceback)."""
    from inertia import cli

    if where == "file":
        (tmp_path / "a-file").write_text("")
        out = str(tmp_path / "a-file" / "results")
    else:
        import os
        if not os.path.isdir("/proc/self"):
            pytest.skip("no /proc")
        out = "/proc/inertia-bench-results"
    code = cli.main(["bench", "--tiny", "--out", out])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("inertia: error: --out") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and "machine limits" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["a-file"] if where == "file" else [])


def test_out_check_makes_nothing_and_refuses_a_file(tmp_path):
    deep = tmp_path / "a" / "b"
    run.check_output_folder(str(deep))
    assert not (tmp_path / "a").exists()             # the folders made to try are removed
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        run.check_output_folder(str(tmp_path / "f"))


def test_cli_hands_bench_its_arguments(capsys):
    """``inertia bench --help`` is the benchmark's own help (its parser, its options)."""
    from inertia import cli

    with pytest.raises(SystemExit) as ex:
        cli.main(["bench", "--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: inertia bench") and "--workloads" in out and "--out" in out


def test_no_import_cycle_between_bench_and_cli():
    """The benchmark never imports the command line, and the command line imports the
    benchmark only when ``inertia bench`` runs."""
    import os
    import subprocess
    import sys

    import inertia

    code = ("import sys, inertia.bench, inertia.bench.processes, inertia.bench.report; "
            "assert 'inertia.cli' not in sys.modules, 'bench imports cli'; "
            "[sys.modules.pop(m) for m in list(sys.modules) if m.startswith('inertia')]; "
            "import inertia.cli; inertia.cli.build_parser(); "
            "assert 'inertia.bench' not in sys.modules, 'cli imports bench'")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "linear", "leaky_relu:0.2",
                                  "elu", "gelu", "gelu:tanh", "silu", "softplus"])
def test_numpy_loop_activation_derivative(name):
    """The NumPy loop's derivative (from the output or the input, as the activation's record
    says) equals the forward pass's central difference in float64 (error O(h^2) ~ 1e-10 for
    h = 1e-5; the kinks of relu and leaky_relu kept away from)."""
    forward, derivative = runners.numpy_activation(name)
    z = np.random.default_rng(0).uniform(-3, 3, (5, 7))
    z[np.abs(z) < 0.1] = 0.5                           # relu's kink
    h = 1e-5
    numeric = (forward(z + h) - forward(z - h)) / (2 * h)
    exact = np.ones_like(z) if derivative is None else derivative(forward(z), z)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-9)
