"""dlm_core: a diffusion language-model engine (torch). Knows nothing of audio or agents.

from dlm_core import DecodeOptions, DiffusionEngine, SamplerConfig
engine = DiffusionEngine.from_pretrained("path/to/model")
engine.warmup()
reply = engine.generate([{"role": "user", "content": "Hello!"}], DecodeOptions(max_tokens=48, steps=8))
"""

from .ar import ar_generate
from .config import ModelConfig
from .constraints import Constraints, banned_token_ids, infill, prefix
from .engine import BlockResult, DecodeOptions, DiffusionEngine, GenerationResult
from .errors import DLMError, GenerationError, ModelLoadError, ShapeError
from .loader import LoadedModel, load_model, save_quickturn_model
from .sampling import SamplerConfig
from .tools import Tool, ToolCall, ToolCaller, ToolCallError, ToolSchemaError, tools_sentence, with_tools

__all__ = [
    "BlockResult",
    "Constraints",
    "DLMError",
    "DecodeOptions",
    "DiffusionEngine",
    "GenerationError",
    "GenerationResult",
    "LoadedModel",
    "ModelConfig",
    "ModelLoadError",
    "SamplerConfig",
    "ShapeError",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolCaller",
    "ToolSchemaError",
    "ar_generate",
    "banned_token_ids",
    "infill",
    "load_model",
    "prefix",
    "save_quickturn_model",
    "tools_sentence",
    "with_tools",
]
