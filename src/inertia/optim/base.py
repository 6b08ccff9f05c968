"""What every optimizer shares: hyperparameters that ``set`` validates, an explicit state of
flat lists of buffers, the per-parameter update ``apply_`` the network calls, and the
functional form on NumPy arrays."""

from __future__ import annotations

import difflib

import numpy as np


class Optimizer:
    """Base class. Subclasses define:

    kind        registry name (``inertia.optim.OPTIMIZERS``), saved with a model
    HYPER       names of the hyperparameters ``set`` may change
    STATE       the state dataclass; its list fields named in ``STATE_LISTS`` hold the buffers
    validate(h) raise a one-line ValueError for impossible values in the dict h
    slots(name) how many buffers of list ``name`` each parameter has (0 = the list is unused)
    apply_(e, j, p, acc, g, is_bias, n)  update parameter j in place
    """

    kind = "optimizer"
    HYPER: tuple = ()
    FIXED: tuple = ()
    STATE = None
    STATE_LISTS: tuple = ()

    def __init__(self, **h):
        self.validate(h)
        self._assign(h)
        self.state = None

    def _assign(self, h):
        for k, v in h.items():
            setattr(self, k, v)

    def __setattr__(self, name, value):
        """Once built (``state`` set), ``opt.lr = x`` is ``opt.set(lr=x)``: validated and
        normalised; a fixed argument (``FIXED``) or a new name that is nearly a
        hyperparameter's (a misspelling such as ``momentun``) is a one-line error instead of
        a value training never reads. Other new attributes (a subclass's own) are set."""
        d = self.__dict__
        if "state" in d and not d.get("_assigning"):
            if name in self.HYPER:
                self.set(**{name: value})
                return
            if name in self.FIXED:
                raise AttributeError(f"{name} is fixed when the optimizer is made: make a new "
                                     f"{type(self).__name__}({name}=...)")
            near = difflib.get_close_matches(name, self.HYPER, n=1, cutoff=0.8)
            if near and name not in d and not hasattr(type(self), name):
                raise AttributeError(f"{type(self).__name__} has no attribute {name!r}: did "
                                     f"you mean {near[0]}? (its hyperparameters: "
                                     f"{', '.join(self.HYPER)})")
        object.__setattr__(self, name, value)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # hyperparameters ---------------------------------------------------------------
    def config(self) -> dict:
        """The constructor arguments that rebuild this optimizer."""
        return {k: getattr(self, k) for k in self.HYPER + self.FIXED}

    def check(self, **changes) -> dict:
        """The hyperparameters after ``changes``, validated (raises, changes nothing)."""
        unknown = set(changes) - set(self.HYPER)
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for "
                             f"{type(self).__name__}: use {', '.join(self.HYPER)}")
        h = self.config()
        h.update(changes)
        self.validate(h)
        return h

    def set(self, **changes):
        """Change hyperparameters between steps (validated); the state is kept."""
        h = self.check(**changes)
        self.__dict__["_assigning"] = True
        try:
            self._assign({k: h[k] for k in self.HYPER})
        finally:
            self.__dict__["_assigning"] = False
        return self

    @property
    def auto(self) -> list:
        """The hyperparameters still set to the placeholder "auto" (``inertia.fit`` and
        ``inertia.tune`` choose them), in HYPER's order."""
        return [k for k in self.HYPER if isinstance(getattr(self, k, None), str)
                and getattr(self, k) == "auto"]

    def check_numbers(self, what):
        """A one-line ValueError when a hyperparameter is still "auto" (``what``: the call)."""
        if self.auto:
            raise ValueError(f"{what} cannot run with {' and '.join(self.auto)}=\"auto\": "
                             "use inertia.fit (it tunes first) or inertia.tune and set the "
                             "chosen values")

    def reset(self):
        """Forget the state (buffers, step count)."""
        self.state = None

    @property
    def needs_grad_buffer(self) -> bool:
        """Whether ``apply_`` needs the raw gradient in a scratch buffer ``g``."""
        return False

    def lookahead_shift(self, is_bias) -> float:
        """The multiple of ``lookahead_velocity(j)`` added to a weight matrix (is_bias False)
        or bias vector (True) before the gradient is taken and subtracted after: the
        look-ahead point of look-ahead Nesterov (``rule.lookahead``). 0: no shift."""
        return 0.0

    @property
    def lookahead(self) -> bool:
        """Whether the gradient is taken at a shifted (look-ahead) point."""
        return self.lookahead_shift(False) != 0 or self.lookahead_shift(True) != 0

    def lookahead_velocity(self, j):
        """The buffer whose ``lookahead_shift`` multiple moves parameter j to its look-ahead
        point."""
        raise NotImplementedError

    # the compiled loop (inertia.fused) ---------------------------------------------------
    def closed_form(self):
        """The step in closed form (a ``rule.ClosedForm``: the buffer list and the maker of
        coefficient rows for a run of steps), or None when the optimizer has none (AggMo,
        Adam): fit then keeps the engine-call loop."""
        return None

    def advance_(self, steps, lr, mu):
        """Record ``steps`` steps that the compiled loop took with learning rates ``lr`` and
        momenta ``mu`` (one value, or one a step): the state's scalars as ``finish_step_``
        would have left them (the buffers were updated in place)."""
        self.state.step += int(steps)

    # state ---------------------------------------------------------------------------
    def slots(self, name) -> int:
        return 1

    def new_state(self, zeros, shapes):
        """A fresh state whose buffers come from ``zeros(shape)``."""
        lists = {name: [zeros(s) for _ in range(self.slots(name)) for s in shapes]
                 for name in self.STATE_LISTS}
        return self.STATE(**lists)

    def ensure_state(self, e, shapes):
        """Give this optimizer a state for parameters of ``shapes`` on engine ``e``, or check
        that the one it has fits (converting host buffers to engine arrays)."""
        st = self.state
        if st is None:
            self.state = self.new_state(e.zeros, shapes)
            return self.state
        for name in self.STATE_LISTS:
            bufs = getattr(st, name)
            want = [s for _ in range(self.slots(name)) for s in shapes]
            if [tuple(b.shape) for b in bufs] != want:
                raise ValueError("the optimizer's state belongs to a network of another shape: "
                                 "call opt.reset() or use a new optimizer")
            if any(not e.is_array(b) for b in bufs):
                setattr(st, name, [e.from_host(np.asarray(b.cpu() if hasattr(b, "cpu") else b))
                                    for b in bufs])
        return st

    def finish_step_(self):
        """Called once after every parameter of a step was updated."""
        self.state.step += 1

    def apply_(self, e, j, p, acc, g, is_bias, n):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_step(self, n):
        """Raise before a functional step whose arguments cannot work."""

    # functional form -----------------------------------------------------------------
    def init(self, params):
        """A fresh state for a list of NumPy parameter arrays: each buffer has its own
        parameter's shape and dtype (a float32 and a float64 parameter can share a state)."""
        params = [np.asarray(p) for p in params]
        lists = {name: [np.zeros(p.shape, dtype=p.dtype) for _ in range(self.slots(name))
                        for p in params]
                 for name in self.STATE_LISTS}
        return self.STATE(**lists)

    def _check_functional(self, params, grads, state, n=None):
        """Raise a one-line ValueError before a functional step that could not update every
        parameter in place."""
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameters and {len(grads)} gradients: pass "
                             "one gradient per parameter")
        for j, (p, gr) in enumerate(zip(params, grads)):
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                raise ValueError(f"parameter {j} must be a float32 or float64 NumPy array (it "
                                 f"is updated in place), got {type(p).__name__} "
                                 f"{getattr(p, 'dtype', '')}".rstrip())
            if not p.flags.writeable:
                raise ValueError(f"parameter {j} is read-only: pass a writable array")
            if np.shape(p) != np.shape(gr):
                raise ValueError(f"parameter shape {np.shape(p)} and gradient shape "
                                 f"{np.shape(gr)} differ")
        if not isinstance(state, self.STATE):
            raise ValueError(f"state must be the {self.STATE.__name__} that opt.init(params) "
                             f"made, got {type(state).__name__}")
        if n is not None and (isinstance(n, (bool, np.bool_)) or not isinstance(
                n, (int, np.integer)) or n < 1):
            raise ValueError(f"n (the batch size) must be a positive integer or None, got {n!r}")
        P = len(params)
        for name in self.STATE_LISTS:
            bufs = getattr(state, name)
            if len(bufs) != self.slots(name) * P:
                raise ValueError(f"the state holds {len(bufs)} {name} buffers for {P} "
                                 "parameters: make it with opt.init(params)")
            for i, b in enumerate(bufs):
                p = params[i % P]
                if np.shape(b) != p.shape or getattr(b, "dtype", None) != p.dtype:
                    raise ValueError(f"{name} buffer {i} is {getattr(b, 'dtype', '?')} "
                                     f"{np.shape(b)} but its parameter is {p.dtype} {p.shape}: "
                                     "make the state with opt.init(params)")

    def step(self, params, grads, state, n=None):
        """Update the NumPy arrays in ``params`` in place from the loss gradients ``grads``
        (1-D arrays are biases; ``n`` is the batch size). Returns ``state``, updated.

        Each parameter is updated in its own dtype (float32 or float64) with the state
        buffers ``init`` gave it; any writable view works (``W.T``, strided slices)."""
        from ..engines.numpy import NumpyEngine

        self.check_numbers(f"{type(self).__name__}.step")
        self._check_functional(params, grads, state, n)
        self._check_step(n)
        engines = {}
        saved = self.state
        self.state = state
        try:
            for j, (p, gr) in enumerate(zip(params, grads)):
                e = engines.get(p.dtype)
                if e is None:
                    e = engines[p.dtype] = NumpyEngine(p.dtype.name)
                gr = np.asarray(gr, dtype=p.dtype)

                def acc(alpha, beta, out, gr=gr, e=e):
                    return e.axpby(alpha, gr, beta, out)

                g = np.empty(p.shape, dtype=p.dtype) if self.needs_grad_buffer else None
                self.apply_(e, j, p, acc, g, p.ndim == 1, n)
            self.finish_step_()
        finally:
            self.state = saved
        return state

    # persistence ---------------------------------------------------------------------
    def state_meta(self) -> dict:
        """The state's scalars (JSON-able)."""
        st = self.state
        return {k: v for k, v in vars(st).items() if k not in self.STATE_LISTS}

    def state_arrays(self) -> dict:
        """The state's buffers: {list name: [arrays]}."""
        return {name: getattr(self.state, name) for name in self.STATE_LISTS}

    def restore_state(self, meta, arrays, e):
        """Set the state from ``state_meta()`` and ``state_arrays()`` as saved."""
        lists = {name: [e.from_host(a) for a in arrays[name]] for name in self.STATE_LISTS}
        self.state = self.STATE(**lists, **meta)
