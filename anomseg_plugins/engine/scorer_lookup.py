"""Which anomaly scorers a run has, and which one a name means: the one lookup path of anomseg.

``AnomalyTestLoop`` fits the scorers of the test metrics (:func:`metric_scorers`), ``AnomalyPanelHook`` shows one
of them by name and ``tools/infer.py`` builds one by name with the settings the config's ``AnomalyMetric`` gives it
(:func:`config_scorers`); both resolve the name with :func:`resolve_scorer`.
"""
from typing import Any, List, Sequence, Union

from torch import nn

from anomseg_plugins.registry import ANOMALY_SCORERS

#: A scorer as a user names it: a name / registered type, or a config dict.
ScorerSpec = Union[str, dict]


def metric_scorers(evaluator: Any) -> List[nn.Module]:
    """The scorers of every metric of ``evaluator`` (an mmengine ``Evaluator``) with a ``scorers`` attribute
    (e.g. ``AnomalyMetric``), in order and without duplicates; ``[]`` for ``None`` or an evaluator without
    metrics."""
    found: List[nn.Module] = []
    for metric in getattr(evaluator, 'metrics', None) or []:
        for scorer in getattr(metric, 'scorers', None) or []:
            if not any(scorer is s for s in found):
                found.append(scorer)
    return found


def config_scorers(evaluator_cfg: Any) -> List[dict]:
    """The scorer configs listed by an evaluator config (``cfg.test_evaluator``: one metric config or a list of
    them; those without ``scorers`` are skipped), in order."""
    metrics = evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]
    return [dict(sc) for metric in metrics if isinstance(metric, dict) for sc in (metric.get('scorers') or [])]


def build_scorer(cfg: dict) -> nn.Module:
    """Build a scorer config with ``ANOMALY_SCORERS`` (in its own scope unless the config names one)."""
    return ANOMALY_SCORERS.build(dict(cfg, _scope_=cfg.get('_scope_', ANOMALY_SCORERS.scope)))


def _candidate_name(candidate: Union[nn.Module, dict]) -> str:
    if isinstance(candidate, dict):
        return candidate.get('name') or candidate.get('type')
    return getattr(candidate, 'name', type(candidate).__name__)


def _matches(candidate: Union[nn.Module, dict], name: str) -> bool:
    if isinstance(candidate, dict):  # a config is also found by its type (`--scorer SML` for a renamed SML)
        return name in (_candidate_name(candidate), candidate.get('type'))
    return getattr(candidate, 'name', None) == name


def resolve_scorer(spec: ScorerSpec, candidates: Sequence[Union[nn.Module, dict]], owner: str, fix: str) -> nn.Module:
    """The scorer ``spec`` means among ``candidates``, else built from ``ANOMALY_SCORERS``.

    Args:
        spec: a scorer name or registered type (str), or a config dict (named by its ``name``, else its ``type``).
        candidates: the run's scorers: built ones (``metric_scorers``; matched by ``name``; returned as they are,
            fitted state included) or configs (``config_scorers``; matched by name or type; built).
        owner: who asks, named first in the error message.
        fix: what the user changes when the name is unknown (e.g. the config key that sets it).

    Raises:
        KeyError: a str ``spec`` that is neither a candidate's name nor a registered scorer type.
    """
    name = spec if isinstance(spec, str) else spec.get('name', spec.get('type'))
    for candidate in candidates:
        if _matches(candidate, name):
            return build_scorer(candidate) if isinstance(candidate, dict) else candidate
    if isinstance(spec, str):
        if ANOMALY_SCORERS.get(spec) is None:
            raise KeyError(f'{owner}: scorer {spec!r} is neither a scorer of the test AnomalyMetric '
                           f'({[_candidate_name(c) for c in candidates]}) nor a type registered in ANOMALY_SCORERS '
                           f'({sorted(ANOMALY_SCORERS.module_dict)}); {fix}')
        spec = dict(type=spec)
    return build_scorer(spec)
