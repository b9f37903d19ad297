"""Shared fixtures: the public-domain astronaut portrait prepared once per test session."""

import numpy as np
import pytest
from skimage import data

from openvasa.settings import OutputSettings


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="session")
def generator():
    from openvasa.pipeline import Generator

    return Generator(OutputSettings())


@pytest.fixture(scope="session")
def portrait(generator, astronaut):
    return generator.prepare_portrait(astronaut)


@pytest.fixture(scope="session")
def speech():
    from openvasa.audio import demo_speech

    return demo_speech()
