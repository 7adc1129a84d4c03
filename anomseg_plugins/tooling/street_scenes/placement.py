"""The one placement loop of the generator: draw candidates, keep the accepted ones, give up after a budget.

Cars, pedestrians, poles, clutter and anomalies are all placed the same way: a proposal draws a
position (lane or sidewalk offset, depth biased towards the camera) and returns None when the
candidate must be rejected (outside the image, overlapping a car already placed, hiding an anomaly);
:func:`place` repeats it until enough candidates are accepted or the number of draws is spent. A
scene with no room simply gets fewer objects, never an endless loop.
"""
from typing import Callable, List, Optional, TypeVar

import numpy as np

T = TypeVar('T')


def place(propose: Callable[[], Optional[T]], count: int = 1, tries: int = 8) -> List[T]:
    """Accepted candidates of up to ``tries`` calls of ``propose``, stopping at ``count`` accepted.

    Args:
        propose: draws one candidate from the scene's generator; None rejects it.
        count: how many candidates are wanted.
        tries: how many proposals may be drawn in all (``tries == count``: one attempt per object).

    Returns:
        The accepted candidates in the order drawn (at most ``count``, possibly none).
    """
    accepted: List[T] = []
    for _ in range(int(tries)):
        if len(accepted) >= count:
            break
        candidate = propose()
        if candidate is not None:
            accepted.append(candidate)
    return accepted


def visible_depth(rng: np.random.Generator,
                  scene,
                  rel: float,
                  zlo: float,
                  zhi: float,
                  margin_m: float = 1.0,
                  tries: int = 8) -> Optional[float]:
    """A depth in ``[zlo, zhi]`` where road-relative lateral position ``rel`` is on screen, or None.

    Depths are biased towards the camera (``zlo + (zhi - zlo) u^1.5``), so that objects are mostly large
    enough to learn; a depth is accepted when the point ``margin_m`` beyond the object's centre still lies
    inside the image at ground level (the object's foot is visible).
    """

    def propose() -> Optional[float]:
        z = zlo + (zhi - zlo) * rng.random()**1.5
        x = float(scene.xc(z)) + rel
        return z if z >= scene.cam.min_visible_z(abs(x) + margin_m) else None

    found = place(propose, 1, tries)
    return found[0] if found else None
