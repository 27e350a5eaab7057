"""Exact tree SHAP for many rows: LightGBM's own values, tabulated per tree and looked up.

Path-dependent tree SHAP (what ``pred_contrib=True`` computes) is additive over trees, and a tree's
SHAP values for a row depend only on which side of each of the tree's splits the row falls.  A
tree that splits feature f at thresholds t₁ < … < t_k cuts f into k + 1 intervals (plus "missing"
where a split sends missing values its own way); a categorical split cuts the levels by membership
of the split's level set.  The cells of a tree are the combinations of its features' pieces; every
row in a cell has the same SHAP values for that tree.

So, once per model, for every group of trees that use the same features:

1. the group's cells are enumerated, one representative row per cell (a value inside each
   interval: the upper threshold itself, just above the last one, NaN, a level of each membership
   pattern);
2. LightGBM computes the SHAP values of those rows for each tree of the group
   (``pred_contrib=True, start_iteration=t, num_iteration=1``) and they are summed into a table
   cells × features.

Scoring then bins each feature once against all of the model's thresholds for it
(``numpy.searchsorted``), maps the bins to each group's pieces, and adds the table rows: a few
vector operations per group, no tree walks.  The result equals ``pred_contrib`` to floating-point
rounding (tested).  Models whose trees are too large to tabulate (more than :data:`MAX_CELLS`
cells in total) fall back to ``pred_contrib``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Rows scored together: small enough that the per-chunk arrays stay in the processor's cache.
CHUNK = 32_768
#: LightGBM reads dense values with |x| ≤ this (kZeroThreshold, 1e-35 as a float32) as zero.
ZERO = float(np.float32(1e-35))
#: Tables with more entries than this are rebuilt when needed rather than written to the model folder.
SAVE_MAX_ENTRIES = 1_000_000
#: The tables in a model folder (numpy arrays, no pickles), so scoring need not rebuild them.
TABLES_FILE = "shap_tables.npz"

#: Cells per group table; a group of trees whose union of pieces exceeds it is split.
GROUP_CELLS = 4_096
#: A tree may join a group that lacks this many of its features (the group grows by them).
EXTRA_FEATURES = 1
#: All tables together (cells × trees evaluated to build them) — beyond this, use pred_contrib.
MAX_CELLS = 4_000_000


@dataclass
class _Piece:
    """How one tree (or group) cuts one feature."""

    feature: int
    categorical: bool
    thresholds: np.ndarray  # numeric: sorted thresholds of the group
    nan_own: bool  # numeric: some split sends NaN its own (default) way
    sets: list[frozenset[int]]  # categorical: level sets of the group's splits

    def merged(self, other: _Piece) -> _Piece:
        return _Piece(
            self.feature,
            self.categorical,
            np.union1d(self.thresholds, other.thresholds),
            self.nan_own or other.nan_own,
            self.sets + [s for s in other.sets if s not in self.sets],
        )


@dataclass
class _Group:
    features: np.ndarray  # feature indices, in table column order
    maps: list[np.ndarray]  # per feature: global bin → local piece
    strides: np.ndarray
    table: np.ndarray  # (len(features), cells): one contiguous row per feature


def _parse_tree(node: dict[str, Any], pieces: dict[int, _Piece]) -> bool:
    """Collect a tree's pieces; False when the tree uses a decision we do not tabulate."""
    if "split_feature" not in node:
        return True
    f = int(node["split_feature"])
    missing = node.get("missing_type", "None")
    if missing == "Zero":
        return False
    if node.get("decision_type") == "==":
        levels = frozenset(int(v) for v in str(node["threshold"]).split("||") if v != "")
        piece = _Piece(f, True, np.empty(0), True, [levels])
    else:
        piece = _Piece(f, False, np.array([float(node["threshold"])]), missing == "NaN", [])
    pieces[f] = pieces[f].merged(piece) if f in pieces else piece
    return _parse_tree(node["left_child"], pieces) and _parse_tree(node["right_child"], pieces)


class ShapTables:
    """The tabulated SHAP values of a LightGBM booster (see the module docstring)."""

    def __init__(
        self, booster: Any, n_features: int, categorical_levels: dict[int, int], *, build: bool = True
    ) -> None:
        self.booster = booster
        self.p = n_features
        self.levels = categorical_levels  # categorical feature → number of codes (0 … K − 1)
        self.ok = False
        self.groups: list[_Group] = []
        self.base = 0.0
        self.thresholds: list[np.ndarray] = [np.empty(0) for _ in range(n_features)]
        if build:
            self._build()

    # -- persistence ---------------------------------------------------------------------
    @property
    def entries(self) -> int:
        return int(sum(g.table.size for g in self.groups))

    def save(self, path: str | Path, *, model_id: str) -> None:
        """Write the tables as plain numpy arrays (``numpy.savez``; loaded with pickles disallowed)."""
        head = {
            "model_id": model_id,
            "p": self.p,
            "levels": {str(k): v for k, v in self.levels.items()},
            "base": self.base,
            "groups": [
                {
                    "features": g.features.tolist(),
                    "strides": g.strides.tolist(),
                    "maps": [len(m) for m in g.maps],
                    "cells": int(g.table.shape[1]),
                }
                for g in self.groups
            ],
            "thresholds": [len(t) for t in self.thresholds],
        }
        arrays = {
            "head": np.array(json.dumps(head)),
            "thresholds": np.concatenate([np.asarray(t, dtype=np.float64) for t in self.thresholds] or [np.empty(0)]),
            "maps": np.concatenate([m for g in self.groups for m in g.maps] or [np.empty(0, np.int64)]),
            "tables": np.concatenate([g.table.ravel() for g in self.groups] or [np.empty(0)]),
        }
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, booster: Any, *, model_id: str) -> ShapTables | None:
        """The tables saved for ``model_id``, or ``None`` (no file, another model's, unreadable)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                head = json.loads(str(data["head"]))
                if head.get("model_id") != model_id:
                    return None
                thresholds, maps, tables = data["thresholds"], data["maps"], data["tables"]
        except (OSError, ValueError, KeyError):
            return None
        out = cls(booster, int(head["p"]), {int(k): int(v) for k, v in head["levels"].items()}, build=False)
        cuts = np.cumsum([0, *head["thresholds"]])
        out.thresholds = [thresholds[cuts[i] : cuts[i + 1]] for i in range(out.p)]
        m_at = t_at = 0
        for g in head["groups"]:
            feats = np.array(g["features"], dtype=np.int64)
            group_maps = []
            for size in g["maps"]:
                group_maps.append(maps[m_at : m_at + size].astype(np.int64))
                m_at += size
            cells = int(g["cells"])
            size = len(feats) * cells
            table = tables[t_at : t_at + size].reshape(len(feats), cells)
            t_at += size
            out.groups.append(_Group(feats, group_maps, np.array(g["strides"], dtype=np.int64), table))
        out.base = float(head["base"])
        out.ok = True
        return out

    # -- building ------------------------------------------------------------------------
    def _build(self) -> None:
        dump = self.booster.dump_model()
        trees: list[dict[int, _Piece]] = []
        for info in dump["tree_info"]:
            pieces: dict[int, _Piece] = {}
            if not _parse_tree(info["tree_structure"], pieces):
                return
            trees.append(pieces)
        for pieces in trees:
            for f, piece in pieces.items():
                if piece.categorical != (f in self.levels):
                    return  # a numeric split on a categorical feature or the reverse: not ours to guess
                if not piece.categorical:
                    self.thresholds[f] = np.union1d(self.thresholds[f], piece.thresholds)
        # building costs one single-tree SHAP evaluation per cell of each tree
        if sum(self._cells(pieces) for pieces in trees) > MAX_CELLS:
            return
        # groups: each tree joins a group whose features include its own while the group's table
        # stays small (bigger trees first, so smaller ones find a home); fewer groups, faster scoring
        plans: list[tuple[dict[int, _Piece], list[int]]] = []
        for t in sorted(range(len(trees)), key=lambda t: -len(trees[t])):
            own = trees[t]
            if not own:
                continue  # a tree without splits: only the base value
            best: tuple[int, int, dict[int, _Piece]] | None = None
            for i, (pieces, _) in enumerate(plans):
                if len(set(own) - set(pieces)) > EXTRA_FEATURES:
                    continue
                merged = {f: (pieces[f].merged(own[f]) if f in own else pieces[f]) for f in pieces}
                merged.update({f: own[f] for f in own if f not in pieces})
                cells = self._cells(merged)
                if cells <= GROUP_CELLS and (best is None or cells < best[0]):
                    best = (cells, i, merged)
            if best is None:
                plans.append((dict(own), [t]))
            else:
                plans[best[1]] = (best[2], [*plans[best[1]][1], t])
        for pieces, members in plans:
            self.groups.append(self._tabulate(pieces, [(t, trees[t]) for t in members]))
        probe = np.zeros((1, self.p))
        self.base = float(self.booster.predict(probe, pred_contrib=True)[0, -1])
        self.ok = True

    def _local(self, piece: _Piece) -> tuple[np.ndarray, np.ndarray]:
        """(global bin → local piece map, representative value of each local piece)."""
        f = piece.feature
        if piece.categorical:
            k = self.levels[f]
            codes = np.arange(k)
            bits = np.array([[c in s for s in piece.sets] for c in range(k)], dtype=np.int64).reshape(k, -1)
            sig = bits @ (1 << np.arange(bits.shape[1], dtype=np.int64)) if bits.shape[1] else np.zeros(k, np.int64)
            uniq, first, inverse = np.unique(sig, return_index=True, return_inverse=True)
            reps = np.r_[codes[first].astype(np.float64), np.nan]
            mapping = np.r_[inverse, len(uniq)]  # the last global bin is "missing"
            return mapping.astype(np.int64), reps
        glob = self.thresholds[f]
        local = piece.thresholds
        mapping = np.empty(glob.size + 2, dtype=np.int64)
        mapping[0] = 0
        mapping[1 : glob.size + 1] = np.searchsorted(local, glob, side="right")
        # a value strictly inside each interval (LightGBM reads |x| ≤ 1e-35 as 0, so never a threshold)
        inner = (local[:-1] + local[1:]) / 2
        reps = np.r_[local[0] - max(1.0, abs(local[0])), inner, local[-1] + max(1.0, abs(local[-1]))]
        if piece.nan_own:
            mapping[-1] = local.size + 1
            reps = np.r_[reps, np.nan]
        else:  # LightGBM reads missing as 0.0 at splits without their own missing direction
            mapping[-1] = int(np.searchsorted(local, 0.0, side="left"))
        return mapping, reps

    def _cells(self, pieces: dict[int, _Piece]) -> int:
        total = 1
        for piece in pieces.values():
            if piece.categorical:
                patterns = {tuple(c in s for s in piece.sets) for c in range(self.levels[piece.feature])}
                total *= len(patterns) + 1
            else:
                total *= piece.thresholds.size + 1 + int(piece.nan_own)
        return total

    def _piece_of(self, piece: _Piece, values: np.ndarray) -> np.ndarray:
        """The piece of ``piece``'s feature that each raw value falls in (the order of :meth:`_local`)."""
        nan = np.isnan(values)
        if piece.categorical:
            mapping, _ = self._local(piece)
            k = self.levels[piece.feature]
            codes = np.where(nan, k, np.nan_to_num(values)).astype(np.int64)
            return mapping[np.clip(codes, 0, k)]
        local = piece.thresholds
        out = np.searchsorted(local, np.where(np.abs(values) <= ZERO, 0.0, values), side="left").astype(np.int64)
        out[nan] = local.size + 1 if piece.nan_own else int(np.searchsorted(local, 0.0, side="left"))
        return out

    def _grid(self, feats: list[int], reps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(one row per cell, each cell's piece per feature (cells × features), strides)."""
        sizes = np.array([len(r) for r in reps], dtype=np.int64)
        strides = np.ones(len(feats), dtype=np.int64)
        for i in range(len(feats) - 2, -1, -1):
            strides[i] = strides[i + 1] * sizes[i + 1]
        cells = int(np.prod(sizes))
        idx = np.arange(cells)
        pieces = np.stack([(idx // strides[i]) % sizes[i] for i in range(len(feats))], axis=1)
        grid = np.zeros((cells, self.p))
        for i, f in enumerate(feats):
            grid[:, f] = reps[i][pieces[:, i]]
        return grid, pieces, strides

    def _tabulate(self, pieces: dict[int, _Piece], members: list[tuple[int, dict[int, _Piece]]]) -> _Group:
        """The group's table: each tree evaluated on its own cells, then added to the group's cells."""
        feats = sorted(pieces)
        maps, reps = zip(*(self._local(pieces[f]) for f in feats), strict=True)
        grid, _, strides = self._grid(feats, reps)
        table = np.zeros((len(feats), grid.shape[0]))
        column = {f: i for i, f in enumerate(feats)}
        for t, own in members:
            tfeats = sorted(own)
            _, treps = zip(*(self._local(own[f]) for f in tfeats), strict=True)
            tgrid, _, tstrides = self._grid(tfeats, treps)
            contrib = self.booster.predict(tgrid, pred_contrib=True, start_iteration=t, num_iteration=1, num_threads=1)
            # the tree's cell of each group cell: its piece of the group cell's representative values
            tcell = np.zeros(grid.shape[0], dtype=np.int64)
            for j, f in enumerate(tfeats):
                tcell += self._piece_of(own[f], grid[:, f]) * tstrides[j]
            for f in tfeats:
                table[column[f]] += contrib[tcell, f]
        return _Group(np.array(feats), list(maps), strides, np.ascontiguousarray(table))

    # -- scoring -------------------------------------------------------------------------
    def global_bins(self, X: np.ndarray) -> list[np.ndarray | None]:
        """Per feature: each row's bin among all the model's thresholds (the last bin = missing)."""
        out: list[np.ndarray | None] = []
        for f in range(self.p):
            x = X[:, f]
            nan = np.isnan(x)
            if f in self.levels:
                k = self.levels[f]
                b = np.where(nan | (x < 0) | (x >= k), k, np.nan_to_num(x)).astype(np.int32)
            elif self.thresholds[f].size:
                t = self.thresholds[f]
                b = np.searchsorted(t, np.where(np.abs(x) <= ZERO, 0.0, x), side="left").astype(np.int32)
                b[nan] = t.size + 1
            else:
                b = None
            out.append(b)
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(rows × (features + 1)) SHAP values; the last column is the base value.

        Rows go in chunks small enough for the processor's cache; per group of trees a row's cell
        is Σ piece(feature) · stride (strides folded into the piece maps), then each feature's
        table row is gathered at the cells and added.
        """
        n = X.shape[0]
        out = np.zeros((self.p + 1, n))
        scaled = [[(m * s).astype(np.int32) for m, s in zip(g.maps, g.strides, strict=True)] for g in self.groups]
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            bins = self.global_bins(X[lo:hi])
            part = out[:, lo:hi]
            cell = np.empty(hi - lo, dtype=np.int32)
            tmp = np.empty(hi - lo, dtype=np.int32)
            val = np.empty(hi - lo)
            for g, maps in zip(self.groups, scaled, strict=True):
                feats = g.features
                np.take(maps[0], bins[feats[0]], out=cell)
                for i in range(1, len(feats)):
                    np.take(maps[i], bins[feats[i]], out=tmp)
                    cell += tmp
                for i, f in enumerate(feats):
                    np.take(g.table[i], cell, out=val)
                    part[f] += val
        out[self.p] = self.base
        return out.T
