import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixtures():
    """The folder of data written by others (REMS_FIXTURES): `.ci/run` points it at the shared fixtures."""
    folder = Path(os.environ["REMS_FIXTURES"])
    assert (folder / "spl").is_dir(), f"no spl/ in {folder}"
    return folder
