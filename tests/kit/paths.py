"""Where the repository and the test data are, computed once for every test and benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
DATA_DIR: Final = ROOT / "tests" / "data"
