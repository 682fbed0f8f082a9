"""Random but realistic weights for a torchvision model, so that copying them is a real check.

torch is imported by the function, so importing this module does not need torch.
"""

from __future__ import annotations

from typing import Any


def randomise(torch_model: Any, seed: int, images: Any) -> None:
    """Give every parameter that torchvision initialises to one constant random values (a
    zero one, such as a bias, N(0, 0.2^2); another, such as a norm's weight or a layer scale,
    U(0.5, 1.5)), then every batch norm running statistics measured on `images` (a
    training-mode pass with cumulative averages) and perturbed at random, per channel. A copy
    that swaps or drops any of them then changes the output, eval mode is a real check, and the
    activations keep their scale through the network (purely random statistics can make the
    output depend on biases alone)."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def uniform(like: Any, low: float, high: float) -> Any:
        return low + (high - low) * torch.rand(like.shape, generator=generator)

    def normal(like: Any, std: float) -> Any:
        return std * torch.randn(like.shape, generator=generator)

    norms = [
        m for m in torch_model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    with torch.no_grad():
        for parameter in torch_model.parameters():
            first = parameter.flatten()[0]
            if bool((parameter == first).all()):
                if float(first) == 0.0:
                    parameter.copy_(normal(parameter, 0.2))
                else:
                    parameter.copy_(uniform(parameter, 0.5, 1.5))
        momenta = [module.momentum for module in norms]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None  # cumulative: the plain average of what it sees
        torch_model.train()
        torch_model(images)
        for module, momentum in zip(norms, momenta, strict=True):
            std = module.running_var.sqrt()
            module.running_mean.add_(std * normal(std, 0.2))
            module.running_var.mul_(uniform(std, 0.7, 1.4))
            module.momentum = momentum
    torch_model.eval()
