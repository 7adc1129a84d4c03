"""Fixtures shared by the metric tests: the records the current MMLogger handles (the metric logs through it)."""
import logging

import pytest
from mmengine.logging import MMLogger


class _Records(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logged():
    """``(message, level)`` of every record the current MMLogger handles during the test."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield lambda: [(r.getMessage(), r.levelno) for r in handler.records]
    logger.removeHandler(handler)
    logger.setLevel(old)
