import os
import sys

import numpy as np
import pytest
from hypothesis import settings

# tests/_reference.py is imported as a plain module by the test files.
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
