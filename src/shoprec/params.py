"""Checks for notebook parameters: a bad value fails at once, naming the parameter."""

import difflib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shoprec.errors import UsageError


class ParameterError(UsageError):
    """A parameter with a value outside what the notebook or command accepts."""


def closest(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the known name closest to `word`, or "" if none is close."""
    match = difflib.get_close_matches(word, [str(name) for name in known], n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Fail unless `value` is one of `allowed`, suggesting the closest allowed value."""
    allowed = list(allowed)
    if value not in allowed:
        hint = closest(value, map(str, allowed)) if isinstance(value, str) else ""
        raise ParameterError(
            f"parameter {name}={value!r} is not allowed; expected one of {allowed}{hint}"
        )


def check_positive_int(name: str, value: object) -> None:
    """Fail unless `value` is an integer greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected an integer > 0")


def check_positive_number(name: str, value: object, expected: str = "a number > 0") -> None:
    """Fail unless `value` is a number (not a bool) greater than zero; `expected` says what is
    accepted in the message."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected {expected}")


def check_k(k: object) -> None:
    """Fail unless the list length `k` is a positive integer (Python or NumPy, not a bool)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ParameterError(f"k must be a positive integer, got {k!r}")


def check_fraction(name: str, value: object) -> None:
    """Fail unless `value` is a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ParameterError(
            f"parameter {name}={value!r} is not allowed; expected a number between 0 and 1"
        )


def check_existing_path(name: str, value: str | Path) -> Path:
    """Fail unless `value` names an existing file or directory; return it as a Path."""
    path = Path(value)
    if not str(value) or not path.exists():
        raise ParameterError(f"parameter {name}={str(value)!r}: path does not exist")
    return path


def check_non_negative_int(name: str, value: object) -> None:
    """Fail unless `value` is an integer >= 0 (Python or NumPy, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected an integer >= 0")


def check_hyperparameters(name: str, value: object, accepted: Iterable[str]) -> None:
    """Fail unless `value` is a dict whose keys are all hyperparameters the model accepts."""
    accepted = sorted(accepted)
    if not isinstance(value, dict):
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected a dict")
    unknown = sorted(set(value) - set(accepted))
    if unknown:
        raise ParameterError(
            f"parameter {name} has unknown names {unknown}; this algorithm accepts {accepted}"
        )


def check_search_space(name: str, value: object, accepted: Iterable[str]) -> None:
    """Fail unless `value` maps accepted hyperparameter names to non-empty lists of values."""
    check_hyperparameters(name, value, accepted)
    for key, values in value.items():
        if not isinstance(values, list) or not values:
            raise ParameterError(
                f"parameter {name}[{key!r}]={values!r} is not allowed; expected a non-empty list"
            )
