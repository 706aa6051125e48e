"""The contract: its YAML loads strictly, and the committed doc shows exactly its current tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.contract import DOC_PATH, load_contract, main, markdown


def test_committed_doc_contains_the_tables_generated_from_the_yaml() -> None:
    assert markdown() in DOC_PATH.read_text(), "run `python -m ingest.contract --update-doc` and commit the doc"


def test_generated_tables_cover_every_source_and_column() -> None:
    text = markdown()
    for source in load_contract().sources.values():
        assert f"### `{source.name}`" in text
        for column in source.columns.values():
            assert f"| `{column.name}` | {column.type} |" in text
    assert "| `birth_year` | integer |  | 1900 to 2020 |" in text
    assert "| `email` | string |  |  | yes | E-mail address. |" in text


def test_descriptions_with_commas_are_whole() -> None:
    # An unquoted comma in a YAML flow mapping once cut these short and added a bogus key.
    assert load_contract().source("customers").columns["member_id"].description == "Membership ID, the CRM's customer key."


def test_loader_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("version: 1\nsources:\n  s:\n    description: d\n    key: [a]\n"
                    "    columns:\n      a: {type: string, description: A, B.}\n")

    with pytest.raises(ValueError, match=r"column a: unknown key\(s\) \['B.'\]"):
        load_contract(path)


def test_negative_when_reads_the_document_type() -> None:
    orders = load_contract().source("orders")
    assert orders.columns["total_amount"].negative_when == ("order_type", ("return", "cancellation"))
    assert orders.identifiers == ("member_id", "email", "phone", "cookie_id", "device_id")
    assert orders.required_one_of == ()  # a guest checkout is a valid order
    assert "| `quantity` | integer | yes | >= 1; negative when `receipt_type` is `return` or `cancellation` |" in markdown()


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("{min: 0, negative_when: {kind: [return]}}", r"'kind' is not one of its columns"),
        ("{negative_when: {a: [x]}}", r"column n: negative_when needs a min"),
        ("{min: 0, negative_when: [a]}", r"column n: negative_when must be \{column: \[values\]\}"),
    ],
)
def test_loader_rejects_bad_negative_when(tmp_path: Path, rule: str, error: str) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text("version: 1\nsources:\n  s:\n    description: d\n    key: [a]\n    columns:\n"
                    f"      a: {{type: string, description: A}}\n      n: {{type: decimal, description: N, {rule[1:]}\n")

    with pytest.raises(ValueError, match=error):
        load_contract(path)


def test_markdown_command_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out.strip() == markdown()
