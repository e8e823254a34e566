"""madutils: the shared package of the MAD notebooks, a replication of *Self-Consuming Generative Models Go MAD*
(Alemohammad, Casco-Rodriguez et al., ICLR 2024).

Modules: ``loops`` (the autophagous loop engine), ``store`` (run folders, resume, tidy tables), ``gaussian``
(closed forms and fast Monte Carlo), ``data``, ``metrics``, ``models``, ``plots``, ``claims``, ``scales``.
"""

__version__ = "0.1.0"
