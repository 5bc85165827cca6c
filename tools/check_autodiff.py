#!/usr/bin/env python
"""Compare symgrad's gradients with PyTorch autograd and JAX (float64), spec by spec.

    python tools/check_autodiff.py              # all cases, every available backend and form
    python tools/check_autodiff.py --quick      # a handful of cases
    python tools/check_autodiff.py --cases 60 --seed 3

For each case (the Mazur tutorial network, two cases at the relu / leaky_relu kink, and random
small specs that cycle through every activation x loss x bias mode, batch > 1, random theta,
and one 12-10-8-6 network) it
builds the generated module of each backend (numpy, and c when it exists) in both forms
(scalar and vector), calls ``m.gradient(theta, X, T)``, and compares the loss and the gradient
with the same network written here in PyTorch (autograd) and in JAX (``jax.value_and_grad``).
The references are built from the spec's JSON directly (DESIGN.md section 4: theta layer by
layer, weights W[j][i] row-major, then per-unit / shared / no biases; the losses and
reductions as written there; kinks as PyTorch: relu'(0) = 0, leaky_relu'(0) = slope); they
share no code with symgrad.

The error reported is relative to the gradient's scale: max_i |g_i - r_i| / max_i |r_i| (the
loss: |L - L_ref| / |L_ref|).  Any case above 1e-10 (or a build that fails on a valid spec)
makes the exit status 1.  Cases marked "extended" use spec features symgrad may not accept
yet (l1/l2, label smoothing, formula activations and losses); a spec symgrad rejects is
reported as unsupported there, not as a failure.  With neither torch nor jax installed the
script says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import json  # noqa: E402

import numpy as np  # noqa: E402
from _bench_common import EXAMPLES, first_line, optional_import, print_table, temporary_cache, verdict  # noqa: E402

TOLERANCE = 1e-10
HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", {"name": "leaky_relu", "slope": 0.2}, "softplus", "linear"]
OUTPUT_ACTS = ["sigmoid", "tanh", "linear", "softmax", "relu", "leaky_relu", "softplus"]
LOSS_OUTPUTS = ([(loss, act) for loss in ("half_sse", "sse", "mse") for act in OUTPUT_ACTS]
                + [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"),
                   ("binary_cross_entropy", "softmax")])
BIASES = ["per_unit", "shared", "none"]


# -- the references: one network function over a small array namespace -------------------------

class TorchOps:
    name = "torch"

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F

    def asarray(self, a):
        return self.torch.tensor(np.asarray(a, dtype=np.float64), dtype=self.torch.float64)

    def act(self, name, z, slope):
        torch, F = self.torch, self.F
        if name == "sigmoid":
            return torch.sigmoid(z)
        if name == "tanh":
            return torch.tanh(z)
        if name == "relu":
            return torch.relu(z)
        if name == "leaky_relu":
            return F.leaky_relu(z, slope)
        if name == "softplus":  # exact; F.softplus switches to z itself above 20
            return torch.logaddexp(z, torch.zeros_like(z))
        if name == "linear":
            return z
        if name == "softmax":
            return torch.softmax(z, dim=1)
        raise ValueError(name)

    def log_softmax(self, z):
        return self.torch.log_softmax(z, dim=1)

    def log_sigmoid(self, z):
        return self.F.logsigmoid(z)

    def log(self, x):
        return self.torch.log(x)

    def abs(self, x):
        return self.torch.abs(x)

    def sum(self, x, axis=None):
        return x.sum() if axis is None else x.sum(dim=axis)

    def mean(self, x, axis):
        return x.mean(dim=axis)

    def value_and_grad(self, f, theta):
        t = self.torch.tensor(theta, dtype=self.torch.float64, requires_grad=True)
        value = f(t)
        (grad,) = self.torch.autograd.grad(value, t)
        return float(value.detach()), grad.numpy().copy()


class JaxOps:
    name = "jax"

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def asarray(self, a):
        return self.jnp.asarray(np.asarray(a, dtype=np.float64))

    def act(self, name, z, slope):
        jax, jnp = self.jax, self.jnp
        if name == "sigmoid":
            return jax.nn.sigmoid(z)
        if name == "tanh":
            return jnp.tanh(z)
        if name == "relu":  # where(z > 0): derivative 0 at 0, like PyTorch
            return jnp.where(z > 0, z, 0.0)
        if name == "leaky_relu":  # derivative slope at 0, like PyTorch (jax.nn.leaky_relu gives 1)
            return jnp.where(z > 0, z, slope * z)
        if name == "softplus":
            return jnp.logaddexp(z, 0.0)
        if name == "linear":
            return z
        if name == "softmax":
            return jax.nn.softmax(z, axis=1)
        raise ValueError(name)

    def log_softmax(self, z):
        return self.jax.nn.log_softmax(z, axis=1)

    def log_sigmoid(self, z):
        return self.jax.nn.log_sigmoid(z)

    def log(self, x):
        return self.jnp.log(x)

    def abs(self, x):
        return self.jnp.abs(x)

    def sum(self, x, axis=None):
        return self.jnp.sum(x, axis=axis)

    def mean(self, x, axis):
        return self.jnp.mean(x, axis=axis)

    def value_and_grad(self, f, theta):
        value, grad = self.jax.value_and_grad(f)(self.jnp.asarray(theta))
        return float(value), np.asarray(grad, dtype=np.float64).copy()


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value)


def reference_loss(xp: Any, spec: dict[str, Any], theta: Any, X: Any, T: Any,
                   custom: dict[str, Callable] | None = None) -> Any:
    """The spec's loss at theta over the batch, written from DESIGN.md section 4 in ``xp``."""
    custom = custom or {}
    n_in = _count(spec["inputs"])
    k = 0
    a = X
    z = X
    penalty = 0.0
    for index, layer in enumerate(spec["layers"]):
        n = _count(layer["units"])
        W = theta[k:k + n * n_in].reshape(n, n_in)
        k += n * n_in
        z = a @ W.T
        bias = layer.get("bias", "per_unit")
        mode = bias if isinstance(bias, str) else bias["mode"]
        if mode == "per_unit":
            z = z + theta[k:k + n]
            k += n
        elif mode == "shared":
            z = z + theta[k:k + 1]
            k += 1
        if layer.get("l2"):
            penalty = penalty + layer["l2"] * xp.sum(W * W)
        if layer.get("l1"):
            penalty = penalty + layer["l1"] * xp.sum(xp.abs(W))
        activation = layer["activation"]
        if isinstance(activation, dict) and "expr" in activation:
            a = custom["activation"][index](xp, z)
        else:
            name = activation if isinstance(activation, str) else activation["name"]
            slope = activation.get("slope", 0.01) if isinstance(activation, dict) else 0.01
            a = xp.act(name, z, slope)
        n_in = n
    if k != theta.shape[0]:
        raise AssertionError(f"reference layout has {k} parameters, theta has {theta.shape[0]}")
    loss = spec["loss"]
    name = loss if isinstance(loss, str) else loss.get("name", "custom")
    reduction = "mean" if isinstance(loss, str) else loss.get("reduction", "mean")
    out_act = spec["layers"][-1]["activation"]
    out_act = out_act if isinstance(out_act, str) else out_act.get("name", "custom")
    o = a
    if name == "half_sse":
        per = 0.5 * xp.sum((T - o) ** 2, axis=1)
    elif name == "sse":
        per = xp.sum((T - o) ** 2, axis=1)
    elif name == "mse":
        per = xp.mean((T - o) ** 2, axis=1)
    elif name == "cross_entropy":
        eps = loss.get("label_smoothing", 0.0) if isinstance(loss, dict) else 0.0
        target = T * (1 - eps) + eps / T.shape[1] if eps else T
        per = -xp.sum(target * xp.log_softmax(z), axis=1)
    elif name == "binary_cross_entropy":
        if out_act == "sigmoid":  # from the logits, as DESIGN.md says symgrad computes it
            per = -xp.sum(T * xp.log_sigmoid(z) + (1 - T) * xp.log_sigmoid(-z), axis=1)
        else:
            per = -xp.sum(T * xp.log(o) + (1 - T) * xp.log(1 - o), axis=1)
    elif name == "custom":
        per = xp.sum(custom["loss"](xp, o, T), axis=1)
    else:
        raise ValueError(name)
    total = xp.sum(per) / X.shape[0] if reduction == "mean" else xp.sum(per)
    return total + penalty


def reference_gradient(xp: Any, spec: dict[str, Any], theta: np.ndarray, X: np.ndarray, T: np.ndarray,
                       custom: dict[str, Callable] | None = None) -> tuple[float, np.ndarray]:
    Xr, Tr = xp.asarray(X), xp.asarray(T)
    return xp.value_and_grad(lambda th: reference_loss(xp, spec, th, Xr, Tr, custom), np.asarray(theta, np.float64))


# -- the cases -------------------------------------------------------------------------------------

@dataclass
class Case:
    label: str
    spec: dict[str, Any]
    what: str
    rows: int = 4
    seed: int = 0
    extended: bool = False
    custom: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[np.ndarray, np.ndarray, Any], None] | None = None  # edits theta, X in place


def _spec(name: str, sizes: list[int], acts: list[Any], loss: Any, biases: list[Any], **extra: Any) -> dict[str, Any]:
    spec = {"name": name, "inputs": sizes[0],
            "layers": [{"units": n, "activation": a, "bias": b} for n, a, b in zip(sizes[1:], acts, biases)],
            "loss": loss, "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    spec.update(extra)
    return spec


def _describe(spec: dict[str, Any]) -> str:
    sizes = [str(_count(spec["inputs"]))] + [str(_count(layer["units"])) for layer in spec["layers"]]
    acts = []
    for layer in spec["layers"]:
        a = layer["activation"]
        text = a if isinstance(a, str) else (a.get("expr") or f"{a['name']}({a.get('slope', 0.01)})")
        b = layer.get("bias", "per_unit")
        acts.append(f"{text}/{b if isinstance(b, str) else b['mode']}")
    loss = spec["loss"]
    loss_text = loss if isinstance(loss, str) else (
        (loss.get("name") or loss.get("expr")) + f"/{loss.get('reduction', 'mean')}"
        + (f" ls={loss['label_smoothing']}" if "label_smoothing" in loss else ""))
    extra = "".join(f" l{p}={layer[f'l{p}']}" for layer in spec["layers"] for p in (1, 2) if layer.get(f"l{p}"))
    return f"{'-'.join(sizes)} {' '.join(acts)} {loss_text}{extra}"


def _zero_first_row_and_first_biases(theta: np.ndarray, X: np.ndarray, module: Any) -> None:
    """Put examples exactly on the first layer's kink: X row 0 = 0, the first layer's biases 0."""
    X[0, :] = 0.0
    X[1, :] = 0.0
    for k, name in enumerate(module.PARAMETER_NAMES):
        if name.startswith("kb"):
            theta[k] = 0.0


def make_cases(count: int, seed: int) -> list[Case]:
    cases: list[Case] = []
    mazur = json.loads((EXAMPLES / "mazur.json").read_text())
    cases.append(Case("mazur", mazur, "the tutorial spec (2-2-2, shared frozen biases, half_sse)", rows=3))
    for k, act in enumerate(["relu", {"name": "leaky_relu", "slope": 0.1}]):
        spec = _spec(f"ad_kink{k}", [3, 4, 2], [act, "linear"], "mse", [
            {"mode": "per_unit", "names": [f"kb{j}" for j in range(4)]}, "per_unit"])
        cases.append(Case(f"kink-{k}", spec, "", rows=4, seed=k, prepare=_zero_first_row_and_first_biases))
    rng = np.random.default_rng(seed)
    for k in range(count):
        loss, out_act = LOSS_OUTPUTS[k % len(LOSS_OUTPUTS)]
        depth = 1 + int(rng.integers(0, 3))  # 0 to 2 hidden layers
        sizes = [int(rng.integers(1, 5))] + [int(rng.integers(1, 5)) for _ in range(depth - 1)]
        sizes.append(int(rng.integers(2, 4)))
        acts = [HIDDEN[(k + 3 * i) % len(HIDDEN)] for i in range(depth - 1)] + [out_act]
        biases = [BIASES[(k + i) % len(BIASES)] for i in range(depth)]
        reduction = "sum" if k % 4 == 3 else "mean"
        loss_value: Any = loss if reduction == "mean" and k % 2 == 0 else {"name": loss, "reduction": reduction}
        cases.append(Case(f"random-{k}", _spec(f"ad_random{k}", sizes, acts, loss_value, biases),
                          "", rows=int(rng.integers(2, 7)), seed=seed * 1000 + k))
    # One wider network, so loops (vector form, C layer templates) run over more than a few units.
    cases.append(Case("medium", _spec("ad_medium", [12, 10, 8, 6], ["tanh", "softplus", "softmax"],
                                      {"name": "cross_entropy", "reduction": "sum"}, ["per_unit", "shared", "per_unit"]),
                      "", rows=9, seed=99))
    # Extended features: unsupported by symgrad is reported, not failed.
    cases.append(Case("ext-l2-l1", _spec("ad_ext_reg", [3, 4, 2], ["tanh", "sigmoid"], "half_sse", ["per_unit", "shared"]),
                      "", rows=4, seed=101, extended=True))
    cases[-1].spec["layers"][0]["l2"] = 0.01
    cases[-1].spec["layers"][1]["l1"] = 0.02
    cases.append(Case("ext-label-smoothing", _spec("ad_ext_ls", [3, 3, 4], ["relu", "softmax"],
                                                   {"name": "cross_entropy", "label_smoothing": 0.1}, ["per_unit", "per_unit"]),
                      "", rows=5, seed=102, extended=True))
    cases.append(Case("ext-formulas", _spec("ad_ext_expr", [2, 3, 2], [{"expr": "x/(1+abs(x))"}, "linear"],
                                            {"expr": "(o-t)**4/4", "reduction": "sum"}, ["per_unit", "shared"]),
                      "", rows=4, seed=103, extended=True,
                      custom={"activation": {0: lambda xp, z: z / (1 + xp.abs(z))},
                              "loss": lambda xp, o, t: (o - t) ** 4 / 4}))
    for case in cases:
        case.what = case.what or _describe(case.spec)
    return cases


def random_problem(case: Case, module: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(case.seed)
    theta = rng.normal(0.0, 0.7, module.N_PARAMETERS)
    X = rng.normal(0.0, 1.0, (case.rows, module.N_INPUTS))
    loss = case.spec["loss"]
    name = loss if isinstance(loss, str) else loss.get("name", "custom")
    if name == "cross_entropy":
        T = rng.dirichlet(np.ones(module.N_OUTPUTS), case.rows)
    elif name == "binary_cross_entropy":
        T = rng.uniform(0.0, 1.0, (case.rows, module.N_OUTPUTS))
    else:
        T = rng.normal(0.0, 1.0, (case.rows, module.N_OUTPUTS))
    if case.prepare is not None:
        case.prepare(theta, X, module)
    return theta, X, T


class SpecShape:
    """What random_problem needs of a module, read from the spec alone (no symgrad)."""

    def __init__(self, spec: dict[str, Any]):
        sizes = [_count(spec["inputs"])] + [_count(layer["units"]) for layer in spec["layers"]]
        n_params = 0
        names: list[str] = []
        for layer, (n_in, n_out) in zip(spec["layers"], zip(sizes, sizes[1:])):
            bias = layer.get("bias", "per_unit")
            mode = bias if isinstance(bias, str) else bias["mode"]
            n_params += n_in * n_out
            names += [""] * (n_in * n_out)
            count = {"per_unit": n_out, "shared": 1, "none": 0}[mode]
            given = bias.get("names") or ([bias["name"]] if "name" in bias else []) if isinstance(bias, dict) else []
            names += list(given) if len(given) == count else [""] * count
            n_params += count
        self.N_PARAMETERS, self.N_INPUTS, self.N_OUTPUTS = n_params, sizes[0], sizes[-1]
        self.PARAMETER_NAMES = tuple(names)


def relative_error(value: np.ndarray | float, reference: np.ndarray | float) -> float:
    value, reference = np.atleast_1d(value).astype(np.float64), np.atleast_1d(reference).astype(np.float64)
    scale = float(np.max(np.abs(reference)))
    diff = float(np.max(np.abs(value - reference)))
    if scale == 0.0:
        return diff
    return diff / scale


# -- the check -------------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: str
    variant: str
    status: str          # "ok", "FAIL", "ERROR", "n/a", "unsupported"
    loss_err: dict[str, float] = field(default_factory=dict)
    grad_err: dict[str, float] = field(default_factory=dict)
    note: str = ""


def references_available() -> tuple[list[Any], list[str]]:
    refs, notes = [], []
    for name, cls in (("torch", TorchOps), ("jax", JaxOps)):
        module, reason = optional_import(name)
        if module is None:
            notes.append(reason)
            continue
        try:
            refs.append(cls())
        except Exception as error:  # noqa: BLE001 - a broken optional install is reported
            notes.append(f"{name} unusable: {type(error).__name__}: {first_line(error)}")
    return refs, notes


def check_case(case: Case, backend: str, form: str, refs: list[Any]) -> Outcome:
    import symgrad

    variant = f"{backend}/{form}"
    try:
        module = symgrad.load(case.spec, backend=backend, form=form)
    except symgrad.SpecError as error:
        text = first_line(error)
        if backend != "numpy" and "backend" in text:
            return Outcome(case.label, variant, "n/a", note=f"not available: {text}")
        if case.extended:
            return Outcome(case.label, variant, "unsupported", note=f"symgrad rejects the spec: {text}")
        return Outcome(case.label, variant, "ERROR", note=f"SpecError on a valid spec: {text}")
    except symgrad.SymgradError as error:
        if backend != "numpy":
            return Outcome(case.label, variant, "n/a", note=f"not available: {type(error).__name__}: {first_line(error)}")
        return Outcome(case.label, variant, "ERROR", note=f"{type(error).__name__}: {first_line(error)}")
    except Exception as error:  # noqa: BLE001 - a crash in symgrad is a finding
        return Outcome(case.label, variant, "ERROR", note=f"build crashed: {type(error).__name__}: {first_line(error)}")
    theta, X, T = random_problem(case, module)
    try:
        loss, grad = module.gradient(theta, X, T)
    except Exception as error:  # noqa: BLE001
        return Outcome(case.label, variant, "ERROR", note=f"m.gradient raised {type(error).__name__}: {first_line(error)}")
    outcome = Outcome(case.label, variant, "ok")
    for xp in refs:
        ref_loss, ref_grad = reference_gradient(xp, case.spec, theta, X, T, case.custom)
        outcome.loss_err[xp.name] = relative_error(loss, ref_loss)
        outcome.grad_err[xp.name] = relative_error(grad, ref_grad)
    worst = max(list(outcome.loss_err.values()) + list(outcome.grad_err.values()))
    if not np.isfinite(worst) or worst > TOLERANCE:
        outcome.status = "FAIL"
    return outcome


def check_references(cases: list[Case], refs: list[Any]) -> float | None:
    """Largest disagreement between the two references themselves (both must be installed)."""
    if len(refs) < 2:
        return None
    worst = 0.0
    for case in cases:
        theta, X, T = random_problem(case, SpecShape(case.spec))
        (l0, g0), (l1, g1) = (reference_gradient(xp, case.spec, theta, X, T, case.custom) for xp in refs[:2])
        worst = max(worst, relative_error(l0, l1), relative_error(g0, g1))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a handful of cases")
    parser.add_argument("--cases", type=int, default=None, help="random cases (default 26, quick 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", action="append", choices=("numpy", "c"), help="default: both")
    parser.add_argument("--form", action="append", choices=("scalar", "vector"), help="default: both")
    args = parser.parse_args(argv)
    refs, notes = references_available()
    for note in notes:
        print(f"note: {note}")
    if not refs:
        print("check_autodiff: skipped: neither torch nor jax is installed, so there is no reference to compare with")
        return 0
    count = args.cases if args.cases is not None else (4 if args.quick else 26)
    cases = make_cases(count, args.seed)
    if args.quick:
        cases = [c for c in cases if not c.extended][:3 + count]
    backends = args.backend or ["numpy", "c"]
    forms = args.form or ["scalar", "vector"]
    print(f"check_autodiff: {len(cases)} cases x backends {backends} x forms {forms}; references: "
          f"{', '.join(xp.name for xp in refs)} (float64); tolerance {TOLERANCE:g} relative")

    outcomes: list[Outcome] = []
    with temporary_cache(None):
        for case in cases:
            for backend in backends:
                for form in forms:
                    outcomes.append(check_case(case, backend, form, refs))

    by_case = {case.label: case for case in cases}
    names = [xp.name for xp in refs]
    rows = []
    for o in outcomes:
        errs = [f"{o.loss_err[n]:.1e} / {o.grad_err[n]:.1e}" if n in o.grad_err else "" for n in names]
        rows.append([o.case, by_case[o.case].what, o.variant, *errs, o.status + (f": {o.note}" if o.note else "")])
    print_table(["case", "network", "backend/form", *[f"{n}: loss / grad rel err" for n in names], "result"], rows)

    agreement = check_references(cases, refs)
    if agreement is not None:
        print(f"torch vs jax on the same problems: max relative difference {agreement:.1e}")
    bad = [o for o in outcomes if o.status in ("FAIL", "ERROR")]
    checked = [o for o in outcomes if o.status in ("ok", "FAIL")]
    worst = max((max(o.grad_err.values()) for o in checked), default=float("nan"))
    na = sum(o.status == "n/a" for o in outcomes)
    print(f"{len(checked)} comparisons, worst gradient error {worst:.1e}; {len(bad)} failing"
          + (f"; {na} variants n/a (backend not available for that spec)" if na else "")
          + f"; {sum(o.status == 'unsupported' for o in outcomes)} extended variants unsupported by symgrad")
    print(f"result: {verdict(not bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
