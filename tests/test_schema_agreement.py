"""The `jsonschema` package agrees with symgrad's own validator on every hostile and example spec.

symgrad validates with its own interpreter of SCHEMA (for its messages: JSON path, "did you mean",
how to fix it); this checks that interpreter against the reference implementation of JSON Schema
2020-12, a test-only dependency.  Files that are not JSON (or hold NaN, Infinity or numbers beyond
a double, which symgrad's reader refuses before any schema is applied) are left out: JSON Schema
never sees them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT
from symgrad.errors import SpecError
from symgrad.schema import SCHEMA, validate
from symgrad.spec import parse_spec, read_document

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (a test-only dependency)")

CORPUS = ROOT / "tests" / "data" / "hostile_specs.jsonl"


def _documents(folder: Path) -> list[tuple[str, object]]:
    """(label, document) for every corpus entry and example spec that symgrad's JSON reader takes."""
    folder.mkdir(exist_ok=True)
    sources = [(f"corpus {e['id']} ({e['why']})", e["text"]) for e in map(json.loads, CORPUS.read_text().splitlines())]
    sources += [(f"examples/{path.name}", path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]
    documents = []
    for index, (label, text) in enumerate(sources):
        path = folder / f"{index}.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            documents.append((label, read_document(path)))
        except SpecError:
            continue
    return documents


def _ours(document: object) -> bool:
    try:
        validate(document)
    except (SpecError, RecursionError):
        return False
    return True


def test_the_schema_is_valid_json_schema():
    jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)


def test_both_validators_accept_and_refuse_the_same_documents(tmp_path):
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    documents = _documents(tmp_path / "specs")
    assert len(documents) >= 290
    disagreements = []
    for label, document in documents:
        try:
            theirs = validator.is_valid(document)
        except RecursionError:
            theirs = False
        if _ours(document) != theirs:
            disagreements.append(f"{label}: symgrad {'accepts' if theirs is False else 'refuses'}, jsonschema "
                                 f"{'accepts' if theirs else 'refuses'}")
    assert not disagreements, "\n".join(disagreements)
    assert sum(_ours(document) for _, document in documents) >= 100


def test_every_spec_symgrad_accepts_is_schema_valid(tmp_path):
    """parse_spec checks more than a schema can say (unique names, matrix shapes), never less."""
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    for label, document in _documents(tmp_path / "specs"):
        try:
            parse_spec(document)
        except SpecError:
            continue
        assert validator.is_valid(document), label
