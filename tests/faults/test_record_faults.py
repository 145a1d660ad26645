"""Issue 22, fault 6: file contents reached run records.

A `.csv` link to a file the user may read but should not publish (`/etc/shadow`, as root)
failed validation with `found ['root:*:20228:...']`, and that line was copied into `run.json`,
the executed notebook and the MLflow artifacts. A validation error now names the file, row,
column and the expected shape, and quotes the data only as a short masked excerpt (letters as
`a`, digits as `9`), so what is stored holds the file's structure, not its content.

The fixture is a shadow-style file of our own (never the machine's /etc/shadow).
"""

import json
from pathlib import Path

import pandas as pd
import pytest

from shoprec.validation import EXCERPT_CHARS, DataValidationError, validate_interactions

pytestmark = pytest.mark.faults

SECRETS = ("zorgadmin", "Qx7Hv2Kp", "S3cr3tHashForZorgadminAAAA", "wembleyops", "M4sk3dValueBBBB")
SHADOW = (
    "zorgadmin:$6$Qx7Hv2Kp$S3cr3tHashForZorgadminAAAA:20228:0:99999:7:::\n"
    "daemon:*:20228:0:99999:7:::\n"
    "wembleyops:$6$Lm2Qw9Zt$M4sk3dValueBBBB:20228:0:99999:7:::\n"
)


def _files_holding(root: Path, secret: str) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.notebook
def test_a_shadow_file_given_as_a_dataset_is_described_never_copied(
    project: Path, shoprec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shadow = tmp_path_factory.mktemp("outside") / "shadow.csv"  # outside the project
    shadow.write_text(SHADOW)
    options = json.dumps({"path": str(shadow)})
    result = shoprec(
        "pipeline", "--profile", "smoke", "--dataset", "file", "--quiet",
        "-p", f"dataset_options={options}",
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{shadow}: missing column(s) ['user_id', 'item_id', 'timestamp']" in result.stderr
    assert "found 1 column(s): 'aaaaaaaaa:$9...' (" in result.stderr, result.stderr

    run_dir = next(path for path in (project / "runs").iterdir() if path.name.startswith("20"))
    record = json.loads((run_dir / "run.json").read_text())
    assert "found 1 column(s)" in json.dumps(record)  # the error is recorded, masked
    assert (project / ".shoprec" / "mlflow.db").exists(), "the failed run was not tracked"
    for secret in SECRETS:
        assert _files_holding(project, secret) == [], secret
        assert secret not in result.stdout


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("user_id", "zorgadmin:$6$Qx7Hv2Kp$S3cr3tHash", "'aaaaaaaaa:$9...' (32 characters) is "
         "not a number; expected a whole number >= 0"),
        ("item_id", "M4sk3dValueBBBB", "'A9aa9aAaaaaA...' (15 characters) is not a number"),
        ("timestamp", "wembleyops", "cannot parse 'aaaaaaaaaa' as a timestamp; row 1 holds "
         "seconds since the Unix epoch, so every row must"),
        ("user_id", "４２", "'??' is not written in digits 0-9"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named_by_file_row_column_and_shape_never_quoted(
    column: str, value: str, expected: str
) -> None:
    rows = {"user_id": ["1", "2", "3"], "item_id": ["4", "5", "6"],
            "timestamp": ["1700000000", "1700000001", "1700000002"]}  # fmt: skip
    rows[column][1] = value
    with pytest.raises(DataValidationError) as refused:
        validate_interactions(pd.DataFrame(rows), "export.csv", header_lines=1)
    message = str(refused.value)
    assert message.startswith(f"export.csv, row 2 (line 3), column '{column}': ")
    assert expected in message
    assert not any(secret in message for secret in SECRETS)
    assert len(message.split("'")[3]) <= EXCERPT_CHARS + 3  # a short excerpt, if any


def test_duplicates_and_constant_columns_show_shapes_only() -> None:
    frame = pd.DataFrame({"user_id": ["77123", "77123"], "item_id": ["55", "55"],
                          "timestamp": ["1700000000", "1700000000"]})  # fmt: skip
    with pytest.raises(DataValidationError) as refused:
        validate_interactions(frame, "export.csv")
    assert "(user_id='99999', item_id='99', timestamp='9999999999')" in str(refused.value)
    assert "77123" not in str(refused.value)
