"""Improved precision and recall (Kynkäänniemi et al. 2019), the paper's quality and diversity (§2.4, k = 5),
and density and coverage (Naeem et al. 2020) from the same k-NN balls, as secondary measures.

Each point of a set gets a radius: the distance to its k-th nearest neighbour in its own set, itself excluded.
A generated sample counts for **precision** when it lies within the radius of some real point; a real point
counts for **recall** when it lies within the radius of some generated sample.

Convention for ties: "within" means distance ``<=`` radius. Self-consuming loops produce exact duplicates (a
collapsed generator repeats images), and then ``<`` and ``<=`` differ: with ``<`` a point whose k nearest
neighbours are copies of itself (radius 0) covers nothing, not even its own copies. The ``prdc`` package uses
``<``; on continuous features, where ties have probability zero, both give the same numbers.

How it is computed. Distances come in square blocks of ``block`` × ``block`` from one float32 matrix product each
(features centred on the reference mean, which keeps the round-off near 1e-7 of the squared norms); no full
distance matrix is ever held, so memory is bounded by the features plus a few blocks, at any set size. A set's
own distances are symmetric, so only the blocks on and above the diagonal are computed, and each updates the
running nearest-neighbour candidates of both its rows and its columns. Every decision that float32 round-off could
flip is recomputed exactly in float64 from the original features: the k-th neighbour is chosen among a few extra
candidates by exact distances, and a distance within a relative band (``REL_TOL``, about 100 times the largest
float32 error seen on 2048-d features) of a radius is compared exactly. So the result does not depend on the
block size and agrees with a float64 computation.

Low-dimensional features (``d <= LOW_DIM``, e.g. the 2-D toy densities of App. B) take a simpler exact path: the
distances are computed directly in float64 from coordinate differences (the same arithmetic as the re-checks
above, so both paths give identical results), in row blocks of bounded memory. There the matrix product saves
nothing, and collapsed 2-D data (many near-duplicates) would send most decisions through the re-check band
(``benchmarks/bench_low_dim.py``: 5x to 14x faster on the GMM loop's sets).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..gaussian import psd_factor, w2_squared
from ..utils import check_int
from .fid import check_features, gaussian_stats

DEFAULT_BLOCK = 2048
MARGIN = 4  # extra nearest-neighbour candidates whose exact distances are checked
REL_TOL = 1e-5  # band (relative to |a|² + |b|² of centred features) in which a float32 decision is re-checked
_PAIR_BATCH = 2048  # exact re-checks per batch (bounded memory)
LOW_DIM = 7  # at or below this dimension, distances are computed exactly in float64 (no float32 product)
_LOW_DIM_BYTES = 2**26  # memory of one float64 distance block of the low-dimensional path


@dataclass
class _Set:
    """A feature set prepared for distance blocks: the float32 rows on the device (no copy for float32 input), the
    centre that blocks are shifted by, the squared norms of the centred rows, and the original rows for exact
    float64 re-checks."""

    x32: torch.Tensor
    center: torch.Tensor
    sq: torch.Tensor
    orig: np.ndarray

    @classmethod
    def make(cls, x: np.ndarray, center: np.ndarray, device: torch.device) -> _Set:
        x32 = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        c = torch.as_tensor(center, dtype=torch.float32, device=device)
        sq = torch.cat([((x32[b] - c).double() ** 2).sum(1).float() for b in _blocks(len(x32), DEFAULT_BLOCK)])
        return cls(x32, c, sq, x)

    def __len__(self) -> int:
        return self.x32.shape[0]

    def rows(self, i: slice) -> torch.Tensor:
        """Centred float32 rows (centring keeps the round-off of |a|² + |b|² − 2 a·b small)."""
        return self.x32[i] - self.center

    def exact_sq(self, rows: np.ndarray, other: _Set, cols: np.ndarray) -> torch.Tensor:
        """Exact squared distances of the pairs (rows[p], cols[p]) in float64, in bounded batches."""
        out = np.empty(len(rows), dtype=np.float64)
        for s in range(0, len(rows), _PAIR_BATCH):
            a = np.asarray(self.orig[rows[s : s + _PAIR_BATCH]], dtype=np.float64)
            b = np.asarray(other.orig[cols[s : s + _PAIR_BATCH]], dtype=np.float64)
            out[s : s + _PAIR_BATCH] = ((a - b) ** 2).sum(axis=1)
        return torch.from_numpy(out).to(self.x32.device)


def _precision_knobs() -> list:
    """PyTorch's per-backend float32 precision settings (``fp32_precision``, PyTorch ≥ 2.9), or [] on older builds."""
    b = torch.backends
    knobs = [b.cuda.matmul, getattr(b.cudnn, "conv", None), getattr(getattr(b, "mkldnn", None), "matmul", None)]
    return [k for k in knobs if k is not None and hasattr(k, "fp32_precision")]


@contextlib.contextmanager
def exact_float32():
    """Float32 products in full float32 precision while distances are computed: a process that enabled TF32 for
    training (StyleGAN2 does, on Ampere and later GPUs) would otherwise get distance errors of order 1e-3 relative,
    far outside the re-check band ``REL_TOL`` of the exact decisions. Uses the per-backend ``fp32_precision``
    settings where PyTorch has them (reading the legacy ``allow_tf32`` flags after they were mixed with the new
    settings is an error in recent PyTorch), else the legacy flags; restores them afterwards."""
    knobs = _precision_knobs()
    if knobs:
        saved = [k.fp32_precision for k in knobs]
        for k in knobs:
            k.fp32_precision = "ieee"
        try:
            yield
        finally:
            for k, v in zip(knobs, saved, strict=True):
                k.fp32_precision = v
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    precision = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
        torch.set_float32_matmul_precision(precision)


def _block_sq(a: _Set, i: slice, b: _Set, j: slice) -> torch.Tensor:
    """Approximate squared distances between rows ``i`` of ``a`` and rows ``j`` of ``b`` (one float32 product)."""
    d2 = torch.addmm(b.sq[j][None, :], a.rows(i), b.rows(j).T, alpha=-2.0)
    return d2.add_(a.sq[i][:, None]).clamp_min_(0.0)


def _blocks(n: int, size: int) -> list[slice]:
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def _exact_rows(a: np.ndarray, b: np.ndarray, ncols: int) -> list[slice]:
    """Row blocks of ``a`` whose float64 differences against ``ncols`` rows of ``b`` fit in ``_LOW_DIM_BYTES``."""
    per_row = max(1, ncols * 8)
    return _blocks(len(a), max(1, _LOW_DIM_BYTES // per_row))


def _exact_block_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances between all rows of ``a`` and ``b`` from float64 coordinate differences, summed over the
    coordinates from left to right (SciPy's ``cdist``): the same arithmetic as :meth:`_Set.exact_sq` for fewer
    than 8 coordinates, where NumPy sums a row sequentially (tests/test_metrics.py checks the identity)."""
    from scipy.spatial.distance import cdist

    return cdist(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), "sqeuclidean")


def _radii_sq_low_dim(s: _Set, k: int) -> torch.Tensor:
    x = s.orig
    out = np.empty(len(x), dtype=np.float64)
    for i in _exact_rows(x, x, len(x)):
        d2 = _exact_block_sq(x[i], x)
        d2[np.arange(d2.shape[0]), np.arange(i.start, i.stop)] = -1.0  # itself first
        out[i] = np.partition(d2, k, axis=1)[:, k]
    return torch.from_numpy(out).to(s.x32.device)


@dataclass
class _Hits:
    """What one pass over the real × fake distances finds: per fake sample, the number of real k-NN balls that
    contain it (``count``: precision is ``count > 0``, density its mean / k); per real point, whether some fake sample
    lies in its own ball (``covered``: coverage) and whether it lies in the ball of some fake sample (``recall``)."""

    count: torch.Tensor
    covered: torch.Tensor
    recall: torch.Tensor


def _coverage_low_dim(real: _Set, fake: _Set, r_real: torch.Tensor, r_fake: torch.Tensor) -> _Hits:
    rr, rf = r_real.cpu().numpy(), r_fake.cpu().numpy()
    count = np.zeros(len(fake), dtype=np.int64)
    covered = np.zeros(len(real), dtype=bool)
    rec = np.zeros(len(real), dtype=bool)
    for i in _exact_rows(real.orig, fake.orig, len(fake)):
        d2 = _exact_block_sq(real.orig[i], fake.orig)
        rec[i] = (d2 <= rf[None, :]).any(axis=1)
        inside = d2 <= rr[i, None]
        count += inside.sum(axis=0)
        covered[i] = inside.any(axis=1)
    dev = real.x32.device
    return _Hits(*(torch.from_numpy(a).to(dev) for a in (count, covered, rec)))


def _merge_candidates(best_v, best_i, rows: slice, d2: torch.Tensor, offset: int, m: int) -> None:
    top = d2.topk(min(m, d2.shape[1]), dim=1, largest=False)
    v = torch.cat([best_v[rows], top.values], dim=1)
    idx = torch.cat([best_i[rows], top.indices + offset], dim=1)
    keep = v.topk(m, dim=1, largest=False)
    best_v[rows] = keep.values
    best_i[rows] = idx.gather(1, keep.indices)


def _radii_sq(s: _Set, k: int, block: int, full_scan_zero: bool = False) -> torch.Tensor:
    """Exact squared distance of every row to its k-th nearest neighbour in its own set, itself excluded.

    ``full_scan_zero`` is the reference behaviour for the benchmark: every unsure row is checked by an exact scan
    over every point (also rows whose radius is exactly 0, which nothing can change); by default unsure rows go
    through :func:`_rescan`, which measures exactly only the points that can lie within the radius."""
    n = len(s)
    if n < k + 1:
        raise ValueError(f"a set of {n} samples has no {k}-th nearest neighbour besides itself; need >= {k + 1}")
    if s.x32.shape[1] <= LOW_DIM:
        return _radii_sq_low_dim(s, k)
    m = min(n, k + 1 + MARGIN)
    dev = s.x32.device
    best_v = torch.full((n, m), float("inf"), device=dev)
    best_i = torch.full((n, m), -1, dtype=torch.long, device=dev)
    blocks = _blocks(n, block)
    for bi, i in enumerate(blocks):
        for j in blocks[bi:]:
            d2 = _block_sq(s, i, s, j)
            if i == j:
                d2.fill_diagonal_(-1.0)  # itself always first, whatever the round-off
            _merge_candidates(best_v, best_i, i, d2, j.start, m)
            if i != j:
                _merge_candidates(best_v, best_i, j, d2.T, i.start, m)
    # Sort the candidates by their float32 distance (itself first). Where the candidates next to position k are
    # farther apart than the round-off band, the float32 order is the exact order and one exact distance gives
    # the radius; elsewhere all m candidates are compared exactly.
    best_v, order = best_v.sort(dim=1)
    best_i = best_i.gather(1, order)
    band = REL_TOL * (3 * s.sq[:, None] + 2 * best_v.clamp_min(0.0))
    gaps = best_v[:, 1:] - best_v[:, :-1]
    clear = (gaps[:, k - 1] > 2 * band[:, k]) & ((gaps[:, k] > 2 * band[:, k]) if m > k + 1 else True)
    radii = torch.empty(n, dtype=torch.float64, device=dev)
    easy = torch.nonzero(clear).flatten()
    radii[easy] = s.exact_sq(easy.cpu().numpy(), s, best_i[easy, k].cpu().numpy())
    hard = torch.nonzero(~clear).flatten()
    if len(hard):
        rows = hard.repeat_interleave(m).cpu().numpy()
        exact = s.exact_sq(rows, s, best_i[hard].flatten().cpu().numpy()).view(len(hard), m)
        exact[best_i[hard] == hard[:, None]] = -1.0
        radii[hard] = exact.sort(dim=1).values[:, k]  # index 0 is the point itself
    if m < n:
        # A point outside the candidates has float32 distance >= the m-th candidate's; its exact distance is at
        # least that minus the band, so the k-th candidate is the true k-th neighbour when it lies below.
        bound = best_v[:, -1].double() - band[:, -1].double()
        # A radius of exactly 0 (k exact duplicates among the candidates) cannot be lowered: the rows of a
        # collapsed generation, made of many copies of a few images, need no further check.
        unsure = (radii > bound) if full_scan_zero else (radii > bound) & (radii > 0)
        if full_scan_zero:
            for row in torch.nonzero(unsure).flatten().tolist():
                full = s.exact_sq(np.full(n, row), s, np.arange(n))
                full[row] = -1.0
                radii[row] = full.sort().values[k]
        else:
            _rescan(s, k, torch.nonzero(unsure).flatten(), radii, block)
    return radii


def _rescan(s: _Set, k: int, rows: torch.Tensor, radii: torch.Tensor, block: int) -> None:
    """The exact k-th neighbour distance of ``rows`` over the whole set, in place in ``radii``. Blocks of float32
    distances to every point select the points whose distance can lie within the current radius (within a band
    wider than the round-off of ``_radii_sq``); only those are measured exactly in float64. Every point within the
    radius is selected (the radius came from k + 1 such points, itself included), so the k-th smallest exact
    distance among the selected points is the k-th over the whole set: the values of a scan over every point, at
    the cost of one float32 product per block (collapsed generations, with many ties at the radius, need this
    check for many rows)."""
    n = len(s)
    for start in range(0, len(rows), block):
        r = rows[start : start + block]
        a = s.x32[r] - s.center
        found_i, found_j = [], []
        for j in _blocks(n, block):
            d2 = torch.addmm(s.sq[j][None, :], a, s.rows(j).T, alpha=-2.0).add_(s.sq[r][:, None])
            tol = REL_TOL * (3 * (s.sq[r][:, None] + s.sq[j][None, :]) + 2 * d2.abs())
            ii, jj = torch.nonzero(d2.double() - tol.double() <= radii[r][:, None], as_tuple=True)
            found_i.append(ii)
            found_j.append(jj + j.start)
        ii, jj = torch.cat(found_i), torch.cat(found_j)
        exact = s.exact_sq(r[ii].cpu().numpy(), s, jj.cpu().numpy())
        exact[r[ii] == jj] = -1.0  # the point itself comes first
        for p, row in enumerate(r.tolist()):
            radii[row] = exact[ii == p].sort().values[k]


def _coverage(real: _Set, fake: _Set, r_real: torch.Tensor, r_fake: torch.Tensor, block: int) -> _Hits:
    """One pass over the real × fake distance blocks (see :class:`_Hits`). A float32 decision within the re-check
    band of a radius is settled by the exact float64 distance."""
    if real.x32.shape[1] <= LOW_DIM:
        return _coverage_low_dim(real, fake, r_real, r_fake)
    dev = real.x32.device
    count = torch.zeros(len(fake), dtype=torch.int64, device=dev)
    covered = torch.zeros(len(real), dtype=torch.bool, device=dev)
    rec = torch.zeros(len(real), dtype=torch.bool, device=dev)
    rr32, rf32 = r_real.float(), r_fake.float()
    for i in _blocks(len(real), block):
        for j in _blocks(len(fake), block):
            d2 = _block_sq(real, i, fake, j)
            tol = REL_TOL * (real.sq[i][:, None] + fake.sq[j][None, :])
            # real balls: every pair decided (density counts them all)
            diff = d2 - rr32[i][:, None]
            inside = diff <= -tol
            ii, jj = torch.nonzero(diff.abs() <= tol, as_tuple=True)
            if len(ii):
                ex = real.exact_sq(ii.cpu().numpy() + i.start, fake, jj.cpu().numpy() + j.start)
                inside[ii, jj] = ex.to(dev) <= r_real[i][ii]
            count[j] += inside.sum(dim=0)
            covered[i] |= inside.any(dim=1)
            # fake balls: a real point needs one
            diff = d2 - rf32[j][None, :]
            hit = (diff <= -tol).any(dim=1)
            unsure = (diff.abs() <= tol) & ~hit[:, None]
            ii, jj = torch.nonzero(unsure, as_tuple=True)
            if len(ii):
                ex = real.exact_sq(ii.cpu().numpy() + i.start, fake, jj.cpu().numpy() + j.start)
                ok = ex.to(dev) <= r_fake[j][jj]
                hit[ii[ok]] = True
            rec[i] |= hit
    return _Hits(count, covered, rec)


def _block_size(block: int | None) -> int:
    if block is None:
        return DEFAULT_BLOCK
    if int(block) < 1:
        raise ValueError(f"block (chunk size) must be >= 1, got {block}")
    return int(block)


def kth_neighbour_radii(features, k: int = 5, block: int | None = None, device: str = "cpu") -> np.ndarray:
    """Distance of every row to its k-th nearest neighbour in the same set (itself excluded)."""
    k = check_int(k, "k", 1)
    x = check_features(features, "features", min_rows=k + 1)
    s = _Set.make(x, x.mean(axis=0, dtype=np.float64), torch.device(device))
    with exact_float32():
        return torch.sqrt(_radii_sq(s, k, _block_size(block))).cpu().numpy()


def precision_recall(real, fake, k: int = 5, block: int | None = None, device: str = "cpu") -> tuple[float, float]:
    """Improved precision and recall of ``fake`` against ``real`` feature sets (rows are samples), k = 5 as in
    the paper. Returns ``(precision, recall)``."""
    return ReferenceSet(real, k=k, block=block, device=device, with_fid=False).precision_recall(fake)


@dataclass
class ReferenceSet:
    """A held-out real feature set prepared once and reused for every generation: its Gaussian statistics and
    a factor of Σ (for FID) and its k-NN radii (for precision and recall)."""

    features: np.ndarray
    k: int = 5
    block: int | None = None
    device: str = "cpu"
    with_fid: bool = True
    digest: str = field(init=False)
    _subsets: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:

        self.k = check_int(self.k, "k", 1)
        self.features = check_features(self.features, "real", min_rows=self.k + 1)
        self._block = _block_size(self.block)
        self._center = self.features.mean(axis=0, dtype=np.float64)  # no float64 copy of a large set
        if self.with_fid:
            self.mu, self.sigma = gaussian_stats(self.features)
            self._factor = psd_factor(self.sigma)
        self._set = _Set.make(self.features, self._center, torch.device(self.device))
        with exact_float32():
            self._radii = _radii_sq(self._set, self.k, self._block)
        h = hashlib.sha256(memoryview(np.ascontiguousarray(self.features, dtype=np.float32)).cast("B"))
        self.digest = h.hexdigest()[:16]

    def key(self) -> dict:
        return {"reference": self.digest, "n": int(self.features.shape[0]), "k": self.k}

    def subset(self, n: int) -> ReferenceSet:
        """A reference of ``n`` of these points for precision and recall on equal set sizes: the first ``n`` of one
        fixed random order of the points (seed 0), the same for every loop, seed and generation; the whole set when
        ``n`` is not smaller. k-NN precision and recall depend on both set sizes (a k-th neighbour radius shrinks
        as its set grows), and Kynkäänniemi et al. compare sets of equal size; an evaluation with fewer real than
        fake points compares the first ``len(reference)`` fakes instead (:meth:`prdc_equal`)."""
        n = check_int(n, "n", self.k + 1)
        if n >= len(self.features):
            return self
        if n not in self._subsets:
            order = np.random.default_rng(0).permutation(len(self.features))[:n]
            self._subsets[n] = ReferenceSet(
                self.features[np.sort(order)], k=self.k, block=self.block, device=self.device, with_fid=False
            )
        return self._subsets[n]

    def prdc_equal(self, fake) -> dict[str, float]:
        """:meth:`prdc` on equal set sizes: m = min(len(fake), len(reference)) fakes (the first m; a generation's
        samples come in random order) against :meth:`subset` (m)."""
        f = check_features(fake, "fake", dim=self.features.shape[1], min_rows=self.k + 1)
        m = min(len(f), len(self.features))
        return self.subset(m).prdc(f[:m])

    @property
    def radii(self) -> np.ndarray:
        return torch.sqrt(self._radii).cpu().numpy()

    def fid(self, fake) -> float:

        if not self.with_fid:
            raise ValueError("this ReferenceSet was made with with_fid=False")
        f = check_features(fake, "fake", dim=self.features.shape[1])
        mu, sigma = gaussian_stats(f)
        return float(w2_squared(mu, sigma, self.mu, self.sigma, factor2=self._factor))

    def precision_recall(self, fake) -> tuple[float, float]:
        m = self.prdc(fake)
        return m["precision"], m["recall"]

    def prdc(self, fake) -> dict[str, float]:
        """Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of
        ``fake``, from one pass over the distances with the same k. Density = the mean number of real k-NN balls
        that contain a fake sample, divided by k (can exceed 1; about 1 for two samples of one distribution);
        coverage = the share of real points whose own ball contains some fake sample (it does not reward fakes
        crowded into a few dense regions, as precision can)."""
        f = check_features(fake, "fake", dim=self.features.shape[1], min_rows=self.k + 1)
        fs = _Set.make(f, self._center, self._set.x32.device)
        with exact_float32():
            r_fake = _radii_sq(fs, self.k, self._block)
            hits = _coverage(self._set, fs, self._radii, r_fake, self._block)
        return {
            "precision": float((hits.count > 0).double().mean()),
            "recall": float(hits.recall.double().mean()),
            "density": float(hits.count.double().mean() / self.k),
            "coverage": float(hits.covered.double().mean()),
        }

    def covering_radii(self, fake, block: int = 512) -> np.ndarray:
        """For each fake point, the smallest k-NN radius among the real points whose ball contains it, or ``inf``
        when no ball does (the point does not count for precision; ``np.isfinite(...).mean()`` is the precision).
        It shows which real points make a generation look precise: atypical real points have large balls.
        Distances in float64, the same ``<=`` convention as :meth:`precision_recall`."""
        f = check_features(fake, "fake", dim=self.features.shape[1])
        real = torch.from_numpy(np.asarray(self.features, dtype=np.float64))
        radii_sq = self._radii.detach().cpu().double()
        out = []
        for s in range(0, len(f), block):
            d2 = torch.cdist(torch.from_numpy(np.asarray(f[s : s + block], dtype=np.float64)), real).square()
            inside = d2 <= radii_sq[None]
            out.append(torch.where(inside, radii_sq[None], torch.inf).amin(dim=1).sqrt())
        return torch.cat(out).numpy() if out else np.zeros(0)

    def fid_se(self, fake, resamples: int = 10, seed: int = 0) -> float:
        """Bootstrap standard error of :meth:`fid` over the fake samples (rows drawn with replacement,
        ``resamples`` times): the measurement noise of one FID that the claims floor their intervals with."""
        f = check_features(fake, "fake", dim=self.features.shape[1])
        rng = np.random.default_rng(seed)
        values = [self.fid(f[rng.integers(0, len(f), len(f))]) for _ in range(check_int(resamples, "resamples", 2))]
        return float(np.std(values, ddof=1))

    def evaluate(self, fake, fid_resamples: int = 0) -> dict[str, float]:
        """FID, precision, recall, density and coverage of a fake feature set against this reference (and, with
        ``fid_resamples``, the bootstrap standard error of the FID as ``fid_se``)."""
        out = {"fid": self.fid(fake)} | self.prdc(fake)
        if fid_resamples:
            out["fid_se"] = self.fid_se(fake, fid_resamples)
        return out
