"""Tooling around training and test runs: dataset generators and data baselines.

This sub-package is tooling around training/test runs (it writes datasets, fits reference
baselines on them, feeds the command-line tools under ``tools/``); nothing in it is registered in an
mmengine/mmseg registry, and nothing in it runs inside a run. It must therefore not be imported by the
registration imports of ``anomseg_plugins/__init__.py``: importing ``anomseg_plugins`` (what configs do
through ``custom_imports``) stays free of it, and callers import ``anomseg_plugins.tooling.<module>``
explicitly.
"""
