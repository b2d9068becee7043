"""Load a diffusion LM from a local folder: config.json + *.safetensors (+ index) + tokenizer.json.

No hub access and no remote code. The family is detected from config.json (or forced), its weight
names are mapped onto the native ``Transformer``, and every mismatch is reported with its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ModelConfig
from .errors import ModelLoadError, ShapeError
from .families import FamilySpec, detect_family, native_names
from .model import Transformer
from .tokenizer import ChatTokenizer


@dataclass
class LoadedModel:
    model: Transformer
    tokenizer: ChatTokenizer
    config: ModelConfig
    family: FamilySpec
    path: Path


def read_config_json(folder: Path) -> dict:
    path = folder / "config.json"
    if not folder.is_dir():
        raise ModelLoadError(f"model folder not found: {folder}")
    if not path.is_file():
        raise ModelLoadError(
            f"{folder} has no config.json (expected config.json + *.safetensors + tokenizer.json)"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from exc


def _weight_files(folder: Path) -> dict[str, Path]:
    """Checkpoint tensor name -> the safetensors file that holds it."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise ModelLoadError(f"{index} is not a valid safetensors index: {exc}") from exc
        missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
        if missing:
            raise ModelLoadError(f"{folder}: shards named in the index are missing: {missing}")
        return {name: folder / f for name, f in weight_map.items()}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{folder} has no *.safetensors weights")
    out: dict[str, Path] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as sf:
                out.update(dict.fromkeys(sf.keys(), f))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"cannot read {f} (corrupt or truncated safetensors?): {exc}") from exc
    return out


def load_model(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    family: str | None = None,
) -> LoadedModel:
    folder = Path(path)
    cfg_json = read_config_json(folder)
    spec = detect_family(cfg_json, family)
    # The tokenizer comes first: families look special ids up by token string when config.json lacks them.
    tokenizer = ChatTokenizer.from_file(folder / "tokenizer.json", spec)
    try:
        cfg = spec.to_config(cfg_json, tokenizer.tokenizer.token_to_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{folder}/config.json does not fit the {spec.name!r} family: {exc}") from exc

    model = Transformer.empty(cfg, device=device, dtype=dtype)

    names = spec.weight_names(cfg)
    files = _weight_files(folder)
    missing = [src for src in names.values() if src not in files]
    if missing:
        raise ModelLoadError(
            f"{folder} is missing {len(missing)} weight(s) of the {spec.name!r} layout, e.g. {missing[:3]}"
        )
    params = dict(model.named_parameters())
    handles: dict[Path, object] = {}
    try:
        for native, src in names.items():
            f = files[src]
            if f not in handles:
                try:
                    handles[f] = safe_open(str(f), framework="pt", device="cpu")
                except (SafetensorError, OSError) as exc:
                    raise ModelLoadError(
                        f"cannot read {f} (corrupt or truncated safetensors?): {exc}"
                    ) from exc
            tensor = handles[f].get_tensor(src)
            target = params[native]
            if tuple(tensor.shape) != tuple(target.shape):
                raise ShapeError(
                    f"weight {src} has shape {tuple(tensor.shape)}, expected {tuple(target.shape)} "
                    f"for config {folder / 'config.json'}"
                )
            with torch.no_grad():
                target.copy_(tensor.to(dtype))
    except SafetensorError as exc:
        raise ModelLoadError(f"cannot read weights from {folder}: {exc}") from exc
    finally:
        handles.clear()
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, config=cfg, family=spec, path=folder)


def save_quickturn_model(
    model: Transformer, tokenizer_json: str | Path, folder: str | Path, dtype: torch.dtype = torch.float16
) -> Path:
    """Write our own format: config.json (model_type quickturn) + model.safetensors + tokenizer.json.

    Weights are stored in float16 by default (half the size; the loader casts to the run dtype).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg_json = {"model_type": "quickturn", **model.cfg.to_dict()}
    (folder / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    params = dict(model.named_parameters())
    tensors = {n: params[n].detach().to("cpu", dtype).contiguous() for n in native_names(model.cfg)}
    save_file(tensors, str(folder / "model.safetensors"))
    src = Path(tokenizer_json)
    if src.resolve() != (folder / "tokenizer.json").resolve():
        (folder / "tokenizer.json").write_bytes(src.read_bytes())
    return folder
