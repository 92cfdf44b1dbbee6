"""Unit tests of the Python emitter: they import the package from this source tree (installed or not)
and need nothing beyond the standard library and pytest."""

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PACKAGE_ROOT))
