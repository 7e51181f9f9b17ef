"""Exceptions for bad user input, shared by every layer (imports nothing from the package).

The library raises :class:`InputError` (or a subclass) when what the *caller* gave is
wrong: a dataset spec or folder that does not match its layout, a missing file, a
configuration value out of range, a file that is not a checkpoint. The message names the
offending input and says what was expected. Any other exception is a failure of the
library or of the environment; the command line reports the two differently (exit code
2 for an :class:`InputError`, 1 for anything else).

:class:`InputError` subclasses :class:`ValueError`, and :class:`InputNotFoundError`
also subclasses :class:`FileNotFoundError`, so code that catches those keeps working.

Example:
    >>> from semparts_reid import InputError, build_dataset
    >>> try:
    ...     build_dataset("market1501:/no/such/folder")
    ... except InputError as err:
    ...     print(type(err).__name__)
    DatasetLayoutError
"""

from __future__ import annotations

__all__ = ["InputError", "InputNotFoundError"]


class InputError(ValueError):
    """The caller's input is wrong (the message names it and says what was expected)."""


class InputNotFoundError(FileNotFoundError, InputError):
    """A file or folder the caller named does not exist."""
