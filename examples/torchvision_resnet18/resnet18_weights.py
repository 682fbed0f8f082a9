"""torchvision's ResNet-18 ImageNet weights as a file netspec reads, or a stand-in for them.

    python resnet18_weights.py OUT.pth                        # the real weights (downloads)
    python resnet18_weights.py --stand-in OUT.safetensors     # a STAND-IN: random values

- `OUT.pth`: `torchvision.models.resnet18(weights="IMAGENET1K_V1").state_dict()` saved with
  `torch.save` (needs torch and torchvision, the `bench` extra; torchvision downloads the
  45 MB file to ~/.cache/torch once).
- `--stand-in`: no torch needed. A `.safetensors` file holding exactly the tensors of that
  state_dict, by torchvision's names and shapes, with random values: the names come from
  netspec's name map for the spec (netspec/weights/maps/resnet18.torch.json: netspec layer ->
  torchvision module), the shapes from the compiled spec, in PyTorch's layout (conv
  (out, in, kh, kw) from netspec's (kh, kw, in, out), dense (out, in)); each batch norm has
  weight, bias, running_mean, running_var and num_batches_tracked (int64). It is NOT trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import netspec

SPEC = Path(__file__).resolve().parent.parent.parent / "specs" / "resnet18.yaml"
NAME_MAP = Path(netspec.__file__).parent / "weights" / "maps" / "resnet18.torch.json"
BATCHNORM = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def variable_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """netspec node -> {variable: shape} of the compiled spec (1000 classes), built abstractly."""
    from flax import nnx

    compiled = netspec.compile(SPEC, num_classes=1000)
    network = compiled.network_class()
    abstract = nnx.eval_shape(lambda: network(rngs=nnx.Rngs(0)))
    nodes: dict[str, dict[str, tuple[int, ...]]] = {}
    for kind in (nnx.Param, nnx.BatchStat):
        for path, value in nnx.to_flat_state(nnx.state(abstract, kind)):
            *node, variable = (str(part) for part in path)
            nodes.setdefault("/".join(node), {})[variable] = tuple(value.get_value().shape)
    return nodes


def stand_in(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = json.loads(NAME_MAP.read_text(encoding="utf-8"))["layers"]
    shapes = variable_shapes()
    tensors: dict[str, np.ndarray] = {}
    for node, module in layers.items():
        variables = shapes[node]
        if "mean" in variables:  # batch norm
            (channels,) = variables["scale"]
            values = {
                "scale": rng.uniform(0.8, 1.2, channels),
                "bias": rng.normal(0.0, 0.05, channels),
                "mean": rng.normal(0.0, 0.05, channels),
                "var": rng.uniform(0.5, 1.5, channels),
            }
            for ours, theirs in BATCHNORM.items():
                tensors[f"{module}.{theirs}"] = values[ours].astype(np.float32)
            tensors[f"{module}.num_batches_tracked"] = np.array(int(rng.integers(1, 10**6)))
            continue
        kernel = variables["kernel"]
        fan_in = int(np.prod(kernel[:-1]))
        weight = rng.standard_normal(kernel, dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        # conv HWIO -> OIHW, dense (in, out) -> (out, in)
        weight = weight.transpose(3, 2, 0, 1) if weight.ndim == 4 else weight.T
        tensors[f"{module}.weight"] = np.ascontiguousarray(weight)
        if "bias" in variables:
            tensors[f"{module}.bias"] = rng.uniform(-0.01, 0.01, variables["bias"]).astype(
                np.float32
            )
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="OUT.pth (real) or OUT.safetensors (--stand-in)")
    parser.add_argument("--stand-in", action="store_true", help="random values, no torch needed")
    parser.add_argument("--seed", type=int, default=0, help="stand-in: the random seed")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.stand_in:
        from safetensors.numpy import save_file

        tensors = stand_in(args.seed)
        save_file(tensors, str(args.out), metadata={"format": "pt"})
        values = sum(t.size for t in tensors.values())
        print(
            f"wrote {args.out}: STAND-IN for torchvision's resnet18 ImageNet weights, random "
            f"values (NOT trained) under its {len(tensors)} state_dict names ({values:,} values)"
        )
        return
    try:
        import torch
        import torchvision
    except ImportError:
        raise SystemExit(
            "error: the real weights need torch and torchvision (pip install -e '.[bench]'); "
            "or write a stand-in with --stand-in OUT.safetensors"
        ) from None
    try:
        model = torchvision.models.resnet18(
            weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        )
    except OSError as error:  # urllib's URLError, a failed or refused download
        raise SystemExit(
            f"error: cannot download torchvision's resnet18 weights ({error}); give a weights "
            "file (RESNET18_WEIGHTS=... for run.sh) or write a stand-in with --stand-in"
        ) from None
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}: torchvision's resnet18 ImageNet weights (IMAGENET1K_V1)")


if __name__ == "__main__":
    main()
