"""Label encodings of the road-anomaly benchmarks and the one mapping of a label map to ``gt_anomaly_map``.

Every benchmark stores its ground truth differently (RoadAnomaly21 / RoadObstacle21 / Fishyscapes: 0 / 1 / 255;
LostAndFound: 1 = free space, 2..200 = obstacle ids, 0 = unlabelled), while ``AnomalyMetric``, the test loop and
the panels read one map, ``gt_anomaly_map`` (uint8: 1 = anomaly, 0 = normal, 255 = void). An *encoding* says which
on-disk values are which::

    dict(normal=[1], anomaly=[[2, 200]], void=[0])   # LostAndFound

each category a list of values and inclusive ``[low, high]`` ranges (a bare int is one value). The datasets put
their encoding on every data_info (``anomaly_label_map``), so one transform
(:class:`~anomseg_plugins.datasets.transforms.LoadAnomalyAnnotations`) maps all four sets. A value in no category
is an error (the official evaluation code would silently call it void; a value the encoding does not name means a
wrong file or a wrong encoding).
"""
from typing import Any, Dict, Mapping, Tuple

import numpy as np

#: ``gt_anomaly_map`` values (as ``AnomalyMetric`` reads them).
NORMAL, ANOMALY, VOID = 0, 1, 255
#: Categories of an encoding and the ``gt_anomaly_map`` value each maps to.
CATEGORY_VALUES = dict(normal=NORMAL, anomaly=ANOMALY, void=VOID)

#: SegmentMeIfYouCan RoadAnomaly21 (``labels_masks/{fid}_labels_semantic.png``).
ROAD_ANOMALY21_ENCODING = dict(normal=[0], anomaly=[1], void=[255])
#: SegmentMeIfYouCan RoadObstacle21: 0 = road, 1 = obstacle on the road, 255 = everything off the road.
ROAD_OBSTACLE21_ENCODING = dict(normal=[0], anomaly=[1], void=[255])
#: LostAndFound ``gtCoarse_labelIds``: 0 = unlabelled, 1 = free space (road), 2..200 = obstacle classes.
LOST_AND_FOUND_ENCODING = dict(normal=[1], anomaly=[[2, 200]], void=[0])
#: Fishyscapes Lost & Found ``{fid}_fishy-labels.png``: 0 = in-distribution, 1 = anomaly, 255 = void.
FISHYSCAPES_LAF_ENCODING = dict(normal=[0], anomaly=[1], void=[255])

Ranges = Tuple[Tuple[int, int], ...]


def normalize_label_encoding(encoding: Mapping[str, Any], where: str = 'label encoding') -> Dict[str, Ranges]:
    """Check an encoding and return it as ``{category: ((low, high), ...)}`` (inclusive ranges).

    Args:
        encoding: ``normal`` and ``anomaly`` (required) and ``void`` (optional), each an int, or a list of ints and
            ``[low, high]`` pairs (inclusive).
        where: what the encoding belongs to, named in the errors.

    Raises:
        ValueError: an unknown or missing category, a value that is not a non-negative int, a range with
            ``low > high``, or a value in two categories; the message names ``where`` and the entry.
    """
    if not isinstance(encoding, Mapping):
        raise ValueError(f'{where}: expected a dict like dict(normal=[0], anomaly=[1], void=[255]), got {encoding!r}')
    unknown = set(encoding) - set(CATEGORY_VALUES)
    missing = {'normal', 'anomaly'} - set(encoding)
    if unknown or missing:
        raise ValueError(
            f'{where}: categories must be normal, anomaly (required) and void (optional); got '
            f'{sorted(encoding)} ({"unknown " + str(sorted(unknown)) if unknown else ""}'
            f'{"; " if unknown and missing else ""}{"missing " + str(sorted(missing)) if missing else ""})')
    out: Dict[str, Ranges] = {}
    for category in CATEGORY_VALUES:
        entries = encoding.get(category, [])
        if isinstance(entries, (int, np.integer)) and not isinstance(entries, bool):
            entries = [entries]
        if not isinstance(entries, (list, tuple)):
            raise ValueError(f'{where}: {category} = {entries!r}; expected a list of values and [low, high] ranges')
        ranges = []
        for entry in entries:
            pair = tuple(entry) if isinstance(entry, (list, tuple)) else (entry, entry)
            if (len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
                    or not 0 <= pair[0] <= pair[1]):
                raise ValueError(f'{where}: {category} entry {entry!r} is neither a value >= 0 nor an inclusive '
                                 f'[low, high] range with 0 <= low <= high')
            ranges.append((int(pair[0]), int(pair[1])))
        out[category] = tuple(ranges)
    for i, a in enumerate(CATEGORY_VALUES):
        for b in list(CATEGORY_VALUES)[i + 1:]:
            for lo1, hi1 in out[a]:
                for lo2, hi2 in out[b]:
                    if lo1 <= hi2 and lo2 <= hi1:
                        raise ValueError(f'{where}: values {max(lo1, lo2)}..{min(hi1, hi2)} are both {a} and {b}')
    return out


def describe_label_encoding(encoding: Mapping[str, Any]) -> str:
    """``'normal = 1, anomaly = 2..200, void = 0'``: an encoding as the error messages name it."""
    norm = normalize_label_encoding(encoding)
    parts = []
    for category, ranges in norm.items():
        if ranges:
            values = ', '.join(str(lo) if lo == hi else f'{lo}..{hi}' for lo, hi in ranges)
            parts.append(f'{category} = {values}')
    return ', '.join(parts)


def map_anomaly_labels(raw: np.ndarray,
                       encoding: Mapping[str, Any],
                       source: str = '<array>',
                       on_unknown: str = 'error') -> np.ndarray:
    """Map an on-disk label map to ``gt_anomaly_map`` by ``encoding``.

    Args:
        raw: ``(H, W)`` integer label map as stored.
        encoding: see :func:`normalize_label_encoding`.
        source: the file (and benchmark) named in the errors.
        on_unknown: ``'error'`` (a value in no category raises) or ``'void'`` (such values become 255, as the
            official evaluation code treats them).

    Returns:
        ``(H, W)`` uint8: 0 = normal, 1 = anomaly, 255 = void.

    Raises:
        ValueError: ``raw`` is not a single-channel integer map, or holds values in no category of the encoding
            (``on_unknown='error'``); the message names ``source``, the values, their pixel count and the encoding.
    """
    if on_unknown not in ('error', 'void'):
        raise ValueError(f"on_unknown must be 'error' or 'void', got {on_unknown!r}")
    norm = normalize_label_encoding(encoding, where=f'label encoding of {source}')
    expected = describe_label_encoding(norm)
    if raw.ndim != 2 or raw.dtype.kind not in 'ui':
        raise ValueError(f'label map {source} has shape {raw.shape} and dtype {raw.dtype}; expected a '
                         f'single-channel (H, W) integer label map ({expected}).')
    low = int(raw.min()) if raw.size else 0
    top = max([hi for ranges in norm.values() for _, hi in ranges] + [int(raw.max()) if raw.size else 0])
    lut = np.full(top + 1, -1, np.int16)
    for category, ranges in norm.items():
        for lo, hi in ranges:
            lut[lo:hi + 1] = CATEGORY_VALUES[category]
    if low < 0:  # signed maps: negative values are in no category
        bad_values = np.unique(raw[raw < 0])
        if on_unknown == 'error':
            raise ValueError(f'label map {source} holds value(s) {bad_values.tolist()[:10]} at '
                             f'{int((raw < 0).sum())} pixel(s) outside its encoding; expected {expected}.')
        raw = np.where(raw < 0, top + 1, raw)
        lut = np.append(lut, np.int16(-1))
    mapped = lut[raw]
    unknown = mapped < 0
    if unknown.any():
        if on_unknown == 'error':
            values = np.unique(raw[unknown])
            raise ValueError(f'label map {source} holds value(s) {values.tolist()[:10]}'
                             f'{" ..." if len(values) > 10 else ""} at {int(unknown.sum())} pixel(s) outside its '
                             f'encoding; expected {expected}.')
        mapped[unknown] = VOID
    return mapped.astype(np.uint8)
