"""`netspec draw`: the diagram's SVG, read back with xml.etree, against numbers known apart
from the code (GoogLeNet's Table 1, shapes computed by hand for small specs written here)."""

from __future__ import annotations

import itertools
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netspec
from netspec.cli import main
from netspec.diagram import draw, render

SVG = "{http://www.w3.org/2000/svg}"

# GoogLeNet, Table 1 of "Going deeper with convolutions": each row's output size.
GOOGLENET_TABLE = {
    "conv1": "112x112x64",
    "pool1": "56x56x64",
    "conv2": "56x56x192",
    "pool2": "28x28x192",
    "inception_3a": "28x28x256",
    "inception_3b": "28x28x480",
    "pool3": "14x14x480",
    "inception_4a": "14x14x512",
    "inception_4b": "14x14x512",
    "inception_4c": "14x14x512",
    "inception_4d": "14x14x528",
    "inception_4e": "14x14x832",
    "pool4": "7x7x832",
    "inception_5a": "7x7x832",
    "inception_5b": "7x7x1024",
    "pool5": "1x1x1024",
    "dropout": "1x1x1024",
    "linear": "1x1x1000",
    "softmax": "1x1x1000",
}

# A small branching spec; its shapes and row adjacency worked out by hand below.
BRANCHY = """
name: branchy
input: [32, 32, 3]
defaults: {conv: {padding: same}}
layers:
  - stem: conv 3x3/2 8              # 32 / 2 = 16: 16x16x8
  - a:    conv 1x1 4                # 16x16x4, reads stem
  - b:    conv 3x3 12 from=stem     # 16x16x12
  - c:    concat from=[a, b]        # 16x16x(4 + 12)
  - pool: maxpool 2x2/2             # 8x8x16
  - off:  conv 1x1 4 if=${1 == 2}   # switched off: no box, flat reads pool
  - flat: flatten                   # 8 * 8 * 16 = 1024
  - out:  dense 10                  # 1x1x10
  - side: [global_avgpool, dense 5] # 1x1x5, a train-only head on b
    from: b
    aux: 0.5
"""
BRANCHY_SHAPES = {
    "input": "32x32x3",
    "stem": "16x16x8",
    "a": "16x16x4",
    "b": "16x16x12",
    "c": "16x16x16",
    "pool": "8x8x16",
    "flat": "1x1x1024",
    "out": "1x1x10",
    "side": "1x1x5",
}
BRANCHY_EDGES = {
    ("input", "stem"),
    ("stem", "a"),
    ("stem", "b"),
    ("a", "c"),
    ("b", "c"),
    ("c", "pool"),
    ("pool", "flat"),
    ("flat", "out"),
    ("b", "side"),
}

# One inception module, as GoogLeNet's 3a (Table 1: 64 96 128 16 32 32 on 28x28x192).
MODULE = """
name: module
input: [28, 28, 192]
defaults: {conv: {padding: same, activation: relu}}
blocks:
  inception:
    args: [n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj]
    concat:
      - b1x1: conv 1x1 $n1x1
      - b3x3: [reduce: conv 1x1 $n3x3red, conv: conv 3x3 $n3x3]
      - b5x5: [reduce: conv 1x1 $n5x5red, conv: conv 5x5 $n5x5]
      - pool_proj: [pool: maxpool 3x3/1 padding=1, conv: conv 1x1 $pool_proj]
layers:
  - 3a: inception 64 96 128 16 32 32
  - pool: global_avgpool
"""
# Each layer of 3a keeps 28x28 and has its column's filters; concat: 64 + 128 + 32 + 32.
MODULE_LAYERS = {
    "b1x1": "28x28x64",
    "b3x3/reduce": "28x28x96",
    "b3x3/conv": "28x28x128",
    "b5x5/reduce": "28x28x16",
    "b5x5/conv": "28x28x32",
    "pool_proj/pool": "28x28x192",
    "pool_proj/conv": "28x28x32",
    "concat": "28x28x256",
}
# input -> each branch's first layer (4), the two-layer branches inside (3), every branch
# into concat (4), concat -> pool (1).
MODULE_EDGE_COUNT = 4 + 3 + 4 + 1


def svg_of(spec: str, expand: tuple[str, ...] = ()) -> ET.Element:
    return ET.fromstring(render(netspec.compile(spec), "svg", expand))


def groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if kind in g.get("class", "").split()]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def rect_of(element: ET.Element) -> tuple[float, float, float, float]:
    r = element.find(f"{SVG}rect")
    assert r is not None
    return tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def boxes_by_key(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-key"): g for g in groups(root, "box")}


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def path_points(d: str) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L and C steps (20 per line, 40 per curve)."""
    tokens = re.findall(r"[MLC]|-?[\d.]+", d)
    points: list[tuple[float, float]] = []
    i, here = 0, (0.0, 0.0)
    while i < len(tokens):
        op = tokens[i]
        n = {"M": 2, "L": 2, "C": 6}[op]
        v = [float(t) for t in tokens[i + 1 : i + 1 + n]]
        i += 1 + n
        if op == "M":
            here = (v[0], v[1])
            points.append(here)
        elif op == "L":
            points += [
                (here[0] + (v[0] - here[0]) * t / 20, here[1] + (v[1] - here[1]) * t / 20)
                for t in range(1, 21)
            ]
            here = (v[0], v[1])
        else:
            p = [here, (v[0], v[1]), (v[2], v[3]), (v[4], v[5])]
            for k in range(1, 41):
                t = k / 40
                c = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t**3]
                points.append(
                    (sum(c[j] * p[j][0] for j in range(4)), sum(c[j] * p[j][1] for j in range(4)))
                )
            here = p[3]
    return points


def strictly_inside(point: tuple[float, float], r: tuple[float, ...]) -> bool:
    return r[0] + 1 < point[0] < r[0] + r[2] - 1 and r[1] + 1 < point[1] < r[1] + r[3] - 1


def test_every_googlenet_row_shows_its_name_and_table_1_output_size() -> None:
    root = svg_of("googlenet")
    rows = {g.get("data-row"): texts(g) for g in groups(root, "box")}
    for name, output in GOOGLENET_TABLE.items():
        assert name in rows, name
        assert rows[name][0] == name
        assert output in rows[name], (name, rows[name])
    assert {"input", "224x224x3"} <= set(boxes_by_key(root)["input"].itertext())
    # one box per row of the table (its 21 rows with norm1 and norm2, 2 heads), plus the input
    assert len(groups(root, "box")) == len(GOOGLENET_TABLE) + 2 + 2 + 1


def test_small_spec_shapes_and_edges_match_the_hand_count() -> None:
    root = svg_of(BRANCHY)
    boxes = boxes_by_key(root)
    row_of = {key: g.get("data-row") or "input" for key, g in boxes.items()}
    for name, shape in BRANCHY_SHAPES.items():
        (box,) = [g for k, g in boxes.items() if row_of[k] == name]
        assert texts(box)[0] == name
        assert shape in texts(box), (name, texts(box))
    edges = [
        (row_of[g.get("data-source")], row_of[g.get("data-target")]) for g in groups(root, "edge")
    ]
    assert "off" not in row_of.values()
    assert len(edges) == len(BRANCHY_EDGES)
    assert set(edges) == BRANCHY_EDGES


def test_train_only_heads_are_marked() -> None:
    root = svg_of("googlenet")
    for g in groups(root, "box"):
        head = g.get("data-row") in ("aux1", "aux2")
        assert ("train-only" in g.get("class", "")) == head
        assert ("train only, loss weight 0.3" in texts(g)) == head
        if head:
            assert g.find(f"{SVG}rect").get("stroke-dasharray")
    into_heads = [
        g for g in groups(root, "edge") if g.get("data-target") in ("row:aux1", "row:aux2")
    ]
    assert len(into_heads) == 2
    assert all("train-only" in g.get("class", "") for g in into_heads)
    assert all(g.find(f"{SVG}path").get("stroke-dasharray") for g in into_heads)
    others = [g for g in groups(root, "edge") if g not in into_heads]
    assert not any("train-only" in g.get("class", "") for g in others)


def test_train_only_head_sits_beside_the_main_path() -> None:
    root = svg_of("googlenet")
    boxes = boxes_by_key(root)
    source, side, main_next = (
        rect_of(boxes[k]) for k in ("row:inception_4a", "row:aux1", "row:inception_4b")
    )
    # The head is in the layer after its source, left or right of the main path's next row...
    assert side[1] == pytest.approx(main_next[1])
    assert side[0] + side[2] <= main_next[0] or main_next[0] + main_next[2] <= side[0]
    # ...which continues straight down under the row it reads.
    assert main_next[0] + main_next[2] / 2 == pytest.approx(source[0] + source[2] / 2, abs=1)


def test_expanded_block_shows_its_layers_in_a_frame() -> None:
    root = svg_of(MODULE, ("inception",))
    (frame,) = groups(root, "cluster")
    assert frame.get("data-row") == "3a"
    assert texts(frame)[0] == "3a"
    assert "28x28x256" in " ".join(texts(frame))
    inner = {g.get("data-key"): g for g in groups(root, "box") if g.get("data-row") == "3a"}
    assert {k.removeprefix("node:3a/") for k in inner} == set(MODULE_LAYERS)
    fx, fy, fw, fh = rect_of(frame)
    for key, g in inner.items():
        name = key.removeprefix("node:3a/")
        assert texts(g)[0] == name
        assert MODULE_LAYERS[name] in texts(g)
        x, y, w, h = rect_of(g)
        assert fx <= x and x + w <= fx + fw and fy <= y and y + h <= fy + fh
    # The four branches side by side: their first layers on one line, left to right as written.
    firsts = [
        rect_of(inner[f"node:3a/{n}"])
        for n in ("b1x1", "b3x3/reduce", "b5x5/reduce", "pool_proj/pool")
    ]
    assert len({r[1] for r in firsts}) == 1
    assert all(a[0] + a[2] < b[0] for a, b in itertools.pairwise(firsts))
    assert len(groups(root, "edge")) == MODULE_EDGE_COUNT


def test_block_name_row_name_and_all_expand_the_same_rows() -> None:
    by_block = svg_of("googlenet", ("inception",))
    by_rows = svg_of("googlenet", tuple(r for r in GOOGLENET_TABLE if r.startswith("inception")))
    rows = sorted(g.get("data-row") for g in groups(by_block, "cluster"))
    assert rows == sorted(g.get("data-row") for g in groups(by_rows, "cluster"))
    assert rows == sorted(r for r in GOOGLENET_TABLE if r.startswith("inception"))
    everything = {g.get("data-row") for g in groups(svg_of("googlenet", ("all",)), "cluster")}
    assert everything == {*rows, "conv2", "aux1", "aux2"}  # every row of more than one layer


def test_one_copy_of_a_repeated_row_expands() -> None:
    root = svg_of("resnet50", ("conv3_x[0]",))
    (frame,) = groups(root, "cluster")
    assert texts(frame)[0] == "conv3_x[0]"
    boxes = {texts(g)[0]: texts(g) for g in groups(root, "box")}
    # the other three copies stay one box: bottleneck 128, x3, 28x28x512
    assert boxes["conv3_x[1-3]"][1:] == ["bottleneck 128 ×3", "28x28x512"]
    # the first copy's layers, from 56x56x256 (conv2_x): 1x1 to 128, 3x3/2, 1x1 to 4 x 128,
    # the projection shortcut 1x1/2 to 512
    assert "56x56x128" in boxes["residual/main/conv1"]
    assert "28x28x128" in boxes["residual/main/conv2"]
    assert "28x28x512" in boxes["residual/main/conv3"]
    assert "28x28x512" in boxes["residual/shortcut/conv"]


def assert_clean_geometry(root: ET.Element) -> None:
    width, height = float(root.get("width")), float(root.get("height"))
    boxes = [(g.get("data-key"), rect_of(g)) for g in groups(root, "box")]
    for i, (key, r) in enumerate(boxes):
        assert r[0] >= 0 and r[0] + r[2] <= width and r[1] >= 0 and r[1] + r[3] <= height, key
        for other, s in boxes[i + 1 :]:
            assert not overlap(r, s), (key, other)
    for edge in groups(root, "edge"):
        points = path_points(edge.find(f"{SVG}path").get("d"))
        ends = {edge.get("data-source"), edge.get("data-target")}
        for key, r in boxes:
            if key not in ends:
                assert not any(strictly_inside(p, r) for p in points), (sorted(ends), key)


@pytest.mark.parametrize(
    ("spec", "expand"),
    [("googlenet", ()), ("googlenet", ("inception",)), ("resnet50", ("conv3_x[0]",)), ("unet", ())],
)
def test_boxes_do_not_overlap_and_edges_pass_beside_boxes(
    spec: str, expand: tuple[str, ...]
) -> None:
    assert_clean_geometry(svg_of(spec, expand))


def test_frames_hold_only_their_own_boxes() -> None:
    root = svg_of("inception_v3", ("Mixed_6e", "AuxLogits"))
    frames = {g.get("data-key"): rect_of(g) for g in groups(root, "cluster")}
    for g in groups(root, "box"):
        inside = g.get("data-key", "").startswith("node:")
        for key, f in frames.items():
            mine = inside and key == "cluster:" + g.get("data-row")
            assert overlap(rect_of(g), f) == mine, (g.get("data-key"), key)


def test_a_tall_chain_wraps_into_columns() -> None:
    root = svg_of("googlenet")
    width, height = float(root.get("width")), float(root.get("height"))
    assert height / width < 2  # 24 boxes in one column would be about 4x taller than wide
    boxes = boxes_by_key(root)
    first, last = rect_of(boxes["input"]), rect_of(boxes["row:softmax"])
    assert last[0] > first[0] + first[2]  # the end is in a column to the right of the start


def test_text_fits_its_box_measured_by_matplotlib() -> None:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure = TextToPath()
    root = svg_of("inception_v3", ("Mixed_7b",))
    for g in groups(root, "box"):
        x, _, w, _ = rect_of(g)
        for t in g.iter(f"{SVG}text"):
            prop = FontProperties(
                family="DejaVu Sans",
                weight=t.get("font-weight", "normal"),
                size=float(t.get("font-size")),
            )
            text_w = measure.get_text_width_height_descent(t.text, prop, ismath=False)[0]
            centre = float(t.get("x"))
            assert x < centre - text_w / 2 and centre + text_w / 2 < x + w, t.text


def test_text_from_the_spec_is_escaped() -> None:
    spec = r"""
name: "<script>alert(1)</script> & \"q\" \x01 ]]>"
input: [8, 8, 3]
blocks:
  blk:
    args: [tag]
    layers: [c: conv 1x1 4, r: relu]
layers:
  - a: blk "</text><script>x</script>"
  - b: conv 3x3 4 same
"""
    svg = render(netspec.compile(spec), "svg").decode("utf-8")
    root = ET.fromstring(svg)  # well-formed XML, control character and all
    assert not any(e.tag.endswith("script") for e in root.iter())
    assert "<script>" not in svg
    (title,) = [t for t in root.iter(f"{SVG}text") if "alert" in (t.text or "")]
    assert title.text == '<script>alert(1)</script> & "q" \ufffd ]]>'
    assert 'blk "</text><script>x</script>"' in texts(boxes_by_key(root)["row:a"])


def test_png_and_pdf(tmp_path: Path) -> None:
    svg = ET.fromstring(render(netspec.compile("lenet5"), "svg"))
    png = draw("lenet5", tmp_path / "net.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert width == pytest.approx(1.5 * float(svg.get("width")), abs=2)
    assert height == pytest.approx(1.5 * float(svg.get("height")), abs=2)
    assert len(png) > 10_000  # boxes and text, not a blank page
    assert draw("lenet5", tmp_path / "net.pdf").read_bytes()[:5] == b"%PDF-"


def test_cli_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    args = [
        "draw",
        "googlenet",
        "-o",
        str(out),
        "--expand",
        "inception_3a",
        "--set",
        "num_classes=7",
    ]
    assert main(args) == 0
    root = ET.fromstring(out.read_bytes())
    assert [g.get("data-row") for g in groups(root, "cluster")] == ["inception_3a"]
    assert "1x1x7" in texts(boxes_by_key(root)["row:softmax"])


def test_cli_unknown_expand_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "net.svg"
    out.write_text("kept")
    assert main(["draw", "googlenet", "-o", str(out), "--expand", "inceptoin"]) == 2
    err = capsys.readouterr().err
    assert "--expand" in err and "inceptoin" in err and "did you mean 'inception'?" in err
    assert "Traceback" not in err
    assert out.read_text() == "kept"  # nothing written over it
    assert main(["draw", "resnet50", "-o", str(out), "--expand", "conv3_x[4]"]) == 2
    assert "conv3_x[0] to conv3_x[3]" in capsys.readouterr().err


def test_cli_unknown_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "net.jpg"
    assert main(["draw", "lenet5", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert all(f".{fmt}" in err for fmt in ("svg", "png", "pdf"))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_drawing_does_not_import_jax(tmp_path: Path) -> None:
    code = (
        "import sys; from netspec.diagram import draw; "
        f"draw('googlenet', {str(tmp_path / 'g.svg')!r}, expand=['all']); "
        f"draw('lenet5', {str(tmp_path / 'l.png')!r}); "
        "assert 'jax' not in sys.modules, 'jax imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_text_widths_match_matplotlib() -> None:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    from netspec.diagram.text import text_width

    measure = TextToPath()
    sample = "inception_3a 28x28x256 conv 7x7/2 relu ABCXYZ {}[]()_-+=@#%&"
    for bold in (False, True):
        prop = FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal", size=12)
        expected = measure.get_text_width_height_descent(sample, prop, ismath=False)[0]
        assert text_width(sample, 12, bold) == pytest.approx(expected, rel=0.01)
