"""SignUp_Sync's benchmark suite: ``python -m bench`` (see BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's package (not an installed copy) and tests/fakes, for us and our children.
for path in (str(ROOT), str(ROOT / "src")):
    if path not in sys.path:
        sys.path.insert(0, path)
