"""The math of the network, stated once: each activation is a record (``ops.activations``)
that every path (the NumPy and torch engines, the compiled loop, the benchmark) reads."""
