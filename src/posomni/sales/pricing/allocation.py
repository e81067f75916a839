"""Splitting an amount of cents over lines so that the parts add up exactly."""

from __future__ import annotations

from collections.abc import Sequence


def allocate(total_cents: int, weights: Sequence[int]) -> list[int]:
    """Split `total_cents` in proportion to `weights` (largest-remainder method).

    Each share is first rounded down; the cents left over go one each to the largest remainders, and equal
    remainders go to the earlier weight, so the split is deterministic. When `total_cents` is at most
    `sum(weights)`, no share exceeds its weight: a discount spread this way never exceeds what it discounts.
    """
    if total_cents < 0 or any(weight < 0 for weight in weights):
        raise ValueError("allocate needs a non-negative total and non-negative weights")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total_cents == 0:
            return [0] * len(weights)
        raise ValueError("cannot allocate cents over zero weights")
    shares: list[int] = []
    remainders: list[tuple[int, int]] = []
    for index, weight in enumerate(weights):
        # Integer arithmetic: exact, whatever the size of the amounts.
        share, remainder = divmod(total_cents * weight, weight_sum)
        shares.append(share)
        remainders.append((-remainder, index))
    left_over = total_cents - sum(shares)
    for _, index in sorted(remainders)[:left_over]:
        shares[index] += 1
    return shares
