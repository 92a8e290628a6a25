"""Errors users see: each names the file, the line or row, and the problem, never a deep traceback."""

from __future__ import annotations

from pathlib import Path

USER_ERROR = 2  # the CLI's exit status for an Ms2ImgError or an OSError: the command refused, a rerun refuses again


class Ms2ImgError(Exception):
    """Base class for every error ms2img reports to a user (the CLI prints it and exits non-zero)."""


class InputFileError(Ms2ImgError, ValueError):
    """A file a user gave us cannot be read as what it claims to be.

    The message always starts with ``<file>`` and, when known, ``line <n>`` so it can be found in an editor.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None, column: str | None = None):
        self.path = str(path)
        self.line = line
        self.column = column
        self.problem = problem
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")


class ValidationFailed(Ms2ImgError):
    """Great Expectations found problems in the data; the report says which file, row and expectation."""


class ConfigError(Ms2ImgError, ValueError):
    """A parameter or argument is invalid (unknown assay, bad size string, too few samples, ...)."""
