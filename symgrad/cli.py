"""``python -m symgrad``: a thin command line over the pipeline.

Every user error (bad spec, bad data or values file, bad option) ends with a one-line message on
standard error and exit status 2, never a traceback.  Text goes to standard output unless
``--out FILE`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import __version__
from .errors import SymgradError

EXIT_USER_ERROR = 2
_MAX_VALUES_BYTES = 64 * 1024 * 1024  # a values file for --at holds one point


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = f"{self.prog.split()[-1]} " if " " in self.prog else ""
        self.exit(EXIT_USER_ERROR, f"symgrad: error: {message} (see `python -m symgrad {command}--help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symgrad", description="A symbolic-to-code gradient compiler: JSON network spec -> "
                     "SymPy derivatives -> generated training code.")
    parser.add_argument("--version", action="version", version=f"symgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    build = commands.add_parser("build", help="generate the package for a spec under DIR/<name>/")
    build.add_argument("spec", help="the spec's JSON file")
    build.add_argument("--out", default="generated", help="output directory (default: generated)")
    build.add_argument("--backend", default="all", choices=("numpy", "c", "all"),
                       help="numpy, c (the C extension; needs a C compiler) or all (default: all; without a "
                       "working compiler, numpy only, with a warning)")
    build.add_argument("--form", default="auto", choices=("auto", "scalar", "vector"),
                       help="straight-line code per unit (scalar) or per-layer matrix code (vector); "
                       "auto picks by size")
    build.add_argument("--max-parameters", type=int, default=None, metavar="N",
                       help="refuse networks with more parameters (default 5,000,000 or $SYMGRAD_MAX_PARAMETERS)")

    formulas = commands.add_parser("formulas", help="print dE/dp for every parameter as its chain rule")
    formulas.add_argument("spec")
    formulas.add_argument("--param", action="append", metavar="NAME", help="only this parameter (repeatable)")
    formulas.add_argument("--expanded", action="store_true", help="also the closed form in the raw parameters")
    formulas.add_argument("--latex", action="store_true", help="write LaTeX instead of plain text")
    formulas.add_argument("--at", metavar="initial|VALUES.json",
                          help="also the value of every factor at the spec's initial values and example, or at "
                          "a JSON file with 'parameters', 'inputs' and 'targets'")
    formulas.add_argument("--digits", type=int, default=6, help="significant digits of numbers (default 6)")
    formulas.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")

    explain = commands.add_parser("explain", help="write a step-by-step worked example (forward pass, chain rule "
                                  "with numbers, the optimizer's first step, the error after K steps) for the "
                                  "spec's example")
    explain.add_argument("spec")
    explain.add_argument("--format", default="txt", choices=("txt", "md", "html"),
                         help="plain text, Markdown with LaTeX, or HTML with MathML and an SVG diagram (default txt)")
    explain.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    explain.add_argument("--at", metavar="initial|VALUES.json",
                         help="a JSON file with 'parameters', 'inputs' and 'targets' to use instead of the spec's "
                         "initial values and example")
    explain.add_argument("--steps", type=int, default=10_000, help="also show the error after K steps (default 10000)")
    explain.add_argument("--digits", type=int, default=6, help="significant digits of numbers (default 6)")
    explain.add_argument("--param", action="append", metavar="NAME",
                         help="only this parameter's chain and update (repeatable); big networks show layer rules "
                         "and the chains of these")

    train = commands.add_parser("train", help="build and train on a data file (or on the spec's example)",
                                description="Train a spec on FILE: .npz with arrays X and T (or X and integer "
                                "labels y), or .csv with the inputs then the targets (or a class label) per line. "
                                "Without --data, train on the spec's example.")
    train.add_argument("spec")
    train.add_argument("--data", metavar="FILE", help=".npz (X and T, or X and y) or .csv")
    train.add_argument("--epochs", type=int, default=100, help="default 100")
    train.add_argument("--batch-size", type=int, default=None, help="default: the whole training set")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: the spec's)")
    train.add_argument("--backend", default="auto", choices=("auto", "numpy", "c"),
                       help="the backend to train with: auto (default: the faster one for this network that "
                       "builds here), numpy or c")
    train.add_argument("--seed", type=int, default=None, help="shuffles each epoch, reproducibly; also fixes "
                       "the validation split")
    train.add_argument("--validation-split", type=float, default=0.0, metavar="F",
                       help="hold out this fraction of the examples (default 0)")
    train.add_argument("--patience", type=int, default=None, metavar="K",
                       help="stop when the validation loss has not improved for K epochs and keep the best "
                       "epoch's parameters (needs --validation-split)")
    train.add_argument("--init", metavar="THETA.npz", help="start from parameters saved with --save")
    train.add_argument("--save", metavar="THETA.npz", help="save the trained parameters, the optimizer state and "
                       "the epoch count (so --init with the same --seed resumes exactly)")
    train.add_argument("--plot", metavar="CURVE.png", help="plot the loss (and accuracy) per epoch as .png, .svg, "
                       ".pdf, ...; needs matplotlib (pip install 'symgrad[plot]')")
    train.add_argument("--quiet", action="store_true", help="no progress bar (drawn on standard error when it is "
                       "a terminal)")
    train.add_argument("--max-parameters", type=int, default=None, metavar="N",
                       help="refuse networks with more parameters (default 5,000,000 or $SYMGRAD_MAX_PARAMETERS)")
    train.add_argument("--out", default=None, metavar="DIR", help="also write the generated package to DIR/<name>/ "
                       "(default: only the cache)")
    train.add_argument("--digits", type=int, default=6, help="significant digits of the errors shown (default 6)")
    _cluster_options(train, "full-batch steps, the gradient summed over chunks of rows on the workers")
    train.add_argument("--chunk-rows", type=int, default=65536, metavar="R",
                       help="rows per chunk with --workers/--scheduler (default 65536)")

    sweep = commands.add_parser("sweep", help="train one model per grid point and seed on a Dask cluster; write "
                                "RESULTS.json", description="Train one model per combination of the grid's values "
                                "and per seed (shuffled minibatches, initial.seed = the seed) on a Dask cluster; "
                                "write one row per model to RESULTS.json.")
    sweep.add_argument("spec")
    sweep.add_argument("--grid", required=True, metavar="GRID.json", help='dotted paths into the spec to lists of '
                       'values, e.g. {"optimizer.learning_rate": [0.1, 0.5], "layers.0.units": [16, 32]}')
    sweep.add_argument("--data", required=True, metavar="FILE", help=".npz (X and T, or X and y) or .csv")
    sweep.add_argument("--out", required=True, metavar="RESULTS.json", help="the table of results to write")
    sweep.add_argument("--epochs", type=int, default=100, help="default 100")
    sweep.add_argument("--batch-size", type=int, default=None, help="default: the whole training set")
    sweep.add_argument("--seeds", default="0", metavar="S,S,...", help="seeds, comma-separated (default 0)")
    sweep.add_argument("--validation-split", type=float, default=0.0, metavar="F",
                       help="hold out this fraction of the examples, the same rows for every model (default 0)")
    sweep.add_argument("--save-dir", metavar="DIR", help="save each model's parameters as DIR/<name>-<index>.npz "
                       "(as train --save writes them; created when missing)")
    sweep.add_argument("--backend", default="auto", choices=("auto", "numpy", "c"),
                       help="auto (default: the faster one that builds on each worker), numpy or c")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    _cluster_options(sweep, "the models")

    check = commands.add_parser("check", help="judge a hand-derived dE/dP: a formula (any equivalent form), or "
                                "--value at the spec's numbers; exit 0 correct, 1 incorrect",
                                description="Judge a hand-derived derivative. FORMULA uses the names that formulas "
                                "and explain print: parameter and input names, net_U, out_U, delta_U and t_U for a "
                                "unit U, numbers, + - * / ** ^ and exp log sqrt abs tanh sigmoid softplus erf max min. "
                                "Put -- before a formula that starts with a minus sign.")
    check.add_argument("spec")
    check.add_argument("--param", required=True, metavar="P", help="the parameter whose dE/dP you derived")
    check.add_argument("formula", nargs="?", metavar="FORMULA", help="your dE/dP for one example")
    check.add_argument("--value", metavar="NUMBER", help="instead of a formula: your dE/dP at the spec's initial "
                       "values and example, judged within the rounding of the digits you give")
    check.add_argument("--digits", type=int, default=6, help="significant digits of numbers shown (default 6)")

    exercise = commands.add_parser("exercise", help="write backpropagation exercises: a question sheet, an answer "
                                   "key, answers.json and a worked solution per exercise")
    exercise.add_argument("--seed", type=int, required=True, help="the same seed gives the same exercises")
    exercise.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created when missing)")
    exercise.add_argument("--count", type=int, default=3, help="how many exercises (default 3, at most 50)")
    exercise.add_argument("--format", default="md", choices=("md", "html"), help="Markdown or HTML (default md)")
    exercise.add_argument("--digits", type=int, default=6, help="significant digits of the answers (default 6)")

    from .export import TARGETS

    export = commands.add_parser("export", help="write a self-contained package for another platform "
                                 "(--target c: a C99 package for a microcontroller, with a self-test; "
                                 "--target onnx: an ONNX inference graph)")
    export.add_argument("spec", help="the spec's JSON file")
    export.add_argument("--target", required=True, choices=tuple(TARGETS),
                        help="; ".join(f"{name}: {target.description}" for name, target in TARGETS.items()))
    export.add_argument("--out", required=True, metavar="DIR|FILE",
                        help="--target c: the folder to write (created when missing; refused when it holds other "
                        "files); --target onnx: the .onnx file")
    export.add_argument("--init", metavar="THETA.npz",
                        help="start from these parameters (what train --save writes) instead of the spec's")

    schema = commands.add_parser("schema", help="print the spec's JSON Schema")
    schema.add_argument("--out", metavar="FILE")
    return parser


def _cluster_options(parser: argparse.ArgumentParser, what: str) -> None:
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N", help=f"run {what} on a local Dask cluster of N "
                         "processes (needs pip install 'symgrad[dask]')")
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="the same on the Dask cluster at ADDRESS "
                         "(tcp://host:8786)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse takes positionals in runs: check's FORMULA may come after --param P (or after --)
        extra = extra[1:] if extra[0] == "--" else extra
        if args.command == "check" and args.formula is None and len(extra) == 1:
            args.formula = extra[0]
        else:
            parser.parse_args(argv)  # reports the unrecognized arguments as a usage error
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return {"build": _build, "formulas": _formulas, "explain": _explain, "train": _train,
                "check": _check, "exercise": _exercise, "schema": _schema, "sweep": _sweep,
                "export": _export}[args.command](args)
    except SymgradError as error:
        print(f"symgrad: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("symgrad: interrupted", file=sys.stderr)
        return 130


def _emit(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from .files import write_atomic

    try:
        write_atomic(Path(out), text.encode())
    except OSError as error:
        from .errors import BuildError

        raise BuildError(f"cannot write {out}: {error.strerror or error}") from None


def _build(args: argparse.Namespace) -> int:
    from .errors import warnings_on_one_line
    from .pipeline import build

    with warnings_on_one_line():
        result = build(args.spec, out=args.out, backend=args.backend, form=args.form,
                       max_parameters=args.max_parameters)
    print(result)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .schema import SCHEMA

    _check_out(args.out)
    _emit(json.dumps(SCHEMA, indent=2) + "\n", args.out)
    return 0


def _schedule_note(optimizer: Any, epochs: int) -> str:
    """``, the rate times 0.1 every 30 epochs (StepLR): 0.005 in the last epoch`` when there is a schedule."""
    if optimizer.schedule is None:
        return ""
    return f", {optimizer.schedule.describe()}: {optimizer.rate(epochs - 1):g} in the last epoch"


def _formulas(args: argparse.Namespace) -> int:
    from .formulas import formulas_report
    from .pipeline import analyze

    _check_out(args.out)
    _check_digits(args.digits)
    values = None
    if args.at is not None and args.at != "initial":
        values = _read_json(args.at)
    text = formulas_report(analyze(args.spec).gradients, params=args.param, expanded=args.expanded, latex=args.latex,
                           at=args.at is not None, values=values, digits=args.digits)
    _emit(text, args.out)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    _check_out(args.out)
    _check_digits(args.digits)
    values = _read_json(args.at) if args.at is not None and args.at != "initial" else None
    _emit(explain(args.spec, format=args.format, values=values, steps=args.steps, digits=args.digits,
                  params=args.param), args.out)
    return 0


def _check(args: argparse.Namespace) -> int:
    from .check import check_formula, check_value
    from .errors import SpecError
    from .pipeline import analyze

    if (args.formula is None) == (args.value is None):
        raise SpecError("check", "give either a FORMULA or --value NUMBER (one of them)",
                        "e.g. check SPEC --param w5 'delta_o1*out_h1', or check SPEC --param w5 --value 0.0822")
    _check_digits(args.digits)
    gradients = analyze(args.spec).gradients
    if args.formula is not None:
        verdict = check_formula(gradients, args.param, args.formula, digits=args.digits)
    else:
        verdict = check_value(gradients, args.param, args.value, digits=args.digits)
    sys.stdout.write(str(verdict))
    return 0 if verdict.correct else 1


def _exercise(args: argparse.Namespace) -> int:
    from .exercise import write_exercises

    written = write_exercises(args.seed, args.out, count=args.count, format=args.format, digits=args.digits)
    print(f"wrote {len(written)} files to {args.out}: " + ", ".join(path.name for path in written))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .errors import warnings_on_one_line
    from .export import export

    with warnings_on_one_line():
        exported = export(args.spec, args.target, args.out, init=args.init)
    print(f"wrote {len(exported.files)} files to {args.out}: " + ", ".join(sorted(exported.files)))
    print("\n".join(exported.report))
    return 0


def _read_json(path: str, option: str = "--at") -> Any:
    from .errors import SpecError
    from .files import read_limited

    try:
        return json.loads(read_limited(path, _MAX_VALUES_BYTES).decode("utf-8-sig"))
    except OSError as error:
        raise SpecError(option, f"cannot read {path}: {error.strerror or error}", "check the path") from None
    except (ValueError, RecursionError) as error:
        raise SpecError(option, f"{path} is not valid JSON ({error})", "fix the file") from None


def _check_train_options(args: argparse.Namespace) -> None:
    """Every option of ``train`` and every file it will write, checked before any work is done."""
    from . import training
    from .errors import SpecError
    from .outputs import check_output

    for name, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise SpecError(name, f"{value} is too small", "use 1 or more")
    if args.seed is not None and args.seed < 0:
        raise SpecError("--seed", f"{args.seed} is negative", "use a whole number 0 or more")
    if args.patience is not None:
        if args.patience < 1:
            raise SpecError("--patience", f"{args.patience} is too small", "use 1 or more epochs")
        if not args.validation_split:
            raise SpecError("--patience", "needs a validation set to watch", "add --validation-split F (e.g. 0.2)")
    _check_digits(args.digits)
    if args.save:
        check_output(args.save, "--save")
    if args.plot:
        training.check_plot(args.plot)


def _check_out(out: str | None) -> None:
    """--out FILE of a text command, checked before the work."""
    from .outputs import check_output

    if out is not None:
        check_output(out, "--out")


def _check_digits(digits: int) -> None:
    from .formulas.printing import check_digits

    check_digits(digits)


def _numpy_warnings_off(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A run that overflows is reported once, as a user error naming the epoch (training.fit checks
    the loss), not as a NumPy warning per operation."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        import numpy as np

        with np.errstate(all="ignore"):
            return command(args)
    return run


@_numpy_warnings_off
def _train(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: I001 -- the order the build branch's edit of these lines keeps

    from .errors import DataError, SpecError, warnings_on_one_line
    from .pipeline import build_and_load
    from .spec import parse_spec, read_document
    from . import training

    document = read_document(args.spec)
    if args.lr is not None:
        if not (args.lr > 0 and np.isfinite(args.lr)):
            raise SpecError("--lr", f"{args.lr} is not a positive learning rate", "use a number such as 0.1")
        document.setdefault("optimizer", {"name": "sgd"})
        if isinstance(document["optimizer"], dict):
            document["optimizer"]["learning_rate"] = args.lr
    spec = parse_spec(document, args.max_parameters)
    _check_train_options(args)
    if args.data is None:
        if spec.example is None:
            raise DataError(f'{args.spec}: no --data given and the spec has no "example"; '
                            "pass --data FILE (.npz or .csv) or add an example to the spec")
        data = training.Dataset(np.array(spec.example.inputs, dtype=spec.dtype),
                                np.array(spec.example.targets, dtype=spec.dtype), None)
    else:
        data = training.load_data(args.data, spec)
    train_set, validation = training.split(data, args.validation_split, args.seed)
    on_cluster = _check_cluster(args, train_set.n)

    with warnings_on_one_line():
        result, module = build_and_load(spec, args.backend, out=args.out)
    theta, state = module.initial_parameters(), module.initial_state()
    first_epoch = 0  # epochs the parameters have had (from --init), so shuffling continues exactly
    if args.init:
        checkpoint = training.load_checkpoint(args.init, module)
        theta, first_epoch = checkpoint.theta, checkpoint.epochs
        if checkpoint.state is not None:
            state = checkpoint.state
        elif module.STATE_SIZE:
            print(f"note: {args.init} holds no optimizer state for {spec.optimizer.name}; starting a fresh one",
                  file=sys.stderr)
    classification = training.is_classification(spec, data)
    before = module.loss(theta, train_set.X, train_set.T)
    progress = training.Progress(args.epochs, quiet=args.quiet)
    batch_size = None if args.batch_size is None else min(args.batch_size, train_set.n)
    cluster_note = None
    if on_cluster:
        history, cluster_note = _fit_on_cluster(args, document, module, theta, state, train_set, validation, progress,
                                                classification)
    else:
        history = training.fit(module, theta, state, train_set, validation, args.epochs, batch_size,
                               shuffle=args.seed is not None, seed=args.seed, progress=progress,
                               classification=classification, first_epoch=first_epoch, patience=args.patience)
    trained = len(history.loss) if args.patience is None else (history.best_epoch or 0)
    after = module.loss(theta, train_set.X, train_set.T)
    d = args.digits
    print(result)
    ran = len(history.loss)
    print(f"trained {spec.name} ({module.BACKEND} backend, {spec.optimizer.name}, learning rate "
          f"{spec.optimizer.learning_rate:g}{_schedule_note(spec.optimizer, first_epoch + ran)}) for {ran} epoch(s) "
          f"on {train_set.n} example(s) "
          f"in {history.seconds:.2f} s ({ran * train_set.n / max(history.seconds, 1e-9):,.0f} examples/s)")
    if cluster_note:
        print(cluster_note)
    if history.stopped_at is not None and history.best_epoch is None:
        print(f"stopped early after epoch {history.stopped_at}: the validation loss never became a number; "
              "kept the initial parameters")
    elif history.stopped_at is not None:
        print(f"stopped early after epoch {history.stopped_at}: the validation loss had not improved for "
              f"{args.patience} epoch(s); kept epoch {history.best_epoch}'s parameters "
              f"(validation loss {history.validation_loss[history.best_epoch - 1]:.{args.digits}g})")
    elif history.best_epoch is not None and history.best_epoch < ran:
        print(f"kept epoch {history.best_epoch}'s parameters, the best validation loss "
              f"({history.validation_loss[history.best_epoch - 1]:.{args.digits}g})")
    print(f"error before: {before:.{d}g}")
    print(f"error after:  {after:.{d}g}")
    if classification:
        print(f"training accuracy:   {training.accuracy(module, theta, train_set):.4f}")
    if validation is not None:
        print(f"validation error:    {module.loss(theta, validation.X, validation.T):.{d}g} "
              f"({validation.n} held-out examples)")
        if classification:
            print(f"validation accuracy: {training.accuracy(module, theta, validation):.4f}")
    if args.save:
        training.save_parameters(args.save, module, theta, state, epochs=first_epoch + trained)
        print(f"saved parameters: {args.save}")
    if args.plot:
        training.plot_history(args.plot, history, spec.name)
        print(f"plot: {args.plot}")
    print(f"generated code: {result.package_dir}")
    return 0


# -- on a Dask cluster: train --workers/--scheduler, and sweep ------------------------------------

def _check_cluster(args: argparse.Namespace, rows: int) -> bool:
    """Whether train runs on a cluster; its options checked (and Dask's presence) before any work."""
    from .distributed import check_workers, dask_distributed
    from .errors import SpecError

    if args.workers is None and args.scheduler is None:
        return False
    option = "--workers" if args.workers is not None else "--scheduler"
    dask_distributed(option)
    if args.workers is not None:
        check_workers(args.workers)
    if getattr(args, "chunk_rows", 1) < 1:
        raise SpecError("--chunk-rows", f"{args.chunk_rows} is too small", "use 1 or more")
    if getattr(args, "batch_size", None) is not None and args.batch_size < rows and args.command == "train":
        raise SpecError("--batch-size", f"{option} trains with full-batch steps (one gradient summed over every "
                        f"chunk per epoch), not batches of {args.batch_size}",
                        f"leave out --batch-size, or train minibatches without {option}")
    return True


@contextlib.contextmanager
def _cluster_client(args: argparse.Namespace) -> Iterator[Any]:
    """A client of a local cluster of --workers processes, or of the scheduler at --scheduler."""
    from .distributed import dask_distributed, local_cluster

    if args.workers is not None:
        with local_cluster(args.workers) as client:
            yield client
        return
    from .errors import SymgradError

    distributed = dask_distributed("--scheduler")
    try:
        client = distributed.Client(args.scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        raise SymgradError(f"--scheduler {args.scheduler}: cannot reach a Dask scheduler there ({error}); check the "
                           "address (tcp://host:8786) and that the scheduler runs") from None
    with client:
        yield client


def _fit_on_cluster(args: argparse.Namespace, document: dict[str, Any], module: Any, theta: Any, state: Any,
                    train_set: Any, validation: Any, progress: Any, classification: bool) -> tuple[Any, str]:
    """train's epochs as distributed.fit's full-batch steps, theta and state updated in place (the
    best epoch's with --patience); the history and a line that says where they ran."""
    from . import distributed, training

    watch = training.EpochWatch(module, theta, state, train_set, validation, progress, classification,
                                args.patience)
    with _cluster_client(args) as client:
        workers = len(client.scheduler_info()["workers"])
        try:
            theta[:], state[:], _ = distributed.fit(document, train_set.X, train_set.T, epochs=args.epochs,
                                                    chunk_rows=args.chunk_rows, theta=theta, state=state,
                                                    client=client, backend=args.backend, progress=watch.after)
        finally:
            progress.close()
    history = watch.finish(theta, state)
    chunks = -(-train_set.n // args.chunk_rows)
    return history, (f"on a Dask cluster of {workers} worker(s): {chunks} chunk(s) of up to {args.chunk_rows} rows, "
                     "one full-batch step per epoch")


def _sweep(args: argparse.Namespace) -> int:
    import time
    from types import SimpleNamespace

    import numpy as np

    from . import distributed, training
    from .errors import SpecError
    from .outputs import check_output, write_output
    from .spec import parse_spec, read_document

    document = read_document(args.spec)
    spec = parse_spec(document)
    try:
        seeds = [int(text) for text in args.seeds.split(",")]
    except ValueError:
        raise SpecError("--seeds", f"{args.seeds!r} is not a list of seeds",
                        "write whole numbers such as 0,1,2") from None
    for name, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise SpecError(name, f"{value} is too small", "use 1 or more")
    if args.workers is None and args.scheduler is None:
        raise SpecError("sweep", "runs on a Dask cluster", "give --workers N (a local cluster) or --scheduler ADDRESS")
    _check_cluster(args, 0)
    grid = _read_json(args.grid, "--grid")
    points = distributed.grid_points(grid)  # a bad grid is reported before the data is read
    check_output(args.out, "--out")
    save_dir = Path(args.save_dir) if args.save_dir else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        check_output(save_dir / "probe.npz", "--save-dir")
    data = training.load_data(args.data, spec)
    train_set, validation = training.split(data, args.validation_split, 0)
    progress = _ModelsProgress(len(points) * len(seeds), quiet=args.quiet)
    started = time.perf_counter()
    rows = []
    with _cluster_client(args) as client:
        for done, (index, total, result) in enumerate(distributed.iter_sweep(
                document, grid, train_set.X, train_set.T, epochs=args.epochs,
                batch_size=None if args.batch_size is None or args.batch_size >= train_set.n else args.batch_size,
                seeds=seeds, client=client, backend=args.backend,
                validation=None if validation is None else (validation.X, validation.T)), 1):
            row = {"index": index, "overrides": result["overrides"], "seed": result["seed"],
                   "final_loss": result["final_loss"], "losses": [float(v) for v in result["losses"]]}
            for key in ("validation_loss", "validation_accuracy"):
                if key in result:
                    row[key] = result[key]
            if save_dir is not None:
                model = parse_spec(distributed.sweep_document(document, result["overrides"], result["seed"]))
                path = save_dir / f"{model.name}-{index:03d}.npz"
                names = SimpleNamespace(PARAMETER_NAMES=model.parameter_names)  # what save_parameters reads
                training.save_parameters(path, names, result["theta"], result["state"], epochs=args.epochs)
                row["parameters"] = str(path)
            rows.append(row)
            progress.update(done, total, time.perf_counter() - started)
    progress.close()
    rows.sort(key=lambda row: row["index"])
    write_output(args.out, (json.dumps({"spec": spec.name, "epochs": args.epochs, "batch_size": args.batch_size,
                                        "models": rows}, indent=2) + "\n").encode())
    key = "validation_loss" if validation is not None else "final_loss"
    best = min(rows, key=lambda row: row[key] if np.isfinite(row[key]) else np.inf)
    print(f"trained {len(rows)} model(s) of {spec.name} ({len(points)} grid point(s) x {len(seeds)} seed(s)) "
          f"in {time.perf_counter() - started:.2f} s; results: {args.out}")
    print(f"best by {key.replace('_', ' ')}: {best[key]:.6g} with {json.dumps(best['overrides'])}, "
          f"seed {best['seed']}")
    return 0


class _ModelsProgress:
    """sweep's bar: models done of all, drawn like train's (training.Progress), at most every 0.1 s."""

    def __init__(self, total: int, quiet: bool) -> None:
        from .training import Progress

        self.bar = Progress(total, quiet=quiet)

    def update(self, done: int, total: int, seconds: float) -> None:
        bar = self.bar
        if not bar.active:
            return
        width = 24
        filled = int(width * done / total)
        bar.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] model {done}/{total}  {seconds:.1f} s   ")
        bar.stream.flush()

    def close(self) -> None:
        self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
