"""Check a resolved profile, seed and device before any work starts.

Why: a bad value that surfaces after an hour of training costs the hour, and one that is silently "fixed" (epochs 0
clamped to 1, 1.5 rounded to 2) produces results for a configuration nobody asked for -- and then reuses them for
another config that happens to round the same way. So every field is checked once, up front, and a bad value is
rejected with a message that names the field, the value, the rule and the ``--set`` that fixes it; nothing is
clamped or rounded.

Every problem found is reported in one :class:`~repro.errors.ReproError` (one line, ``; ``-separated), so a user
with three bad overrides fixes them in one go.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any

from repro.errors import ReproError

SEED_LIMIT = 2**32  # torch.manual_seed and numpy accept seeds in [0, 2**32)


def _type_name(tp: Any) -> str:
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    return str(tp)


def _type_problems(obj: Any, prefix: str = "") -> list[str]:
    """Fields whose value does not have the declared type (``--set`` values are parsed as JSON, so ``epochs=abc``
    arrives as a string and ``epochs=1.5`` as a float)."""
    out: list[str] = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        out.extend(_check_value(hints[f.name], getattr(obj, f.name), prefix + f.name))
    return out


def _check_value(tp: Any, value: Any, name: str) -> list[str]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _check_value(non_none[0], value, name)
        return []
    if dataclasses.is_dataclass(tp):
        if not dataclasses.is_dataclass(value):
            return [f"{name} = {value!r} is not a {tp.__name__}"]
        return _type_problems(value, name + ".")
    if origin is tuple:
        if not isinstance(value, tuple):
            return [f"{name} = {value!r} is not a list"]
        elem = args[0] if args else Any
        return [p for i, v in enumerate(value) for p in _check_value(elem, v, f"{name}[{i}]")]
    if origin in (list, dict) or tp is Any:
        return []
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp in (str, bool):
        ok = isinstance(value, tp)
    else:
        return []
    return [] if ok else [f"{name} = {value!r} must be {_type_name(tp)}"]


def seed_problem(seed: Any, name: str = "seed") -> str | None:
    """Why ``seed`` is not a usable seed (None if it is): a non-negative integer below 2**32."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"{name} = {seed!r} must be an integer"
    if not 0 <= seed < SEED_LIMIT:
        return f"{name} = {seed} must be in [0, 2**32 - 1] (torch and numpy seeds)"
    return None


def check_seed(seed: Any, name: str = "--seed") -> None:
    problem = seed_problem(seed, name)
    if problem:
        raise ReproError(problem)


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _whole(x: float) -> bool:
    return math.isfinite(x) and abs(x - round(x)) < 1e-9


def _hyper_problems(h: Any, name: str) -> list[str]:
    out = []
    if not _positive(h.learning_rate):
        out.append(f"{name}.learning_rate = {h.learning_rate!r} must be a positive number")
    for field in ("epochs", "batch_size"):
        if not _positive_int(getattr(h, field)):
            out.append(f"{name}.{field} = {getattr(h, field)!r} must be a positive integer")
    if not (isinstance(h.warmup_ratio, (int, float)) and 0 <= h.warmup_ratio < 1):
        out.append(f"{name}.warmup_ratio = {h.warmup_ratio!r} must be in [0, 1)")
    if not (isinstance(h.weight_decay, (int, float)) and math.isfinite(h.weight_decay) and h.weight_decay >= 0):
        out.append(f"{name}.weight_decay = {h.weight_decay!r} must be a non-negative number")
    for field in ("max_grad_norm", "adam_eps"):
        if not _positive(getattr(h, field)):
            out.append(f"{name}.{field} = {getattr(h, field)!r} must be a positive number")
    for field in ("adam_beta1", "adam_beta2"):
        v = getattr(h, field)
        if not (isinstance(v, (int, float)) and 0 <= v < 1):
            out.append(f"{name}.{field} = {v!r} must be in [0, 1)")
    if not isinstance(getattr(h, "length_bucketed", False), bool):
        out.append(f"{name}.length_bucketed = {h.length_bucketed!r} must be true or false")
    return out


# landscape fields: (minimum, what) -- integers unless noted; fields a profile does not have are skipped
_LANDSCAPE_MIN_INT = {
    "curve_points": 2, "surface_points": 2, "random_width_points": 2, "random_directions": 0, "eval_train_size": 1,
    "eval_dev_size": 1, "eval_batch_size": 1, "hessian_top_k": 1, "hessian_max_iter": 1, "trace_samples": 1,
    "hessian_batch_size": 1, "hessian_examples": 1, "layer_surface_points": 2,
    "width_ladder": 1, "width_bisection_steps": 0,  # science v3's bisection widths (claims.analysis)
}
_LANDSCAPE_POSITIVE = ("surface_radius", "random_width_radius", "hessian_tol")


def _landscape_problems(ls: Any) -> list[str]:
    out = []
    for field, lo in _LANDSCAPE_MIN_INT.items():
        v = getattr(ls, field, None)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
            out.append(f"landscape.{field} = {v!r} must be an integer >= {lo}")
    for field in _LANDSCAPE_POSITIVE:
        v = getattr(ls, field, None)
        if v is not None and not _positive(v):
            out.append(f"landscape.{field} = {v!r} must be a positive number")
    lo, hi = getattr(ls, "curve_min", None), getattr(ls, "curve_max", None)
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not lo < hi:
        out.append(f"landscape.curve_min = {lo!r} must be below landscape.curve_max = {hi!r}")
    k, it = getattr(ls, "hessian_top_k", None), getattr(ls, "hessian_max_iter", None)
    if _positive_int(k) and _positive_int(it) and it < k:
        out.append(f"landscape.hessian_max_iter = {it} must be at least landscape.hessian_top_k = {k}")
    return out


def profile_problems(prof: Any) -> list[str]:
    """Every reason the resolved profile cannot run, as short phrases naming the field (empty if none)."""
    from repro.data import TASKS
    from repro.models import resolve_spec

    out = _type_problems(prof)
    if out:  # the range checks below assume the declared types
        return out
    if not prof.tasks:
        out.append("tasks is empty: name at least one task")
    unknown = [t for t in prof.tasks if t not in TASKS]
    if unknown:
        out.append(f"unknown task(s) {', '.join(map(repr, unknown))} in tasks; known tasks: "
                   f"{', '.join(sorted(TASKS.names()))}")
    if len(set(prof.tasks)) != len(prof.tasks):
        out.append(f"tasks = {list(prof.tasks)} names a task twice")
    partners = tuple(getattr(prof, "partner_tasks", ()))
    bad = [t for t in partners if t not in TASKS]
    if bad:
        out.append(f"unknown task(s) {', '.join(map(repr, bad))} in partner_tasks; known tasks: "
                   f"{', '.join(sorted(TASKS.names()))}")
    both = [t for t in partners if t in prof.tasks]
    if both:
        out.append(f"partner_tasks {', '.join(map(repr, both))} also in tasks: a partner-only task is not analysed, "
                   "so it cannot be one of the analysed tasks")
    if partners and len(prof.tasks) > 1:
        out.append(f"partner_tasks = {list(partners)} with {len(prof.tasks)} tasks: partners come from tasks when "
                   "there are several; use partner_tasks only with one analysed task")
    if not prof.seeds:
        out.append("seeds is empty: give at least one seed (e.g. --seeds 1 or --set seeds=0,1,2)")
    out.extend(p for i, s in enumerate(prof.seeds) if (p := seed_problem(s, f"seeds[{i}]")))
    if len(set(prof.seeds)) != len(prof.seeds):
        out.append(f"seeds = {list(prof.seeds)} repeats a seed")
    if (p := seed_problem(prof.data_seed, "data_seed")) is not None:
        out.append(p)
    try:
        resolve_spec(prof.model)
    except ReproError as e:
        out.append(str(e))
    if not (_positive_int(prof.max_length) and prof.max_length >= 2):
        out.append(f"max_length = {prof.max_length!r} must be an integer >= 2 ([CLS] and [SEP])")
    for field in ("train_size", "dev_size"):
        v = getattr(prof, field)
        if v is not None and not _positive_int(v):
            out.append(f"{field} = {v!r} must be a positive integer or null (all examples)")
    out.extend(_hyper_problems(prof.pretrained, "pretrained"))
    out.extend(_hyper_problems(prof.scratch, "scratch"))
    if not (_positive_int(prof.snapshots) and prof.snapshots >= 2):
        out.append(f"snapshots = {prof.snapshots!r} must be an integer >= 2 (θ0 and θ1)")
    if not _positive_int(prof.evals_per_epoch):
        out.append(f"evals_per_epoch = {prof.evals_per_epoch!r} must be a positive integer")
    if not prof.settings:
        out.append("settings is empty: a profile needs at least one training setting")
    names = [s.name for s in prof.settings]
    if len(set(names)) != len(names):
        out.append(f"settings repeat a name: {names}")
    for field in ("extended_setting", "partner_setting"):
        named = getattr(prof, field, None)
        if named is not None and named not in names:
            out.append(f"{field} = {named!r} is not one of the profile's settings {names}: keep that setting "
                       f"(--set settings=...) or --set {field}=null")
    if not (_positive(prof.overfit_epoch_factor) and prof.overfit_epoch_factor >= 1):
        out.append(f"overfit_epoch_factor = {prof.overfit_epoch_factor!r} must be a number >= 1")
    for s in prof.settings:
        for field in ("lr_factor", "epoch_factor"):
            if not _positive(getattr(s, field)):
                out.append(f"setting {s.name}: {field} = {getattr(s, field)!r} must be a positive number")
    out.extend(_landscape_problems(prof.landscape))
    if not out:  # derived epochs must be whole: nothing is rounded or clamped behind the user's back
        for arm in ("pretrained", "scratch"):
            epochs = getattr(prof, arm).epochs
            for s in prof.settings:
                x = epochs * s.epoch_factor
                if not (_whole(x) and round(x) >= 1):
                    out.append(f"setting {s.name}: {arm}.epochs {epochs} × epoch_factor {s.epoch_factor} = {x:g} is "
                               "not a whole number of epochs >= 1")
            x = epochs * prof.overfit_epoch_factor
            if not _whole(x):
                out.append(f"{arm}.epochs {epochs} × overfit_epoch_factor {prof.overfit_epoch_factor} = {x:g} is not "
                           "a whole number of epochs")
    return out


def validate_profile(prof: Any, *, fix: str | None = None) -> None:
    """Raise one :class:`ReproError` listing every problem of the resolved profile (nothing if it is valid).

    ``fix`` is appended as the remedy; the default names ``--set`` and ``repro profiles show``."""
    problems = profile_problems(prof)
    if problems:
        fix = fix or (f"Fix with --set KEY=VALUE (see `repro profiles show {prof.name}` for the fields)"
                      if isinstance(getattr(prof, "name", None), str) else "Fix with --set KEY=VALUE")
        # one sentence per part: the problems (without a trailing period of their own), then the fix
        raise ReproError(f"invalid profile: {'; '.join(p.rstrip('.') for p in problems)}. {fix[:1].upper()}{fix[1:]}"
                         .rstrip(".") + ".")


def check_count(value: Any, name: str) -> None:
    """A count given on the command line (``--seeds N``): a positive integer."""
    if not _positive_int(value):
        raise ReproError(f"{name} {value!r}: must be a positive integer (the number of seeds 0..N-1 to run)")
    if value > SEED_LIMIT:
        raise ReproError(f"{name} {value}: must be at most 2**32 (seeds are in [0, 2**32 - 1])")


def check_names(values: Sequence[str] | None, known: Sequence[str], name: str) -> None:
    if values is None:
        return
    if not values:
        raise ReproError(f"{name} needs at least one name; known: {', '.join(known)}")
    bad = [v for v in values if v not in known]
    if bad:
        raise ReproError(f"unknown {name} value(s) {', '.join(map(repr, bad))}; known: {', '.join(known)}")


def check_device(device: str | None) -> None:
    """The requested torch device exists here: a CPU-only torch asked for CUDA fails now, not in the first
    ``.to(device)`` with an AssertionError."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ReproError(f"--device {device!r} is not a torch device ({e}); use cpu, cuda or cuda:N") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else "torch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES?)")
            raise ReproError(f"--device {device}: {why}; omit --device or pass --device cpu (or install the CUDA "
                             "build of torch on a GPU machine)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ReproError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible; use "
                             f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ReproError(f"--device {device}: MPS is not available here; omit --device or pass --device cpu")
    elif dev.type != "cpu":
        raise ReproError(f"--device {device}: unsupported device type {dev.type!r}; use cpu or cuda")
