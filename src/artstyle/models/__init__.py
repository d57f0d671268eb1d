"""Stylizer networks, built from a :class:`~artstyle.config.ModelConfig`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..errors import ModelError
from .halfres import HalfResNet
from .johnson import TransformerNet

ARCHITECTURES: dict[str, type[nn.Module]] = {"johnson": TransformerNet, "halfres": HalfResNet}


def build_model(config: ModelConfig) -> nn.Module:
    try:
        cls = ARCHITECTURES[config.arch]
    except KeyError:
        raise ModelError(f"unknown architecture {config.arch!r}; known: {', '.join(ARCHITECTURES)}") from None
    return cls(channels=config.channels, residual_blocks=config.residual_blocks,
               movements=max(1, len(config.movements)) if config.conditional else 1)


__all__ = ["ARCHITECTURES", "HalfResNet", "TransformerNet", "build_model"]
