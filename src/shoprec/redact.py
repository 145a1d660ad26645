"""Secrets kept out of every record: credentials in URLs and values under secret-like names.

A run's parameters pass through `redact` before anything is written (run.json, the executed
notebooks, MLflow params, tags and artifacts, logs). A password written in a database URL is
replaced by `***` there; `split_secrets` hands the real one to the notebook's kernel through the
environment variable DATABASE_PASSWORD_VARIABLE instead, so the query still runs.
"""

import logging
import re
from collections.abc import Iterable
from typing import Any

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError

MASK = "***"
DATABASE_PASSWORD_VARIABLE = "SHOPREC_DATABASE_PASSWORD"
# A name holds a secret when one of its words (split at `_`, `-`, `.`, spaces and camelCase) is
# one of SECRET_WORDS, two adjacent words make one (`api_key`, `X-Api-Key`), or a word ends with
# one of SECRET_ENDINGS (`PGPASSWORD`, `sslpassword`, `accesstoken`). Never inside another word:
# `evaluation_passed`, `bypass`, `compass` and `max_tokens` are not secret names.
SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "pass", "pwd", "secret", "token", "credential",
     "credentials", "apikey", "accesskey", "privatekey"}
)  # fmt: skip
SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey")
NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# scheme://user:password@host -> the password; query parameters named like secrets -> their value.
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<secret>[^@\s/]*)@")
URL_QUERY_VALUE = re.compile(r"(?P<head>[?&](?P<name>[A-Za-z0-9_.\-]+)=)(?P<secret>[^&#\s]*)")


def name_words(name: str) -> list[str]:
    """The words of a parameter, option or variable name, lower-cased (`apiKey` -> api, key)."""
    return [word.lower() for word in NAME_WORD.findall(name)]


def is_secret_name(name: str) -> bool:
    """Whether a parameter or option called `name` holds a secret (password, token, key...)."""
    words = name_words(name)
    joined = {a + b for a, b in zip(words, words[1:], strict=False)}
    return any(word in SECRET_WORDS or word.endswith(SECRET_ENDINGS) for word in [*words, *joined])


def url_secrets(text: str) -> list[str]:
    """The passwords and secret query values written in the URLs inside `text`."""
    found = [m["secret"] for m in URL_PASSWORD.finditer(text)]
    found += [m["secret"] for m in URL_QUERY_VALUE.finditer(text) if is_secret_name(m["name"])]
    return [secret for secret in found if secret and secret != MASK]


def redact_text(text: str) -> str:
    """`text` with every URL password and secret query value replaced by `***`."""
    text = URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] else m[0], text)
    return URL_QUERY_VALUE.sub(
        lambda m: f"{m['head']}{MASK}" if m["secret"] and is_secret_name(m["name"]) else m[0], text
    )


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like) with secrets masked: URL credentials, and the value of any
    key named like a secret, at any depth."""
    if isinstance(value, dict):
        return {
            key: MASK if _holds_secret(key, item) else redact(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def _holds_secret(key: object, value: Any) -> bool:
    return isinstance(key, str) and is_secret_name(key) and bool(value)


def secrets_in(value: Any) -> list[str]:
    """Every secret `redact` would mask in `value`, as plain strings (for scrubbing logs)."""
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key) and item:
                found += [item] if isinstance(item, str) else secrets_in(item)
            else:
                found += secrets_in(item)
        return found
    if isinstance(value, list | tuple):
        return [secret for item in value for secret in secrets_in(item)]
    if isinstance(value, str):
        return url_secrets(value)
    return []


class SecretError(ShoprecError, ValueError):
    """Parameters carrying secrets in a way shoprec cannot keep out of its records."""

    exit_code = EXIT_BAD_INPUT


def split_secrets(parameters: Any) -> tuple[Any, dict[str, str]]:
    """`parameters` redacted, and the environment that gives the kernel the URL password back.

    Raises SecretError when the URLs hold more than one distinct password (pass credentials in
    the environment or a .pgpass file instead).
    """
    passwords = sorted(
        {
            m["secret"]
            for text in _strings(parameters)
            for m in URL_PASSWORD.finditer(text)
            if m["secret"] and m["secret"] != MASK
        }
    )
    if len(passwords) > 1:
        raise SecretError(
            "the parameters hold URLs with different passwords; pass database credentials "
            f"through the environment ({DATABASE_PASSWORD_VARIABLE}, or PGPASSWORD / a .pgpass "
            "file for PostgreSQL), never in parameters"
        )
    environment = {DATABASE_PASSWORD_VARIABLE: passwords[0]} if passwords else {}
    return redact(parameters), environment


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


class RedactingFilter(logging.Filter):
    """A log filter that masks the given secrets, and URL credentials, in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact_text(record.getMessage())
        for secret in self.secrets:
            message = message.replace(secret, MASK)
        record.msg, record.args = message, None
        return True
