"""Secret names are matched as names: whole words of a name, never letters inside another word."""

import pytest

from shoprec.redact import MASK, is_secret_name, name_words, redact, redact_text

SECRET_NAMES = [
    "password", "passwd", "passphrase", "pwd", "secret", "token", "api_key", "apiKey",
    "X-API-Key", "api-key", "access_key", "private_key", "credentials", "db_password",
    "PGPASSWORD", "SHOPREC_DATABASE_PASSWORD", "sslpassword", "client_secret", "AccessToken",
    "db.pass", "MLFLOW_TRACKING_TOKEN", "aws_secret_access_key",
]  # fmt: skip
PLAIN_NAMES = [
    "shoprec.evaluation_passed", "evaluation_passed", "passed", "bypass", "compass",
    "passenger_count", "max_tokens", "tokenizer", "secretary", "keyword", "monkey",
    "api_version", "key", "k", "passes", "surpassed", "pkey_column",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)
    assert redact({name: "hunter2"}) == {name: MASK}


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_words_that_merely_contain_a_secret_word_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)
    assert redact({name: "True"}) == {name: "True"}


def test_names_split_into_words_at_separators_and_camel_case() -> None:
    assert name_words("shoprec.evaluation_passed") == ["shoprec", "evaluation", "passed"]
    assert name_words("X-APIKey") == ["x", "api", "key"]
    assert name_words("accessToken2") == ["access", "token", "2"]


def test_query_values_are_masked_by_the_same_rule() -> None:
    url = "postgresql://db/shop?sslpassword=xyz&bypass=1&api_key=k1&passed=yes"
    assert (
        redact_text(url)
        == f"postgresql://db/shop?sslpassword={MASK}&bypass=1&api_key={MASK}&passed=yes"
    )
