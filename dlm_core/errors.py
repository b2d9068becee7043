"""Errors raised by dlm_core. Each names the problem and, where possible, the fix."""


class DLMError(Exception):
    """Base class for dlm_core errors."""


class ModelLoadError(DLMError):
    """A model folder is missing, incomplete, corrupt, or of an unknown family."""


class ShapeError(DLMError):
    """Weights or inputs have the wrong shape for the configured model."""


class GenerationError(DLMError):
    """A generation request cannot be served (prompt too long, bad step count, ...)."""
