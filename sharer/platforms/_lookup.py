"""Reconciliation on a timeline: where a post with our text falls against the delivery's window.

Shared by the platforms that look for their post among the account's recent posts (Weibo, X). The
window starts when the delivery's first attempt began (``DeliveryContext.window_start``): no post of
ours is older, but the platform stamps posts with its own clock, in whole seconds on Weibo.
"""

from __future__ import annotations

from enum import Enum

from .base import CLOCK_SLACK

STAMP = 1.0  # platforms stamp whole seconds: a post made just after the window opened may read earlier


class Age(Enum):
    OURS = "ours"  # made since the first attempt began: this delivery's post
    NEAR = "near"  # just before it: ours on a platform clock that runs behind, or an identical earlier post
    EARLIER = "earlier"  # older still: an earlier identical post, not this delivery's


def age(at: float | None, window_start: float | None, duplicate: bool) -> Age:
    """Classify a matching post by its ``created_at`` (epoch s, None when unknown).

    After a "duplicate" answer the platform made nothing new for that request, so anything not
    clearly made since the first attempt (older, or of unknown age) is the post it already had.
    """
    if duplicate:
        return Age.OURS if at is not None and window_start is not None and at >= window_start else Age.EARLIER
    if window_start is None:
        return Age.OURS
    if at is None:
        return Age.NEAR
    if at >= window_start - STAMP:
        return Age.OURS
    return Age.NEAR if at >= window_start - CLOCK_SLACK else Age.EARLIER
