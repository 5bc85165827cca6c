"""Parsing specs: resolved names and defaults, and a precise SpecError for every kind of mistake."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import MAZUR
from symgrad import SpecError, parse_spec
from symgrad.schema import SCHEMA


def mazur() -> dict:
    return json.loads(MAZUR.read_text())


def error_of(document) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec(document)
    return caught.value


def test_mazur_resolves_names_and_order():
    spec = parse_spec(MAZUR)
    assert spec.parameter_names == ("w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2")
    assert spec.inputs == ("i1", "i2")
    assert spec.layers[0].weights == (("w1", "w2"), ("w3", "w4"))
    assert spec.frozen == ("b1", "b2")
    assert spec.optimizer.learning_rate == 0.5
    assert spec.example.inputs == ((0.05, 0.1),)


def test_counts_get_generated_names_and_defaults():
    spec = parse_spec({"name": "n", "inputs": 2, "layers": [{"units": 3, "activation": "relu"},
                                                           {"units": 2, "activation": "linear", "bias": "shared"}],
                       "loss": "mse"})
    assert spec.inputs == ("x0", "x1")
    assert spec.layers[0].units == ("h1_0", "h1_1", "h1_2")
    assert spec.layers[1].units == ("o0", "o1")
    assert spec.parameter_names[:3] == ("W1_0_0", "W1_0_1", "W1_1_0")
    assert spec.parameter_names[6:9] == ("b1_0", "b1_1", "b1_2")
    assert spec.parameter_names[-1] == "b2"
    assert spec.loss.reduction == "mean"
    assert spec.optimizer.name == "sgd" and spec.optimizer.learning_rate == 0.1
    assert spec.dtype == "float64" and spec.initial_scheme == "xavier_uniform" and spec.seed == 0


def test_same_document_same_hash_whatever_the_key_order():
    document = mazur()
    reordered = dict(reversed(list(document.items())))
    assert parse_spec(document).source_hash == parse_spec(reordered).source_hash


@pytest.mark.parametrize("mutate, path, words", [
    (lambda d: d.update(colour="red"), "$", 'unknown key "colour"'),
    (lambda d: d["layers"][0].update(activaton="tanh"), "$.layers[0]", 'did you mean "activation"'),
    (lambda d: d.update(inputs="two"), "$.inputs", "expected an integer or a list"),
    (lambda d: d["layers"][0].update(units=0), "$.layers[0].units", "below the minimum"),
    (lambda d: d["layers"][1].update(activation="sigmod"), "$.layers[1].activation", 'did you mean "sigmoid"'),
    (lambda d: d.update(loss=3), "$.loss", "expected a string or an object"),
    (lambda d: d["optimizer"].update(learning_rate=-1), "$.optimizer.learning_rate", "greater than 0"),
    (lambda d: d["optimizer"].update(learning_rate="fast"), "$.optimizer.learning_rate", "expected a number"),
    (lambda d: d["layers"][1]["weights"][0].__setitem__(1, "w 5"), "$.layers[1].weights[0][1]",
     '"w 5" is not a valid name; use 1 to 64 ASCII letters, digits and _'),
    (lambda d: d["layers"][1]["weights"][0].__setitem__(1, "w1"), "$.layers[1].weights[0][1]",
     'the name "w1" is already used at $.layers[0].weights[0][0]'),
    (lambda d: d["layers"][0].update(units=["h1", "h1"]), "$.layers[0].units[1]", 'the name "h1" is already used'),
    (lambda d: d["layers"][1]["weights"].append(["w9", "w10"]), "$.layers[1].weights",
     "has 3 row(s) but the layer has 2 unit(s)"),
    (lambda d: d["layers"][0]["weights"][1].pop(), "$.layers[0].weights[1]", "has 1 name(s) but the layer has 2 input(s)"),
    (lambda d: d["layers"][0].update(activation="softmax"), "$.layers[0].activation",
     "softmax is only allowed in the output layer"),
    (lambda d: d.update(loss="cross_entropy"), "$.loss", "cross_entropy needs a softmax output layer"),
    (lambda d: d["initial"].update(w9=0.1), "$.initial.w9", '"w9" is not a parameter of this network'),
    (lambda d: d.update(frozen=["b1", "b3"]), "$.frozen[1]", '"b3" is not a parameter of this network'),
    (lambda d: d.update(frozen=["b1", "b1"]), "$.frozen[1]", "listed twice"),
    (lambda d: d["initial"].update(w1=True), "$.initial.w1", "expected a number, got true"),
    (lambda d: d.update(name="class"), "$.name", "would shadow a Python keyword or module"),
    (lambda d: d.update(name="os"), "$.name", "would shadow"),
    (lambda d: d.update(name="../evil"), "$.name", "is not a valid package name"),
    (lambda d: d.update(dtype="float16"), "$.dtype", "use one of: float64, float32"),
    (lambda d: d["layers"][0].update(bias={"mode": "shared", "names": ["a"]}), "$.layers[0].bias.names",
     'a shared bias has one "name"'),
    (lambda d: d["layers"][0].update(bias={"mode": "per_unit", "names": ["a"]}), "$.layers[0].bias.names",
     "has 1 name(s) but the layer has 2 unit(s)"),
    (lambda d: d["layers"][0].update(activation={"name": "tanh", "slope": 0.1}), "$.layers[0].activation.slope",
     "only leaky_relu takes a slope"),
    (lambda d: d["example"].update(inputs=[0.05]), "$.example.inputs", "has 1 value(s), the network has 2 inputs"),
    (lambda d: d.pop("layers"), "$", 'missing required key "layers"'),
    (lambda d: d.update(layers=[]), "$.layers", "needs at least 1 item"),
])
def test_mistakes_name_their_json_path(mutate, path, words):
    document = mazur()
    mutate(document)
    error = error_of(document)
    assert error.path == path, str(error)
    assert words in str(error), str(error)
    assert str(error).startswith(path + ": ")


@pytest.mark.parametrize("text, words", [
    ("{", "is not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"name": NaN}', "NaN is not valid JSON"),
    ('{"name": "a", "name": "b"}', 'the key "name" appears twice'),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"name": 1' + "0" * 5000 + "}", "Python cannot read"),
])
def test_malformed_files(tmp_path, text, words):
    path = tmp_path / "spec.json"
    path.write_text(text)
    assert words in str(error_of(path))


def test_missing_file_is_a_spec_error(tmp_path):
    assert "cannot read the spec file" in str(error_of(tmp_path / "nope.json"))


def test_every_hint_says_how_to_fix():
    document = mazur()
    document["layers"][1]["activation"] = "sigmod"
    assert "use one of: sigmoid, tanh" in str(error_of(document))


def test_schema_is_the_validators_source():
    """The published schema and the checks are one object: changing one changes the other."""
    saved = copy.deepcopy(SCHEMA)  # the schema shares sub-dicts, so restore all of it
    layer = SCHEMA["properties"]["layers"]["items"]
    try:
        layer["properties"]["units"]["anyOf"][0]["maximum"] = 3
        document = mazur()
        document["layers"][0]["units"] = 4
        document["layers"][0].pop("weights")
        document["layers"][1].pop("weights")
        assert "above the maximum 3" in str(error_of(document))
    finally:
        SCHEMA.clear()
        SCHEMA.update(saved)


# -- hostile names and values (issue 11, item 8): each class with several variants ----------------

@pytest.mark.parametrize("mutate, path", [
    (lambda d: d.update(name="mazur\n"), "$.name"),
    (lambda d: d.update(inputs=["i1", "i2\n"]), "$.inputs[1]"),
    (lambda d: d["layers"][0].update(units=["h1\n", "h2"]), "$.layers[0].units[0]"),
    (lambda d: d["layers"][1]["weights"][0].__setitem__(0, "w5\n"), "$.layers[1].weights[0][0]"),
    (lambda d: d["layers"][0].update(bias={"mode": "shared", "name": "b1\n"}), "$.layers[0].bias.name"),
    (lambda d: d.update(frozen=["b1\n"]), "$.frozen[0]"),
    (lambda d: d.update(name="mazur\r\n"), "$.name"),
])
def test_names_ending_in_a_newline_are_refused(mutate, path):
    document = mazur()
    mutate(document)
    error = error_of(document)
    assert error.path == path, str(error)
    assert "is not a valid" in str(error)


@pytest.mark.parametrize("value", [3.5e38, -3.5e38, 1e300, -1.7976931348623157e308])
@pytest.mark.parametrize("key", ["w1", "b2"])
def test_float32_initial_values_beyond_its_range_are_refused(key, value):
    document = mazur()
    document["dtype"] = "float32"
    document["initial"][key] = value
    error = error_of(document)
    assert error.path == f"$.initial.{key}", str(error)
    assert "beyond the range of float32" in str(error) and '"dtype": "float64"' in str(error)


@pytest.mark.parametrize("value", [3.4e38, -3.4e38, 1e-50])
def test_float32_initial_values_within_its_range_pass(value):
    document = mazur()
    document["dtype"] = "float32"
    document["initial"]["w1"] = value
    assert dict(parse_spec(document).initial_values)["w1"] == value
    document["dtype"] = "float64"
    document["initial"]["w1"] = 1e300  # float64 holds it
    parse_spec(document)


@pytest.mark.parametrize("name", ["sg", "c_backend"])
def test_package_names_of_the_generated_code_are_refused(name):
    document = mazur()
    document["name"] = name
    error = error_of(document)
    assert error.path == "$.name" and "clashes with a name of the generated code" in str(error)
