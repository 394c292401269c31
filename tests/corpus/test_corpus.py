"""The corpus files: every item says where it was quoted, and the split keeps threads whole."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.corpus import CorpusError, kubernetes_items, lambda_lines, split_of


def test_every_item_has_its_source_and_no_line_is_there_twice() -> None:
    lines = lambda_lines()
    assert len(lines) + len(kubernetes_items()) >= 150
    twice = [key for key, n in Counter((x.source, x.text) for x in lines).items() if n > 1]
    assert twice == []


def test_the_split_follows_the_source_and_both_parts_hold_every_target_kind() -> None:
    assert split_of("https://github.com/apex/up/issues/663") == "held-out"
    assert split_of("https://github.com/aws/aws-sam-cli/issues/1569") == "fitting"
    for part in ("fitting", "held-out"):
        kinds = Counter(line.kind for line in lambda_lines(part))
        assert min(kinds["oom"], kinds["timeout"], kinds["init_failure"]) >= 5, (part, kinds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- runtime: go\n  kind: oom\n  text: x\n", "item 1 has no 'source'"),
        ("- source: http://a\n  runtime: go\n  kind: oom\n  text: x\n", "https address"),
        ("- source: https://a\n  runtime: go\n  kind: fire\n  text: x\n", "'fire' not in"),
        ("source: https://a\n", "must be a list"),
    ],
)
def test_a_bad_item_is_refused_naming_the_file_the_item_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "lambda.yaml"
    path.write_text(text)
    with pytest.raises(CorpusError, match=message) as refused:
        lambda_lines(path=path)
    assert str(refused.value).startswith("lambda.yaml")
