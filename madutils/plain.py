"""Plain data: how models, cached objects and training states are stored, so that reading them runs no code.

A stored object is a tree of plain values (None, booleans, integers, floats, strings, lists, tuples, dicts, NumPy
arrays and scalars, PyTorch tensors) and instances of the classes registered with :func:`storable` (dataclasses
and named tuples whose fields are plain data: the project's model classes, or a user's). :func:`dumps` writes it
as one `safetensors <https://github.com/huggingface/safetensors>`_ file: the arrays and tensors as its tensors,
named by where they sit in the tree (``state['conv.weight']``), and the tree that holds them as JSON in the
file's metadata. :func:`loads` parses JSON and raw numbers only. There is no pickle and no import by name: a class
named in a file is looked up among the classes this process registered (by defining or importing them), so a
file can at most ask for one of those to be built from plain values. Any safetensors reader can open the file.

Nothing non-finite is written or read: a NaN or infinity anywhere in the tree (an array, a tensor, a float) is
refused with the place where it sits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any

import numpy as np

FORMAT = "madutils-plain-1"

# NumPy dtypes that safetensors stores (complex128 and the strings and objects it does not)
_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
}
_TORCH_ONLY = {"bfloat16": "int16"}  # tensor dtypes NumPy lacks, stored as a view of the same width

_REGISTRY: dict[str, type] = {}


class UnstorableError(TypeError):
    """An object holds something that cannot be stored as plain data; the message names where and what to do."""


class NonFiniteError(ValueError):
    """An object holds NaN or infinity; the message names where."""


class PlainFormatError(ValueError):
    """Stored bytes that are not a plain-data file this process can read."""


class UnknownClassError(PlainFormatError):
    """A stored file names a class that this process has not registered with :func:`storable`."""


def storable(cls: type) -> type:
    """Register a dataclass or ``NamedTuple`` whose fields are plain data, so that its instances can be stored
    and read back (a decorator). A stored file names the class by module and qualified name; reading it builds
    the class registered under that name in this process, from its fields, and nothing else."""
    if not (dataclasses.is_dataclass(cls) or _is_namedtuple(cls)):
        raise TypeError(f"@storable takes a dataclass or a NamedTuple, not {cls.__qualname__}")
    _REGISTRY[_name(cls)] = cls
    return cls


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_namedtuple(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _fields(obj: Any) -> list[str]:
    """The fields that rebuild a registered class or its instance (a dataclass's ``init`` fields)."""
    if dataclasses.is_dataclass(obj):
        return [f.name for f in dataclasses.fields(obj) if f.init]
    return list((obj if isinstance(obj, type) else type(obj))._fields)


def _show(path: str) -> str:
    return path.lstrip(".") or "(the object itself)"


# -- writing --------------------------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self, what: str, keep: bool):
        self.what, self.keep = what, keep
        self.arrays: dict[str, np.ndarray | None] = {}

    def array(self, a: np.ndarray, path: str, kind: str, dtype: str | None = None) -> dict:
        name = _show(path)
        if str(a.dtype) not in _DTYPES:
            raise UnstorableError(
                f"{self.what} holds an array of dtype {a.dtype} at {name}, which cannot be stored as plain data; "
                "use numbers (bool, int, float or complex64)"
            )
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise NonFiniteError(f"{self.what} holds non-finite values ({bad} of {a.size} in {name} are NaN or inf)")
        while name in self.arrays:  # two keys that print alike
            name += "'"
        self.arrays[name] = np.require(a, requirements="C") if self.keep else None  # check(): only the name is kept
        node = {kind: name}
        return node | {"dtype": dtype} if dtype else node

    def encode(self, obj: Any, path: str) -> Any:
        kind = type(obj)
        if obj is None or kind in (bool, int, str):
            return obj
        if kind is float:
            if not math.isfinite(obj):
                raise NonFiniteError(f"{self.what} holds the non-finite value {obj} at {_show(path)}")
            return obj
        if isinstance(obj, np.ndarray):
            return self.array(obj, path, "array")
        if isinstance(obj, np.generic):
            return self.array(np.asarray(obj), path, "scalar")
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.Tensor):
            t = obj.detach().cpu()
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype in _TORCH_ONLY:
                if not torch.isfinite(t).all():
                    raise NonFiniteError(f"{self.what} holds non-finite values in {_show(path)}")
                return self.array(t.view(getattr(torch, _TORCH_ONLY[dtype])).numpy(), path, "tensor", dtype)
            return self.array(t.numpy(), path, "tensor")
        registered = _REGISTRY.get(_name(kind))
        if registered is kind:
            fields = {f: self.encode(getattr(obj, f), f"{path}.{f}") for f in _fields(obj)}
            return {"object": _name(kind), "fields": fields}
        if dataclasses.is_dataclass(obj) or _is_namedtuple(kind):
            raise UnstorableError(
                f"{self.what} holds a {kind.__qualname__} at {_show(path)}, a class that is not registered for "
                "storing: decorate it with @madutils.plain.storable (a dataclass or NamedTuple of plain data)"
            )
        if isinstance(obj, dict):
            if all(type(k) is str for k in obj):
                return {"dict": {k: self.encode(v, f"{path}[{k!r}]") for k, v in obj.items()}}
            return {"pairs": [[self.key(k, path), self.encode(v, f"{path}[{k!r}]")] for k, v in obj.items()]}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if kind is tuple:
            return {"tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        hint = (
            " (a torch module: store its state_dict() and the settings that rebuild it, e.g. in a @storable dataclass)"
            if torch is not None and isinstance(obj, torch.nn.Module)
            else ""
        )
        raise UnstorableError(
            f"{self.what} holds a value of type {kind.__qualname__} at {_show(path)}, which cannot be stored as "
            f"plain data{hint}. "
            "A stored object is made of None, bool, int, float, str, list, tuple, dict, NumPy arrays and scalars, "
            "torch tensors and @madutils.plain.storable dataclasses or NamedTuples of these"
        )

    def key(self, k: Any, path: str) -> Any:
        if k is None or type(k) in (bool, int, str, float):
            return self.encode(k, path)
        if type(k) is tuple:
            return {"tuple": [self.key(v, path) for v in k]}
        raise UnstorableError(f"{self.what} has a dict key {k!r} of type {type(k).__qualname__} at {_show(path)}")


def check(obj: Any, what: str = "the object") -> None:
    """Raise :class:`UnstorableError` or :class:`NonFiniteError`, naming ``what`` and the place, when ``obj``
    cannot be stored as plain data or holds NaN or infinity (what :func:`dumps` would refuse, without writing)."""
    _Encoder(what, keep=False).encode(obj, "")


def dumps(obj: Any, what: str = "the object") -> bytes:
    """``obj`` as the bytes of a plain-data file (deterministic: the same object gives the same bytes)."""
    import safetensors.numpy

    enc = _Encoder(what, keep=True)
    tree = enc.encode(obj, "")
    # one metadata entry: safetensors writes its metadata in no fixed order, and the same object gives the same bytes
    meta = json.dumps({"format": FORMAT, "tree": tree}, separators=(",", ":"), allow_nan=False)
    return safetensors.numpy.save(enc.arrays, metadata={"madutils": meta})


# -- reading --------------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise PlainFormatError(f"the stored tree holds {name}")


def _header(data: bytes) -> dict:
    if len(data) < 8:
        raise PlainFormatError("too short for a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if not 2 <= n <= len(data) - 8:
        raise PlainFormatError("its header length does not fit the file")
    header = json.loads(data[8 : 8 + n], parse_constant=_reject_constant)
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    text = meta.get("madutils") if isinstance(meta, dict) else None
    content = json.loads(text, parse_constant=_reject_constant) if isinstance(text, str) else None
    if not isinstance(content, dict) or content.get("format") != FORMAT or "tree" not in content:
        raise PlainFormatError(f"it is not a {FORMAT} file (its safetensors metadata has no such format and tree)")
    return content


def _registered(name: Any) -> type | None:
    """The class registered under ``name``. A class of this package is registered when its module is imported, so
    such a module is imported first (a module of madutils only, by a dotted name checked to be one: importing it
    runs this package's own code, never code that a stored file brings)."""
    if not isinstance(name, str):
        return None
    if name not in _REGISTRY:
        module = name.partition(":")[0]
        parts = module.split(".")
        if parts[0] == __name__.split(".")[0] and all(p.isidentifier() for p in parts):
            import importlib.util

            try:
                if importlib.util.find_spec(module) is not None:
                    importlib.import_module(module)
            except ImportError:
                pass
    return _REGISTRY.get(name)


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            raise PlainFormatError(f"the tree names an array {name!r} that the file does not hold")
        a = self.arrays[name]
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise NonFiniteError(f"the stored array {name} holds NaN or infinity")
        return a

    def decode(self, node: Any) -> Any:
        if node is None or type(node) in (bool, int, str):
            return node
        if type(node) is float:
            if not math.isfinite(node):  # JSON's 1e999
                raise NonFiniteError(f"the stored tree holds the non-finite value {node}")
            return node
        if type(node) is list:
            return [self.decode(v) for v in node]
        if type(node) is not dict:
            raise PlainFormatError(f"unexpected node {type(node).__name__}")
        tag = next(iter(node), None)
        if tag == "dict" and len(node) == 1 and type(node["dict"]) is dict:
            return {k: self.decode(v) for k, v in node["dict"].items()}
        if tag == "pairs" and len(node) == 1 and type(node["pairs"]) is list:
            out = {}
            for pair in node["pairs"]:
                if type(pair) is not list or len(pair) != 2:
                    raise PlainFormatError("a dict entry is not a pair")
                key = self.decode(pair[0])
                try:
                    out[key] = self.decode(pair[1])
                except TypeError:
                    raise PlainFormatError(f"a dict key of type {type(key).__name__}") from None
            return out
        if tag == "tuple" and len(node) == 1 and type(node["tuple"]) is list:
            return tuple(self.decode(v) for v in node["tuple"])
        if tag == "array" and len(node) == 1:
            return self.array(node["array"])
        if tag == "scalar" and len(node) == 1:
            return self.array(node["scalar"])[()]
        if tag == "tensor" and set(node) <= {"tensor", "dtype"}:
            import torch

            t = torch.from_numpy(self.array(node["tensor"]))
            dtype = node.get("dtype")
            if dtype is None:
                return t
            if dtype not in _TORCH_ONLY or str(t.dtype) != f"torch.{_TORCH_ONLY[dtype]}":
                raise PlainFormatError(f"a tensor of dtype {dtype!r}")
            t = t.view(getattr(torch, dtype))
            if not torch.isfinite(t).all():
                raise NonFiniteError(f"the stored tensor {node['tensor']} holds NaN or infinity")
            return t
        if tag == "object" and set(node) == {"object", "fields"} and type(node["fields"]) is dict:
            name = node["object"]
            cls = _registered(name)
            if cls is None:
                raise UnknownClassError(
                    f"it names the class {name!r}, which this process has not registered for reading (a class is "
                    "registered by @madutils.plain.storable when it is defined: import or define it first)"
                )
            want = _fields(cls)
            if sorted(node["fields"]) != sorted(want):
                raise PlainFormatError(
                    f"it stores {name} with the fields {sorted(node['fields'])}, and the class now has {sorted(want)}"
                )
            return cls(**{k: self.decode(v) for k, v in node["fields"].items()})
        raise PlainFormatError(f"unexpected node with keys {sorted(node)[:4]}")


def loads(data: bytes) -> Any:
    """The object stored in ``data`` by :func:`dumps`. Raises :class:`PlainFormatError` for bytes that are not
    such a file or name a class this process has not registered, :class:`NonFiniteError` for NaN or infinity."""
    import safetensors.numpy

    try:
        tree = _header(data)["tree"]
        arrays = safetensors.numpy.load(data)
        return _Decoder(arrays).decode(tree)
    except (PlainFormatError, NonFiniteError):
        raise
    except RecursionError:
        raise PlainFormatError("its tree is nested too deeply") from None
    except Exception as exc:  # malformed JSON or safetensors: whatever the parser says
        raise PlainFormatError(f"{type(exc).__name__}: {exc}") from None
