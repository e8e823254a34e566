"""madutils: the shared package of the MAD notebooks, a replication of *Self-Consuming Generative Models Go MAD*
(Alemohammad, Casco-Rodriguez et al., ICLR 2024).

Layers, each importing only those below it: ``utils``; ``gaussian`` (closed forms); ``store`` (run folders,
checksums, locks, resume) and ``data``; ``models`` and ``metrics``; ``loops`` (the autophagous loop engine);
``montecarlo`` and ``fresh`` (the Gaussian loops); ``scales`` (typed sizes); ``experiments`` (every experiment,
defined once); ``registry``, ``claims``, ``plots``, ``gallery``, ``notebook``.
"""

__version__ = "0.1.0"
