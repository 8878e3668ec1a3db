"""Weighted placement of new process instances over clusters (smooth weighted round robin).

Smooth weighted round robin (the nginx upstream algorithm): each pick adds every candidate's
weight to its running score, chooses the highest score and subtracts the total from it. Over
any window the picks follow the weights exactly (weights 3:1 give a a b a a a b a ...), spread
out rather than in bursts, and it is deterministic, which keeps tests and the bench repeatable.
Scores are kept per cluster id, so a candidate list that changes (a cluster goes down, is
drained, comes back) just changes who takes part in the next pick.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from routing.clusters import Cluster


class SmoothWeightedRoundRobin:
    def __init__(self) -> None:
        self._scores: dict[int, int] = {}
        self._lock = threading.Lock()

    def pick(self, candidates: Sequence[Cluster]) -> Cluster | None:
        """Choose one candidate (weight > 0), or None if there is none."""
        weighted = [c for c in candidates if c.weight > 0]
        if not weighted:
            return None
        with self._lock:
            total = 0
            best: Cluster | None = None
            for cluster in weighted:
                score = self._scores.get(cluster.id, 0) + cluster.weight
                self._scores[cluster.id] = score
                total += cluster.weight
                if best is None or score > self._scores[best.id]:
                    best = cluster
            assert best is not None
            self._scores[best.id] -= total
            # Forget clusters that left the candidate list so a returning one starts fresh. Every
            # candidate has a score now, so there is such a cluster only if there are more scores.
            if len(self._scores) > len(weighted):
                present = {c.id for c in weighted}
                for cluster_id in [k for k in self._scores if k not in present]:
                    del self._scores[cluster_id]
            return best

    def order(self, candidates: Sequence[Cluster]) -> list[Cluster]:
        """The pick first, then the others by descending weight: the retry order."""
        first = self.pick(candidates)
        if first is None:
            return []
        if len(candidates) == 1:
            return [first]
        rest = sorted(
            (c for c in candidates if c.id != first.id and c.weight > 0),
            key=lambda c: (-c.weight, c.id),
        )
        return [first, *rest]
