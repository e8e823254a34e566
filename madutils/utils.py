"""Small helpers shared by every module: seeds, validation of the paper's parameters, devices."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np

SCALES = ("smoke", "small", "paper")


def check_scale(scale: str) -> str:
    """One of :data:`SCALES` (the sizes of every experiment: ``madutils.scales``), or an error that lists them."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)} (MAD_SCALE or --scale)")
    return scale


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 4 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed from a base seed and a path of names, e.g. ``derive_seed(0, t, "fit")``.

    docs/design.md: seeds are derived from (seed, generation, role), so that the same configuration gives the same
    numbers and a resumed run draws exactly what an uninterrupted one would have drawn.
    """
    text = json.dumps([int(seed), *[str(p) for p in parts]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when present) PyTorch in one call."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries that use the global state
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency, but keep this module light
        pass


def check_lam(lam: float, name: str = "lam") -> float:
    """Validate the sampling bias λ ∈ (0, 1] of §2.3 (λ = 1 unbiased, smaller λ: more quality, less diversity)."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {lam!r}") from None
    if math.isnan(value) or not (0.0 < value <= 1.0):
        raise ValueError(
            f"{name} = {lam!r} is not a valid sampling bias: λ must lie in (0, 1] "
            "(1 = unbiased sampling, smaller = more biased)"
        )
    return value


def check_int(value: Any, name: str, minimum: int = 0) -> int:
    """An integer parameter with a lower bound, with an error that names it.

    Floats are refused even when integral (``3.0``): they would give another run key than ``3`` for the same
    loop, and a float that reaches ``range`` or an array shape fails far from where it was written.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        hint = f" (write {int(value)})" if isinstance(value, float) and value.is_integer() else ""
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}{hint}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def canonical(obj: Any) -> Any:
    """A JSON-ready, order-stable view of a configuration (dataclasses, tuples, numpy scalars)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"__class__": type(obj).__name__, **{k: canonical(v) for k, v in asdict(obj).items()}}
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {
            "__ndarray__": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
            "shape": list(obj.shape),
            "dtype": str(obj.dtype),
        }
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot put a {type(obj).__name__} into a run configuration: {obj!r}")


def _strip_docstrings(tree):
    import ast

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def source_digest(source: str) -> str:
    """sha256 of the syntax tree of Python ``source`` without its docstrings: comments, formatting and docstrings do
    not count, any change of the code does."""
    import ast
    import textwrap

    tree = _strip_docstrings(ast.parse(textwrap.dedent(source)))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()[:16]


def _code_object_digest(code, h) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_object_digest(const, h)
        else:
            h.update(repr(const).encode())


def code_digest(obj: Any) -> str:
    """A digest of the code of a class, function or module (:func:`source_digest` of its source): for a class
    defined in a notebook, whose source Python cannot find as a whole, the sources of its methods; without any
    source (code typed into an interpreter), their compiled code. It changes when the code changes, not when
    comments, formatting or docstrings do."""
    import inspect

    try:
        return source_digest(inspect.getsource(obj))
    except (OSError, TypeError, SyntaxError):
        pass
    if not inspect.isclass(obj):
        h = hashlib.sha256()
        _code_object_digest(obj.__code__, h)
        return h.hexdigest()[:16]
    parts = []
    for name, member in sorted(vars(obj).items()):
        func = getattr(member, "__func__", member)  # staticmethod, classmethod
        funcs = [f for f in (func, getattr(member, "fget", None), getattr(member, "fset", None)) if f is not None]
        for f in funcs:
            if inspect.isfunction(f):
                parts.append(f"{name}:{code_digest(f)}")
        if not funcs or not any(inspect.isfunction(f) for f in funcs):
            if not name.startswith("__") and not callable(member):
                parts.append(f"{name}={member!r}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _loaded_globals(code) -> set[str]:
    """The global names a code object (and the functions, lambdas and comprehensions nested in it) reads."""
    import dis

    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(ins.argval, str):
            names.add(ins.argval)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            names |= _loaded_globals(const)
    return names


def _functions_of(cls: type) -> list:
    """The functions a class defines itself (methods, static and class methods, properties), without those that
    ``dataclasses`` writes for it."""
    import inspect

    out = []
    for member in vars(cls).values():
        func = getattr(member, "__func__", member)
        for f in (func, getattr(member, "fget", None), getattr(member, "fset", None)):
            ours = inspect.isfunction(f) and f.__globals__.get("__name__") == cls.__module__
            if ours and f.__code__.co_filename != "<string>":
                out.append(f)
    return out


def _constant(v: Any) -> bool:
    """Whether a module-level value counts as a constant of the code that reads it: numbers, strings, NumPy arrays
    and scalars, frozen dataclasses, and tuples and frozensets of these (lists, dicts and sets are state)."""
    if v is None or isinstance(v, (bool, int, float, complex, str, bytes, np.ndarray, np.generic)):
        return True
    if isinstance(v, (tuple, frozenset)):
        return all(_constant(x) for x in v)
    params = getattr(type(v), "__dataclass_params__", None)
    return bool(params is not None and params.frozen)


def reach_digest(cls: type) -> str | None:
    """A digest of what the methods of ``cls`` reach in the code that defines it (its notebook or module): the
    code of every function and class of that module they call, transitively, and every module-level constant they
    read (numbers, strings, arrays, frozen dataclasses and tuples of them; a list, dict or other object by its type
    only, since its contents are state that changes as the loops run), with the functions' default arguments and
    closures. None when they reach nothing there (only libraries and builtins):
    such a class is identified by :func:`code_digest` alone, as before this digest existed.

    With it, an edit of a helper function in another cell or of a module constant that a method reads gives the
    class a new run key, as an edit of the method itself does; reverting the edit gives the old key back."""
    import inspect

    module, parts, seen = cls.__module__, [], set()
    stack = _functions_of(cls)

    def value(name: str, v: Any) -> None:
        if inspect.ismodule(v) or v is cls:
            return
        if inspect.isfunction(v):
            if v.__module__ == module:
                parts.append(f"def {name}: {code_digest(v)}")
                stack.append(v)
            return
        if inspect.isclass(v):
            if v.__module__ == module:
                parts.append(f"class {name}: {code_digest(v)}")
                stack.extend(_functions_of(v))
            return
        if _constant(v):
            try:
                parts.append(f"{name} = {json.dumps(canonical(v), sort_keys=True)}")
                return
            except (TypeError, ValueError):
                pass
        # a mutable object (a list a method appends to, a cache) or one of another kind: its class only, and that
        # class's code when it is ours; its contents change as the loops run and must not change the key
        kind = type(v)
        parts.append(f"{name}: {kind.__module__}.{kind.__qualname__}")
        if kind.__module__ == module:
            value(f"type({name})", kind)

    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        for name in sorted(_loaded_globals(f.__code__)):
            if name in f.__globals__:
                value(name, f.__globals__[name])
        for i, default in enumerate((f.__defaults__ or ()) + tuple((f.__kwdefaults__ or {}).values())):
            value(f"{f.__qualname__}.default{i}", default)
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or (), strict=False):
            try:
                value(f"{f.__qualname__}.{name}", cell.cell_contents)
            except ValueError:  # an empty cell
                pass
    if not parts:
        return None
    return hashlib.sha256("\n".join(sorted(set(parts))).encode()).hexdigest()[:16]


def config_key(config: Any, length: int = 12) -> str:
    """The hash that names a run folder: sha256 of the canonical JSON of the full configuration."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` picks CUDA when available, else CPU; any explicit torch device string is passed through."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return "cuda"
        warn_unusable_gpu()
        return "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return str(device)


_WARNED_GPU = False


def nvidia_gpu_present() -> bool:
    """Whether the machine has an NVIDIA GPU with a loaded driver (whatever PyTorch makes of it)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def warn_unusable_gpu() -> bool:
    """Warn (once per process) when this machine has an NVIDIA GPU that a CUDA build of PyTorch cannot use, most
    often a driver older than the CUDA the build was made for: without the warning the project would silently
    run on the CPU. Returns whether it warned."""
    global _WARNED_GPU
    import torch

    if _WARNED_GPU or torch.version.cuda is None or torch.cuda.is_available() or not nvidia_gpu_present():
        return False
    _WARNED_GPU = True
    import warnings

    warnings.warn(
        f"this machine has an NVIDIA GPU, but PyTorch {torch.__version__} (built for CUDA {torch.version.cuda}) "
        "cannot use it, so everything runs on the CPU. Usually the driver is older than that CUDA: update the "
        "driver, or install a PyTorch build for the CUDA your driver supports (see pytorch.org, 'Get started').",
        RuntimeWarning,
        stacklevel=3,
    )
    return True


def cpu_threads() -> int:
    """Threads for CPU work: ``MAD_THREADS`` (a positive integer) or every core this process may use."""
    env = os.environ.get("MAD_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"MAD_THREADS = {env!r} is not a positive integer; unset it or set e.g. MAD_THREADS=2")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def check_resolution(resolution: int) -> int:
    r = check_int(resolution, "resolution", 8)
    if r & (r - 1):
        raise ValueError(f"resolution = {r} is not a power of two (StyleGAN2 grows from 4 × 4 by factors of 2)")
    return r


def agree(value: Any, group: tuple[int, int] | None) -> Any:
    """``value`` as rank 0 of ``group`` has it, in every process of the group (itself without a group)."""
    if group is None:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(group: tuple[int, int] | None) -> None:
    """Wait for every process of ``group`` (nothing without a group)."""
    if group is not None:
        import torch.distributed as dist

        dist.barrier()
