"""The Caffe references in tests/caffe_nets.py against independent facts: the BVLC model zoo's
published parameter counts, the GoogLeNet paper's Table 1 sizes, loop-by-loop computations of
Caffe's layers, and a small prototxt parser written here."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from . import caffe_nets as cn

# ---------------------------------------------------------------------------------------------
# Parameter counts and shapes


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (cn.bvlc_alexnet(deploy=True), 60_965_224),
        (cn.bvlc_alexnet(deploy=False), 60_965_224),
        (cn.bvlc_googlenet(deploy=True), 6_998_552),
        (cn.bvlc_googlenet(deploy=False), 13_378_280),
        (cn.bvlc_googlenet(deploy=False, data_layer=False), 13_378_280),
    ],
)
def test_published_parameter_counts(net: cn.Net, expected: int) -> None:
    assert cn.param_count(net) == expected
    assert cn.trainable_params(net) == expected
    assert cn.param_count(net, statistics=True) == expected  # no BatchNorm in these


def test_small_resnet_counts_batchnorm_as_statistics() -> None:
    net = cn.small_resnet()
    # conv1 3x3x3x16; 2a: two 3x3x16x16; 3a: 1x1x16x32, 3x1x16x32, 1x3x32x32; fc 32x10 + 10.
    convs = 27 * 16 + 2 * 9 * 16 * 16 + 16 * 32 + 3 * 16 * 32 + 3 * 32 * 32
    bn_channels = 16 + 2 * 16 + 3 * 32  # one BatchNorm + Scale pair after each convolution
    assert cn.trainable_params(net) == convs + 2 * bn_channels + 32 * 10 + 10
    assert cn.param_count(net, statistics=True) == cn.param_count(net) + 2 * bn_channels + 6
    types = [entry["type"] for entry in net]
    assert types.count("BatchNorm") == types.count("Scale") == 6
    assert all(e["tops"] == e["bottoms"] for e in net if e["type"] in ("BatchNorm", "Scale"))


def test_googlenet_table_1_sizes() -> None:
    # Szegedy et al. 2015, Table 1 (output size HxWxC); batch 10 as in the BVLC deploy file.
    shapes = cn.blob_shapes(cn.bvlc_googlenet())
    table = {
        "conv1/7x7_s2": (112, 112, 64),
        "pool1/3x3_s2": (56, 56, 64),
        "conv2/3x3": (56, 56, 192),
        "pool2/3x3_s2": (28, 28, 192),
        "inception_3a/output": (28, 28, 256),
        "inception_3b/output": (28, 28, 480),
        "pool3/3x3_s2": (14, 14, 480),
        "inception_4a/output": (14, 14, 512),
        "inception_4d/output": (14, 14, 528),
        "inception_4e/output": (14, 14, 832),
        "pool4/3x3_s2": (7, 7, 832),
        "inception_5b/output": (7, 7, 1024),
        "pool5/7x7_s1": (1, 1, 1024),
    }
    for blob, (h, w, c) in table.items():
        assert shapes[blob] == (10, c, h, w), blob
    assert shapes["prob"] == (10, 1000)


def test_googlenet_aux_heads() -> None:
    net = cn.bvlc_googlenet(deploy=False)
    shapes = cn.blob_shapes(net)
    assert shapes["data"] == (50, 3, 224, 224)  # TEST phase Data layer
    assert cn.blob_shapes(net, "TRAIN")["data"] == (32, 3, 224, 224)
    assert shapes["loss1/ave_pool"] == (*shapes["loss2/ave_pool"][:1], 512, 4, 4)
    assert shapes["loss2/ave_pool"][1] == 528
    by_name = {entry["name"]: entry for entry in net}
    assert by_name["loss1/ave_pool"]["bottoms"] == ["inception_4a/output"]
    assert by_name["loss2/ave_pool"]["bottoms"] == ["inception_4d/output"]
    weights = {
        n: e.get("loss_weight") for n, e in by_name.items() if e["type"] == "SoftmaxWithLoss"
    }
    assert weights == {"loss1/loss": 0.3, "loss2/loss": 0.3, "loss3/loss3": 1.0}
    accuracies = [e for e in net if e["type"] == "Accuracy"]
    assert len(accuracies) == 6 and all(e["phase"] == "TEST" for e in accuracies)
    assert "prob" not in shapes


def test_alexnet_shapes() -> None:
    shapes = cn.blob_shapes(cn.bvlc_alexnet(batch=1))
    assert shapes["conv1"] == (1, 96, 55, 55)
    assert shapes["pool1"] == (1, 96, 27, 27)
    assert shapes["pool2"] == (1, 256, 13, 13)
    assert shapes["pool5"] == (1, 256, 6, 6)
    assert shapes["fc6"] == (1, 4096)
    assert shapes["prob"] == (1, 1000)
    assert cn.weight_shapes(cn.bvlc_alexnet())["conv2"] == [(256, 48, 5, 5), (256,)]


def test_pooling_output_rule() -> None:
    assert cn.pool_out(112, 3, 2, 0) == 56  # ceil: floor would give 55
    assert cn.pool_out(5, 2, 2, 0) == 3
    assert cn.pool_out(5, 2, 2, 1) == 3  # ceil gives 4; the 4th window would start at 6 >= 5 + 1
    assert cn.pool_out(6, 3, 3, 2) == 3  # ceil gives 4; the 4th window would start at 9 >= 8
    assert cn.pool_out(14, 5, 3, 0) == 4
    assert cn.conv_out(227, 11, 4, 0) == 55


# ---------------------------------------------------------------------------------------------
# Forward pass against loop-by-loop computations


def loop_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry, group: int):
    kh, kw, sh, sw, ph, pw = geometry
    n_, c, h, wd = x.shape
    o = w.shape[0]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    cg, og = c // group, o // group
    out = np.zeros((n_, o, oh, ow))
    for n in range(n_):
        for oc in range(o):
            g = oc // og
            for y in range(oh):
                for xx in range(ow):
                    acc = 0.0 if b is None else float(b[oc])
                    for ci in range(cg):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy, ix = y * sh - ph + ky, xx * sw - pw + kx
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += w[oc, ci, ky, kx] * x[n, g * cg + ci, iy, ix]
                    out[n, oc, y, xx] = acc
    return out


def loop_pool(x: np.ndarray, pool: str, k: int, s: int, p: int) -> np.ndarray:
    """Caffe's PoolingLayer::Forward_cpu loops, with the output size computed in floats."""
    n_, c_, h, w = x.shape
    sizes = []
    for size in (h, w):
        pooled = math.ceil(float(size + 2 * p - k) / s) + 1
        if p and (pooled - 1) * s >= size + p:
            pooled -= 1
        sizes.append(pooled)
    out = np.zeros((n_, c_, *sizes))
    for n in range(n_):
        for c in range(c_):
            for py in range(sizes[0]):
                for px in range(sizes[1]):
                    hs, ws = py * s - p, px * s - p
                    if pool == "MAX":
                        he, we = min(hs + k, h), min(ws + k, w)
                        hs, ws = max(hs, 0), max(ws, 0)
                        out[n, c, py, px] = max(
                            x[n, c, i, j] for i in range(hs, he) for j in range(ws, we)
                        )
                    else:
                        he, we = min(hs + k, h + p), min(ws + k, w + p)
                        area = (he - hs) * (we - ws)
                        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                        total = sum(x[n, c, i, j] for i in range(hs, he) for j in range(ws, we))
                        out[n, c, py, px] = total / area
    return out


def loop_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    out = np.zeros_like(x)
    n_, c_, h, w = x.shape
    pre = (size - 1) // 2
    for n in range(n_):
        for c in range(c_):
            for i in range(h):
                for j in range(w):
                    sq = sum(
                        x[n, cc, i, j] ** 2 for cc in range(c - pre, c - pre + size) if 0 <= cc < c_
                    )
                    out[n, c, i, j] = x[n, c, i, j] / (k + alpha / size * sq) ** beta
    return out


def loop_fc(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    flat = x.reshape(x.shape[0], -1)
    out = np.zeros((x.shape[0], w.shape[0]))
    for n in range(flat.shape[0]):
        for o in range(w.shape[0]):
            out[n, o] = b[o] + sum(w[o, i] * flat[n, i] for i in range(flat.shape[1]))
    return out


def loop_softmax(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for n in range(x.shape[0]):
        exps = [math.exp(v) for v in x[n]]
        out[n] = [e / sum(exps) for e in exps]
    return out


def test_average_pooling_by_hand() -> None:
    # Ones, 4x4, AVE 3/2 pad 1: the divisor counts padding up to size + pad, not beyond.
    got = cn.pooling(
        np.ones((1, 1, 4, 4)), {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}
    )
    want = [[4 / 9, 6 / 9, 2 / 6], [6 / 9, 1, 3 / 6], [2 / 6, 3 / 6, 1 / 4]]
    np.testing.assert_allclose(got[0, 0], want)
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    got = cn.pooling(x, {"pool": "AVE", "kernel_size": 2, "stride": 2, "pad": 1})
    np.testing.assert_allclose(got[0, 0], [[0.25, 0.5], [0.75, 1.0]])
    got = cn.pooling(
        np.arange(25.0).reshape(1, 1, 5, 5), {"pool": "MAX", "kernel_size": 2, "stride": 2}
    )
    np.testing.assert_allclose(got[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize(
    ("size", "k", "s", "p"), [(5, 2, 2, 1), (6, 3, 3, 2), (7, 3, 2, 1), (5, 3, 2, 0)]
)
def test_pooling_against_loops(pool: str, size: int, k: int, s: int, p: int) -> None:
    x = np.random.default_rng(size + k).standard_normal((2, 3, size, size)) - 1.0  # mostly < 0
    got = cn.pooling(x, {"pool": pool, "kernel_size": k, "stride": s, "pad": p})
    np.testing.assert_allclose(got, loop_pool(x, pool, k, s, p), rtol=1e-12)


@pytest.mark.parametrize(
    ("geometry", "group", "shape"),
    [
        ((3, 3, 1, 1, 1, 1), 1, (2, 3, 6, 5)),
        ((3, 2, 2, 1, 0, 1), 2, (1, 4, 7, 6)),
        ((1, 1, 1, 1, 0, 0), 2, (2, 4, 3, 3)),
        ((1, 1, 2, 2, 0, 0), 1, (1, 3, 5, 5)),
        ((5, 5, 3, 3, 2, 2), 1, (1, 2, 8, 8)),
    ],
)
def test_convolution_against_loops(geometry, group: int, shape) -> None:
    rng = np.random.default_rng(0)
    kh, kw, sh, sw, ph, pw = geometry
    x = rng.standard_normal(shape)
    w = rng.standard_normal((6, shape[1] // group, kh, kw))
    b = rng.standard_normal(6)
    params = {"num_output": 6, "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw}
    params.update(pad_h=ph, pad_w=pw, group=group)
    np.testing.assert_allclose(
        cn.convolution(x, [w, b], params), loop_conv(x, w, b, geometry, group), atol=1e-12
    )
    out32 = cn.convolution(x.astype(np.float32), [w, b], params)
    assert out32.dtype == np.float32


def test_tiny_net_forward_against_loops() -> None:
    net = cn.tiny_net()
    weights = cn.random_weights(net, seed=3, dtype=np.float64)
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 5)) * 3
    got = cn.caffe_forward(net, weights, x)
    layers = cn.caffe_forward(net, weights, x, by_layer=True)

    w1, b1 = weights["conv1"]
    conv1 = loop_conv(x, w1, b1, (3, 3, 1, 1, 1, 1), group=2)
    np.testing.assert_allclose(layers["conv1"], conv1, atol=1e-12)
    relu1 = np.maximum(conv1, 0)
    np.testing.assert_allclose(got["conv1"], relu1, atol=1e-12)  # in place
    norm1 = loop_lrn(relu1, 3, 0.5, 0.75, 2.0)
    np.testing.assert_allclose(got["norm1"], norm1, rtol=1e-12)
    assert not np.allclose(norm1, relu1, rtol=0.05)  # LRN matters here
    pool_max = loop_pool(norm1, "MAX", 2, 2, 0)
    pool_ave = loop_pool(norm1, "AVE", 2, 2, 1)
    assert pool_max.shape == pool_ave.shape == (1, 4, 3, 3)
    np.testing.assert_allclose(got["pool_max"], pool_max, rtol=1e-12)
    np.testing.assert_allclose(got["pool_ave"], pool_ave, rtol=1e-12)
    cat = np.concatenate([pool_max, pool_ave], axis=1)
    np.testing.assert_allclose(got["cat"], cat, rtol=1e-12)
    np.testing.assert_allclose(got["sum"], pool_max + pool_ave, rtol=1e-12)
    w2, b2 = weights["conv2"]
    conv2 = loop_conv(cat, w2, b2, (2, 3, 2, 2, 0, 1), group=1)
    assert conv2.shape == (1, 3, 1, 2)
    np.testing.assert_allclose(layers["conv2"], conv2, atol=1e-12)
    mean_s, var_s, s = weights["bn_conv2"]
    gamma, beta = weights["scale_conv2"]
    bn = np.zeros_like(conv2)
    for c in range(3):
        bn[0, c] = (conv2[0, c] - mean_s[c] / s[0]) / math.sqrt(var_s[c] / s[0] + 1e-5)
    np.testing.assert_allclose(layers["bn_conv2"], bn, atol=1e-12)
    scaled = bn * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(got["conv2"], scaled, atol=1e-12)
    fc = loop_fc(scaled, *weights["fc"])
    np.testing.assert_allclose(got["fc"], fc, atol=1e-12)
    np.testing.assert_allclose(got["prob"], loop_softmax(fc), atol=1e-12)
    shapes = cn.blob_shapes(net)
    assert {k: v.shape for k, v in got.items()} == shapes


def test_small_resnet_forward() -> None:
    net = cn.small_resnet(batch=2)
    weights = cn.random_weights(net, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    got = cn.caffe_forward(net, weights, x)
    assert {k: v.shape for k, v in got.items()} == cn.blob_shapes(net)
    assert all(v.dtype == np.float32 for v in got.values())
    np.testing.assert_allclose(got["pool5"][:, :, 0, 0], got["res3a"].mean(axis=(2, 3)), rtol=1e-5)
    layers = cn.caffe_forward(net, weights, x, by_layer=True)
    np.testing.assert_allclose(
        layers["res3a"], got["res3a_branch1"] + layers["scale3a_branch2b"], rtol=1e-5
    )
    assert (got["res3a"] >= 0).all() and (layers["res3a"] < 0).any()
    np.testing.assert_allclose(got["prob"].sum(axis=1), 1.0, rtol=1e-5)


def test_googlenet_train_val_forward() -> None:
    net = cn.bvlc_googlenet(deploy=False)
    weights = cn.random_weights(net, seed=0)
    assert sum(b.size for bs in weights.values() for b in bs) == 13_378_280
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    got = cn.caffe_forward(net, weights, x)
    shapes = cn.blob_shapes(net)
    for top in ("loss1/classifier", "loss2/classifier", "loss3/classifier"):
        assert got[top].shape == (1, 1000) and np.isfinite(got[top]).all()
    assert not any(k.startswith(("loss3/loss", "loss1/top", "loss3/top")) for k in got)
    assert all(got[k].shape[1:] == shapes[k][1:] for k in got if k != "label")


# ---------------------------------------------------------------------------------------------
# Prototxt text through a small parser written here

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}:]|[^\s{}:"#]+|#[^\n]*')


def parse(text: str) -> list[tuple[str, object]]:
    """Protobuf text format as nested (key, value) lists; checks braces and colons."""
    tokens = [t for t in TOKEN.findall(text) if not t.startswith("#")]
    stack: list[list[tuple[str, object]]] = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "}":
            assert len(stack) > 1, "unbalanced }"
            stack.pop()
            i += 1
            continue
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token), token
        if tokens[i + 1] == "{":
            child: list[tuple[str, object]] = []
            stack[-1].append((token, child))
            stack.append(child)
            i += 2
        else:
            assert tokens[i + 1] == ":" and tokens[i + 2] not in "{}:", tokens[i : i + 3]
            value = tokens[i + 2]
            stack[-1].append((token, value[1:-1] if value.startswith('"') else value))
            i += 3
    assert len(stack) == 1, "unbalanced {"
    return stack[0]


def values(fields: list[tuple[str, object]], key: str) -> list:
    return [v for k, v in fields if k == key]


@pytest.mark.parametrize(
    ("net", "style", "inputs"),
    [
        (cn.bvlc_alexnet(), "layer", "layer"),
        (cn.bvlc_alexnet(), "layer", "input_shape"),
        (cn.bvlc_alexnet(), "layers", "input_dim"),
        (cn.bvlc_googlenet(), "layer", "input_dim"),
        (cn.bvlc_googlenet(deploy=False), "layer", None),
        (cn.bvlc_googlenet(deploy=False), "layers", None),
        (cn.small_resnet(), "layer", None),
        (cn.small_resnet(), "layer", "input_shape"),
        (cn.tiny_net(), "layer", None),
    ],
)
def test_prototxt_round_trip(net: cn.Net, style: str, inputs: str | None) -> None:
    text = cn.to_prototxt(net, "Net", style=style, inputs=inputs)
    fields = parse(text)
    assert values(fields, "name") == ["Net"]
    inputs = inputs or ("layer" if style == "layer" else "input_dim")
    header = inputs != "layer" and net[0]["type"] == "Input"
    written = [e for e in net if not (header and e["type"] == "Input")]
    blocks = values(fields, style)
    assert not values(fields, "layers" if style == "layer" else "layer")
    assert len(blocks) == len(written)
    for block, entry in zip(blocks, written, strict=True):
        assert values(block, "name") == [entry["name"]]
        want = entry["type"] if style == "layer" else cn.V1_TYPES[entry["type"]]
        assert values(block, "type") == [want]
        assert values(block, "bottom") == entry["bottoms"]
        assert values(block, "top") == entry["tops"]
        if entry["type"] == "Convolution":
            (message,) = values(block, "convolution_param")
            assert values(message, "num_output") == [str(entry["params"]["num_output"])]
        if "phase" in entry:
            (include,) = values(block, "include")
            assert include == [("phase", entry["phase"])]
        if style == "layers" and "param" in entry:
            assert values(block, "blobs_lr") == ["1", "2"]
    if header:
        assert values(fields, "input") == ["data"]
        dims = [str(d) for d in net[0]["params"]["shape"]["dim"]]
        if inputs == "input_dim":
            assert values(fields, "input_dim") == dims
        else:
            (shape,) = values(fields, "input_shape")
            assert values(shape, "dim") == dims
    assert text.lstrip().startswith("#")


def test_prototxt_details() -> None:
    text = cn.to_prototxt(cn.small_resnet(), "SmallResNet")
    assert "kernel_h: 3" in text and "pad_w: 1" in text and "global_pooling: true" in text
    assert "use_global_stats: true" in text and "bias_term: true" in text
    assert "operation: SUM" in text and "pool: AVE" in text
    assert "# 3x3 written as kernel_h/kernel_w" in text and "\n# residual block 3a\n" in text
    alex = cn.to_prototxt(cn.bvlc_alexnet(), "AlexNet", style="layers")
    assert "type: INNER_PRODUCT" in alex and "input_dim: 227" in alex and "group: 2" in alex
    assert "alpha: 0.0001" in alex and "beta: 0.75" in alex and "local_size: 5" in alex
    goog = cn.to_prototxt(cn.bvlc_googlenet(deploy=False), "GoogleNet")
    assert "loss_weight: 0.3" in goog and "backend: LMDB" in goog and "mean_value: 104" in goog
    assert 'source: "examples/imagenet/ilsvrc12_train_lmdb"' in goog and "top_k: 5" in goog
    with pytest.raises(ValueError, match="BatchNorm"):
        cn.to_prototxt(cn.small_resnet(), "SmallResNet", style="layers")
    with pytest.raises(ValueError, match="Input"):
        cn.to_prototxt(cn.bvlc_alexnet(), "AlexNet", style="layers", inputs="layer")
