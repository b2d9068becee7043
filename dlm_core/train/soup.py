"""A uniform "model soup": the parameter-by-parameter mean of model folders of one architecture.

Runs that differ only in their seed land in different places; their mean is usually at least as
good as a typical one and varies less than any single run, so shipping the soup of every seed is
not picking the best seed on the test set.

    python -m dlm_core.train.soup --out runs/soup runs/a runs/b runs/c
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..loader import load_model, save_quickturn_model
from ..model import Transformer
from .data import DataError


def soup(folders: Sequence[str | Path]) -> Transformer:
    """The mean of the folders' weights (averaged in float32), as a model of their architecture."""
    if not folders:
        raise DataError("a soup needs at least one model folder")
    first = load_model(folders[0])
    total = {k: v.float().clone() for k, v in first.model.state_dict().items()}
    for folder in folders[1:]:
        other = load_model(folder)
        if other.model.cfg != first.model.cfg:
            raise DataError(f"{folder} is not the same architecture as {folders[0]}: cannot average them")
        for k, v in other.model.state_dict().items():
            total[k] += v.float()
    model = Transformer(first.model.cfg)
    model.load_state_dict({k: v / len(folders) for k, v in total.items()})
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dlm_core.train.soup", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "folders", nargs="+", help="model folders (config.json, model.safetensors, tokenizer.json)"
    )
    ap.add_argument("--out", required=True, help="folder to write the soup to (tokenizer from the first)")
    args = ap.parse_args(argv)
    try:
        with torch.no_grad():
            model = soup(args.folders)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_quickturn_model(model, Path(args.folders[0]) / "tokenizer.json", args.out)
    print(f"soup of {len(args.folders)} → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
