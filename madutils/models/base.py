"""What the PyTorch model families share (docs/design.md, "The loop engine").

A family is a frozen dataclass with ``fit(data, seed)`` and ``sample(model, n, lam, seed)``; its fields are its
run key. :class:`TorchFamily` adds what every PyTorch family has: its results depend on the CPU thread count
(``thread_dependent``: the engine puts the device kind and threads into the run key), and some of its fields only
say where or how fast it computes (the device, ``torch.compile``, progress bars, batch sizes of sampling), which
are declared on the field itself, ``field(..., metadata=NOT_KEY)``, and left out of the key. A field added after
runs were stored is declared ``metadata=key_unless(old default)``: at that value it stays out of the key, so the
stored runs keep theirs.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, ClassVar

from ..utils import canonical

NOT_KEY = {"key": False}  # where or how fast a family computes, never what: not part of a run key


def key_unless(value: Any) -> dict:
    """Metadata of a field added after runs were stored: left out of the key while it has its old ``value``."""
    return {"key_unless": value}


class TorchFamily:
    """The base of the PyTorch model families (DDPM, StyleGAN2, WGAN-GP, the flow): a run key from the fields that
    change results (:meth:`key`), the thread dependence, and a copy without progress bars (:meth:`quiet`)."""

    thread_dependent: ClassVar[bool] = True  # results change with the CPU thread count: part of the run key

    def key(self) -> dict:
        """The fields that change results, plus :meth:`key_extra`."""
        kept = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("key") is False:
                continue
            if "key_unless" in f.metadata and value == f.metadata["key_unless"]:
                continue
            kept[f.name] = value
        return canonical(kept | self.key_extra())

    def key_extra(self) -> dict:
        """What else identifies the family's results besides its fields (e.g. an architecture's version)."""
        return {}

    def quiet(self):
        """This family without its progress bars (worker processes report through one bar of their parent)."""
        return replace(self, progress=False) if "progress" in {f.name for f in fields(self)} else self  # type: ignore[arg-type]
