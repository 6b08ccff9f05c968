"""A group of torch-engine runs (one sweep shard: the same data, batches, row order and
architecture, each run its own optimizer settings) trained together with batched matmuls,
each run ending where its own ``fit`` on the torch engine would (to round-off).

The R runs' parameters are stacked into one (R, p) tensor P on the networks' device, laid out
as ``Network.flat`` (W_0, b_0, W_1, ...), with the velocities V likewise; each layer's W_l
(R, out, in) and b_l (R, out) are views of it. A step gathers the batch's rows once for every
run, runs the forward pass with ``torch.matmul``/``bmm`` (the first layer's input broadcast
over the runs, not copied), the activations and their derivatives through the engine's
``activate_``/``activate_backward_`` (the records' torch ops), the loss's terms and delta from
its record (``ops.losses``), the backward pass with ``bmm``, and the closed-form update of
``optim.rule`` (v' = A v + B g + C w; w' = D w + E v' + F g + H v, the look-ahead shift
before the gradient) with every run's coefficient rows (``fused.runner.coefficient_rows``)
spread over its parameters: (R, p) tensors, one per column, made when a run's settings or
state scalars change. Every convention of SGD, Nesterov in both forms, weight decay,
dampening and QHM therefore train here exactly as the compiled group trains them.

Divergence (on_divergence "stop") is found without a host synchronisation per step: each
step's loss and new weights are checked with ``torch.isfinite`` on the device, a run whose
loss is not finite goes back to the state before its previous step (the last whose loss was
finite) and one whose update is not finite to the state before it, as ``fused/runs.py`` does,
and the run is masked (its state kept by ``torch.where``) for the rest of the run. The host
reads the epoch's losses, the live mask and the stops once an epoch.

``train_group`` covers groups of two or more torch-engine runs whose optimizers have a
closed form, with ``epochs`` or a ``schedule``, any batch size, shuffling, validation data
and on_divergence "stop" or "continue"; it returns None (the caller runs the fits one by one)
for anything else (``fused.group``'s list, plus optimizers without a closed form). torch is
imported only when a torch-engine group is given: ``sweeps.runs`` imports this module
only then.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..fused import runner
from ..ops import activations as _acts
from ..ops import losses as _losses

CACHE_BYTES = 1 << 20     # a CPU's L2 cache, about (see _Group._gradient)

_FIT_DEFAULTS = dict(epochs=None, batch_size=None, shuffle=True, seed=None, schedule=None,
                     validation_data=None, lr_schedule=None, momentum_schedule=None,
                     on_divergence="stop")


def _same_kind(nets):
    """Whether every network is a torch-engine one of one architecture, dtype and device."""
    n0 = nets[0]
    if n0.e.name != "torch":
        return False
    return all(n.e.name == "torch" and n.e.device == n0.e.device and n.dtype == n0.dtype
               and list(n.sizes) == list(n0.sizes) and list(n.acts) == list(n0.acts)
               for n in nets)


def _plans(nets, opts, X, y, loss, plan):
    """Each run's fit Plan (every argument checked as fit checks it), or None when the group
    is not one ``train_group`` covers."""
    from ..training.plan import make_plan

    kw = {**_FIT_DEFAULTS, **plan}
    if set(kw) != set(_FIT_DEFAULTS) or len(nets) < 2 or not _same_kind(nets):
        return None
    if kw["lr_schedule"] is not None or kw["momentum_schedule"] is not None \
            or kw["on_divergence"] not in ("stop", "continue"):
        return None
    plans = []
    for net, opt in zip(nets, opts):
        if opt.closed_form() is None:
            return None
        p = make_plan(net, X, y, loss, opt, kw["epochs"], kw["batch_size"], kw["shuffle"],
                      kw["seed"], kw["schedule"], kw["validation_data"], False, None, None,
                      False, kw["on_divergence"], None, 1, None)
        if p.planned is not None or p.w is not None:
            return None
        plans.append(p)
    return plans


class _Layout:
    """Where each layer's W (out, in) and b (out,) sit in a run's flat parameters (p,)."""

    def __init__(self, sizes):
        self.shapes, self.offsets, off = [], [], 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            self.shapes.append(((n_out, n_in), (n_out,)))
            self.offsets.append((off, off + n_out * n_in))
            off += n_out * n_in + n_out
        self.p = off
        # the number of entries of each parameter, in parameter order (W_0, b_0, W_1, ...)
        self.counts = [int(np.prod(s)) for pair in self.shapes for s in pair]

    def views(self, P):
        """[(W_l (R, out, in), b_l (R, out))]: views of the stacked flat P (R, p)."""
        R = P.shape[0]
        out = []
        for ((o, i), (_,)), (wo, bo) in zip(self.shapes, self.offsets):
            out.append((P[:, wo:bo].view(R, o, i), P[:, bo:bo + o]))
        return out


class _Model:
    """The forward and backward passes of R networks of one architecture at once, in the
    torch engine's verbs for the activations and the loss records for the loss."""

    def __init__(self, net, loss):
        self.e = net.e
        self.acts = list(net.acts)
        self.keeps = [_acts.get(a).keeps_input for a in self.acts]
        self.rowwise = _acts.get(self.acts[-1]).rec.rowwise
        self.rec = _losses.get(loss)
        self.loss = loss

    def forward(self, layers, x):
        """([z_l], [a_l]) of every layer for the shared input rows x (n, in): z_l, a_l
        (R, n, out), a_l the same tensor as z_l where the activation's derivative is written
        from its output (hidden layers), a copy for the output layer and where it needs z."""
        zs, acts = [], []
        a = x
        for l, (W, b) in enumerate(layers):
            z = torch.matmul(a, W.transpose(1, 2))          # (R, n, out); x broadcast
            z.add_(b.unsqueeze(1))
            keep = self.keeps[l] or l == len(layers) - 1
            a = z.clone() if keep else z
            self.e.activate_(self.acts[l], a.view(-1, a.shape[-1]))
            zs.append(z)
            acts.append(a)
        return zs, acts

    def values(self, z, a, y):
        """(R,) float64: each run's loss of outputs z, a (R, n, k) against the shared targets
        y (n, k), from the record's terms (a row-wise output's rows stacked as (R n, k))."""
        R, n, k = a.shape
        rec = self.rec
        if self.rowwise:
            terms = rec.terms(self.e, z.view(-1, k), a.view(-1, k), y.repeat(R, 1))
        else:
            terms = rec.terms(self.e, z, a, y.expand(R, n, k))
        t = terms.reshape(R, -1)
        sums = (t * t).sum(1) if rec.squared else t.sum(1)
        return sums.double() / rec.divisor(n, k)

    def gradient(self, layers, x, y):
        """(loss (R,) float64, G (R, p)): each run's batch loss and the gradient of its mean
        loss, flat in ``_Layout``'s order, at the parameters ``layers`` (views)."""
        zs, acts = self.forward(layers, x)
        value = self.values(zs[-1], acts[-1], y)
        d = _losses.delta_(self.e, self.loss, self.acts[-1], zs[-1], acts[-1], y,
                           torch.empty_like(acts[-1]))
        parts = []
        for l in range(len(layers) - 1, -1, -1):
            a_prev = acts[l - 1] if l > 0 else x
            parts.append(d.sum(1))                                   # b_l's gradient
            parts.append(torch.matmul(d.transpose(1, 2), a_prev).reshape(d.shape[0], -1))
            if l > 0:                                                # before W changes
                d_prev = torch.bmm(d, layers[l][0])
                self.e.activate_backward_(self.acts[l - 1], a_prev, d_prev,
                                          zs[l - 1] if self.keeps[l - 1] else None)
                d = d_prev
        return value, torch.cat(parts[::-1], 1)


class _Group:
    """The runs' stacked state: P, V (R, p) the state now and Pb, Vb the state before the
    last step (a diverging run goes back to it), the live mask and each run's stop on the
    device; the per-run coefficient columns; the optimizers' counters from before the last
    step (``runner.advance_counters``)."""

    def __init__(self, nets, opts, loss):
        self.nets, self.opts = nets, opts
        e = nets[0].e
        self.kw = {"dtype": e.tdtype, "device": e.device}
        self.layout = _Layout(list(nets[0].sizes))
        self.model = _Model(nets[0], loss)
        # on the CPU, runs a step's gradient takes at once: their activations and deltas
        # (z, a, delta of every layer) within about an L2 cache (a full batch of 10,000 rows
        # through 64 runs at once streams from memory and took twice the fits' time)
        self.width = 3 * sum(nets[0].sizes[1:]) * nets[0].dtype.itemsize
        self.cuda = e.device.type == "cuda"
        R, p = len(nets), self.layout.p
        self.P = torch.empty((R, p), **self.kw)
        self.V = torch.empty((R, p), **self.kw)
        for r, (net, opt) in enumerate(zip(nets, opts)):
            net.bind(opt)
            vel = getattr(opt.state, opt.closed_form().buffer)
            torch.cat([q.reshape(-1) for q in net.params()], out=self.P[r])
            torch.cat([v.reshape(-1) for v in vel], out=self.V[r])
        self.Pb, self.Vb = self.P.clone(), self.V.clone()
        self.alive = torch.ones(R, dtype=torch.bool, device=e.device)
        self.meta_back = [opt.state_meta() for opt in opts]
        self.rule_ids = [runner._rule_identity(opt) for opt in opts]
        self._keys, self._cols = None, None
        self.val = None                            # the validation data on the device

    def columns(self, counts):
        """(cols, kinds): cols[kind] the 8 coefficient columns (A B C D E F H look) of that
        row kind, each an (R, p) tensor (a run's row spread over its parameters) or None
        where it is 0 for every run; the negated look column appended (the shift back).
        Made again only when some run's settings or state scalars have changed."""
        keys = [(o.lr, getattr(o, "momentum", 0.0), repr(o.config()),
                 repr({k: v for k, v in o.state_meta().items() if k != "step"}))
                for o in self.opts]
        if keys == self._keys:
            return self._cols
        L, dt = len(self.layout.shapes), self.nets[0].dtype
        coefs, kinds = [], None
        for opt, rid in zip(self.opts, self.rule_ids):
            coef, kinds = runner.coefficient_rows(opt, rid, dt, L, counts, opt.lr,
                                                  getattr(opt, "momentum", 0.0))
            coefs.append(coef)
        spread = np.repeat(np.stack(coefs), self.layout.counts, axis=2)   # (R, K, p, 8)
        cols = []
        for kind in range(spread.shape[1]):
            c = [None if not spread[:, kind, :, j].any() else
                 torch.from_numpy(np.ascontiguousarray(spread[:, kind, :, j])).to(**self.kw)
                 for j in range(spread.shape[3])]
            cols.append(c + [None if c[7] is None else -c[7]])
        self._keys, self._cols = keys, (cols, kinds)
        return self._cols

    def block(self, n):
        """How many runs a gradient of n rows takes at once (see ``_gradient``)."""
        R = len(self.nets)
        return R if self.cuda else max(1, min(R, CACHE_BYTES // (n * self.width)))

    def _gradient(self, U, x, y):
        """``_Model.gradient`` of every run at U (R, p): all at once on a GPU, in blocks of
        runs whose activations fit ``CACHE_BYTES`` on the CPU."""
        R = U.shape[0]
        per = self.block(x.shape[0])
        if per >= R:
            return self.model.gradient(self.layout.views(U), x, y)
        parts = [self.model.gradient(self.layout.views(U[i:i + per]), x, y)
                 for i in range(0, R, per)]
        return torch.cat([v for v, _ in parts]), torch.cat([g for _, g in parts])

    def step(self, x, y, c, s, out, stops, check):
        """One step of every run on the shared rows x, y with the coefficient columns c;
        its losses into out[:, s]; with ``check``, runs that diverge are put back and
        masked (stops[r] = s)."""
        P, V = self.P, self.V
        U = P if c[7] is None else torch.addcmul(P, c[7], V)     # the look-ahead point
        value, G = self._gradient(U, x, y)
        out[:, s] = value
        W = P if c[7] is None else torch.addcmul(U, c[8], V)     # back, as fit shifts back
        v = c[0] * V if c[0] is not None else torch.zeros_like(V)
        for j, t in ((1, G), (2, W)):
            if c[j] is not None:
                v.addcmul_(c[j], t)
        w = W * c[3] if c[3] is not None else torch.zeros_like(W)
        for j, t in ((4, v), (5, G), (6, V)):
            if c[j] is not None:
                w.addcmul_(c[j], t)
        if check:
            live = self.alive
            bad_loss = live & ~torch.isfinite(value)
            go = live & ~bad_loss & torch.isfinite(w).all(1)
            torch.where(live & ~go, torch.full_like(stops, s), stops, out=stops)
            keep = torch.where(bad_loss.unsqueeze(1), self.Pb, P)
            w = torch.where(go.unsqueeze(1), w, keep)
            v = torch.where(go.unsqueeze(1), v,
                            torch.where(bad_loss.unsqueeze(1), self.Vb, V))
            self.alive = go
        self.Pb, self.Vb, self.P, self.V = P, V, w, v

    def epoch(self, X, y, order, starts, counts, check):
        """Every live run through one epoch's steps (rows order[starts[s]:][:counts[s]]
        of the device tensors X, y; order None: the rows in their order). Returns host
        arrays (out (R, S) float64, stops (R,), live (R,) before the epoch)."""
        R, S = len(self.nets), starts.shape[0]
        live = self.alive.cpu().numpy()
        cols, kinds = self.columns(counts)
        out = torch.full((R, S), float("nan"), dtype=torch.float64, device=self.P.device)
        stops = torch.full((R,), S, dtype=torch.int64, device=self.P.device)
        for s in range(S):
            lo, hi = int(starts[s]), int(starts[s] + counts[s])
            if order is None:
                xb, yb = X[lo:hi], y[lo:hi]
            else:
                rows = order[lo:hi]
                xb, yb = X.index_select(0, rows), y.index_select(0, rows)
            self.step(xb, yb, cols[kinds[s]], s, out, stops, check)
        return out.cpu().numpy(), stops.cpu().numpy(), live

    def write_back(self):
        """Every run's parameters and velocities into its network and optimizer."""
        for r, (net, opt) in enumerate(zip(self.nets, self.opts)):
            vel = getattr(opt.state, opt.closed_form().buffer)
            for l, (W, b) in enumerate(self.layout.views(self.P[r:r + 1])):
                net.W[l].copy_(W[0])
                net.b[l].copy_(b[0])
            for l, (W, b) in enumerate(self.layout.views(self.V[r:r + 1])):
                vel[2 * l].copy_(W[0])
                vel[2 * l + 1].copy_(b[0])


def _validation(group, plan):
    """Each run's validation loss (R,) and, for classification losses, accuracy (R,) or
    None, at the runs' state now (one batched forward pass; host arrays)."""
    from ..training.early_stopping import CLASSIFIER_LOSSES, accuracy

    e, model = group.nets[0].e, group.model
    if group.val is None:                          # on the device once
        group.val = (e.from_host(plan.Xv), e.from_host(plan.yv))
    x, y = group.val
    zs, acts = model.forward(group.layout.views(group.P), x)
    loss = model.values(zs[-1], acts[-1], y).cpu().numpy()
    if plan.loss not in CLASSIFIER_LOSSES:
        return loss, None
    outs = acts[-1].cpu().numpy()
    return loss, np.array([accuracy(plan.loss, o, plan.yv) for o in outs])


def _end_epoch(hist, plan, e, losses, val, r, t0):
    """fit's record of epoch e for run r: its mean loss, the validation loss (and
    accuracy), the time, the segment's loss."""
    loss = float(losses.mean())
    hist.loss.append(loss)
    if val is not None:
        hist.val_loss.append(float(val[0][r]))
        if val[1] is not None:
            hist.val_accuracy.append(float(val[1][r]))
    hist.time.append(time.perf_counter() - t0)
    if plan.schedule_given and (e + 1) in plan.seg_ends:
        hist.segment_loss.append(loss)


def _advance(group, r, out, stop, S, check):
    """Count run r's kept steps in its optimizer as the compiled group does; returns
    whether the run diverged at ``stop``."""
    opt = group.opts[r]
    lr, mu = opt.lr, getattr(opt, "momentum", 0.0)
    kept = S if not check or stop == S else stop - (not np.isfinite(out[stop]))
    group.meta_back[r] = runner.advance_counters(opt, group.meta_back[r], kept, lr, mu)
    return kept != S


def _threads(group, plan):
    """fit's intra-op thread rule (``engine.threads``) for the group's largest batched gemm
    (a block of runs, ``_Group.block``): one CPU thread for small ones (on a busy 2-core
    machine two threads took a full batch's step ten times as long), the GPU left alone."""
    sizes = group.nets[0].sizes
    flops = max(2.0 * plan.bs * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return group.nets[0].e.threads(group.block(plan.bs) * flops)


def train_group(nets, opts, X, y, loss, plan):
    """Train the torch-engine runs (nets[r], opts[r]) together with ``fit``'s keyword
    arguments ``plan`` (see ``sweeps.runs._train_group``). Returns their Histories
    (``diverged`` set where a run stopped), or None, having done nothing, for a group this
    path does not cover (the module's docstring)."""
    plans = _plans(nets, opts, X, y, loss, plan)
    if plans is None:
        return None
    group = _Group(nets, opts, loss)
    with _threads(group, plans[0]):
        hists = _train(group, plans)
    group.write_back()
    return hists


def _train(group, plans):
    """fit's epochs for every run of ``group``: their Histories."""
    from ..training import Divergence, History
    from ..training.plan import first_order

    p0, opts, e = plans[0], group.opts, group.nets[0].e
    check = p0.on_divergence != "continue"
    hists = [History() for _ in opts]
    rng, order = first_order(p0)
    Xd, yd = e.from_host(p0.X), e.from_host(p0.y)
    S = p0.per
    t0 = time.perf_counter()
    for ep in range(p0.epochs):
        alive = group.alive.cpu().numpy()
        for (count, hyper), end in zip(p0.segs, p0.seg_ends):
            if end - count == ep and hyper:
                for r, opt in enumerate(opts):
                    if alive[r]:
                        opt.set(**hyper)
        if p0.shuffle:
            rng.shuffle(order)
        rows = torch.from_numpy(order).to(e.device) if p0.shuffle else None
        out, stops, live = group.epoch(Xd, yd, rows, p0.starts, p0.counts, check)
        val = _validation(group, p0) if p0.Xv is not None else None
        for r in np.flatnonzero(live):
            if _advance(group, r, out[r], int(stops[r]), S, check):
                hists[r].diverged = Divergence(ep, int(stops[r]), float(out[r, stops[r]]))
            else:
                _end_epoch(hists[r], plans[r], ep, out[r], val, r, t0)
        if not group.alive.any():
            break
    return hists
