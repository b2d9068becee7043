"""The LM engine benchmark from a checkout: the same as ``quickturn bench`` (agent/bench.py).

python -m benchmarks.lm_bench --device cpu|cuda [--quick] [--json OUT] [--model PATH] [--real-size]
"""

from __future__ import annotations

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
