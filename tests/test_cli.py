"""The `netspec` command line: compile (table and JSON), list, schema."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from netspec.cli import main
from netspec.load import load_file

from .conftest import ROOT, SPECS

LENET_LIKE = """\
name: tiny
input: [28, 28, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 5x5 6 same relu
  - pool: maxpool 2x2
  - flat: flatten
  - side: dense 3 from=flat aux=0.5
  - fc: dense $num_classes
"""


def run_json(capsys, *args: str) -> dict:
    assert main(["compile", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compile_json_has_the_documented_fields(capsys, write_spec):
    report = run_json(capsys, str(write_spec(LENET_LIKE)))
    assert report["name"] == "tiny"
    assert report["input_shape"] == [28, 28, 1]
    assert [r["name"] for r in report["rows"]] == ["conv", "pool", "flat", "side", "fc"]
    for row in report["rows"]:
        assert {"name", "type", "output_shape", "params", "macs", "train_only"} <= set(row)
    conv, pool, flat, side, fc = report["rows"]
    assert conv["output_shape"] == [28, 28, 6]
    assert conv["params"] == 5 * 5 * 1 * 6 + 6
    assert conv["macs"] == 28 * 28 * 6 * 25
    assert pool["output_shape"] == [14, 14, 6]
    assert side["train_only"] is True and conv["train_only"] is False
    assert flat["output_shape"] == [1, 1, 14 * 14 * 6]
    assert fc["params"] == 14 * 14 * 6 * 10 + 10
    assert report["params"] == sum(r["params"] for r in report["rows"])
    assert report["macs"] == conv["macs"] + fc["macs"]  # train-only rows excluded
    assert report["flops"] == 2 * report["macs"]


def test_aux_row_rejected_when_it_is_not_flat(capsys, write_spec):
    # The side head reads `pool` (14x14x6) directly: dense needs a flat input.
    text = LENET_LIKE.replace("dense 3 from=flat", "dense 3 from=pool")
    assert main(["compile", str(write_spec(text))]) == 2
    err = capsys.readouterr().err
    assert "dense needs a flat input" in err
    assert ":8:" in err  # the side row's line


def test_set_overrides_a_variable(capsys, write_spec):
    path = str(write_spec(LENET_LIKE))
    five = run_json(capsys, path, "--set", "num_classes=5")
    assert five["rows"][-1]["output_shape"] == [1, 1, 5]
    assert five["rows"][-1]["params"] == 14 * 14 * 6 * 5 + 5


def test_table_output_lists_rows_and_totals(capsys):
    assert main(["compile", str(SPECS / "resnet18.yaml")]) == 0
    out = capsys.readouterr().out
    for text in ("conv2_x", "56x56x64", "7x7x512", "11,689,512", "FLOPs"):
        assert text in out


def test_compile_accepts_a_zoo_name(capsys):
    assert main(["compile", "resnet18", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 11_689_512


def test_list_shows_every_zoo_spec(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in SPECS.glob("*.yaml"):
        assert spec.stem in out


def test_schema_accepts_every_zoo_spec_and_rejects_a_typo(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for spec in SPECS.glob("*.yaml"):
        data = json.loads(json.dumps(load_file(spec)))
        errors = list(validator.iter_errors(data))
        assert not errors, f"{spec.name}: {errors[0].message}"
    bad = json.loads(json.dumps(load_file(SPECS / "resnet18.yaml")))
    bad["layer"] = bad.pop("layers")
    assert list(validator.iter_errors(bad))


def test_schema_lists_layer_fields_for_mapping_rows(capsys):
    main(["schema"])
    schema = json.loads(capsys.readouterr().out)
    conv = schema["$defs"]["Layer.conv"]["properties"]
    assert {"filters", "kernel", "stride", "padding", "groups", "dilation"} <= set(conv)


def test_schema_of_a_spec_knows_its_blocks(tmp_path, capsys):
    """`netspec schema SPEC -o FILE`: a block of that spec is a type word; a misspelt one is
    not (the schema for all specs cannot tell a misspelt block from another block)."""
    out = tmp_path / "googlenet.schema.json"
    assert main(["schema", str(SPECS / "googlenet.yaml"), "-o", str(out)]) == 0
    validator = jsonschema.Draft202012Validator(json.loads(out.read_text(encoding="utf-8")))
    data = json.loads(json.dumps(load_file(SPECS / "googlenet.yaml")))
    assert not list(validator.iter_errors(data))
    data["layers"][6]["inception_3a"] = "inceptoin 64 96 128 16 32 32"
    (error,) = validator.iter_errors(data)
    assert list(error.absolute_path) == ["layers", 6, "inception_3a"]


@pytest.mark.parametrize("argv", [["compile", "missing.yaml"], ["compile", "specs/nope.yaml"]])
def test_missing_file_is_a_clean_error(argv):
    result = subprocess.run(
        [sys.executable, "-m", "netspec", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no such spec file" in result.stderr
    assert "Traceback" not in result.stderr


def test_compile_does_not_import_jax():
    code = (
        "import sys; from netspec.cli import main;"
        "main(['compile', 'resnet18', '--json', '--no-check']);"
        "sys.stderr.write(str('jax' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "False"


def test_version_names_netspec_and_its_stack_without_importing_jax():
    from importlib.metadata import version

    code = (
        "import sys; from netspec.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit as e:\n    code = e.code\n"
        "sys.stderr.write(f'|{code}|{\"jax\" in sys.modules}')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = result.stdout.strip()
    assert "\n" not in line
    assert line.startswith(f"netspec {version('netspec')} (")
    assert f"jax {version('jax')}" in line and f"flax {version('flax')}" in line
    assert result.stderr.endswith("|0|False")
