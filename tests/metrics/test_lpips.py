"""LPIPS (VGG16, lpips v0.1) from saved random-weight files: equal to the package's formula computed by hand
(float64, from the saved tensors), equal to the ``lpips`` package itself where it is installed (its
torchvision import replaced by a stand-in holding the same random VGG16), and loud errors for bad files."""

import importlib.metadata
import importlib.util
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from medsyn.metrics.features.vgg16 import VGG16FeatureNet, vgg16_convolutions
from medsyn.metrics.lpips import (
    CHANNELS,
    LINEAR_LAYERS_IN_PACKAGE,
    MIN_IMAGE_SIZE,
    load_lpips_vgg16,
    load_vgg16_convolutions,
    lpips_distances,
    lpips_linear_layers_file,
    lpips_vgg16_of,
    read_linear_layers,
)

# torchvision vgg16().features: conv indices, and after which conv (1-based count) a 2x2 max pool follows
_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_POOL_AFTER = (2, 4, 7, 10)
_TAP_AFTER = (2, 4, 7, 10, 13)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A random VGG16 backbone saved in torchvision's layout (features.* + a tiny stand-in for classifier.*,
    which the loader must ignore) and random non-negative linear layers saved as the lpips package does."""
    folder = tmp_path_factory.mktemp("lpips_weights")
    torch.manual_seed(0)
    convolutions = vgg16_convolutions()
    state = {f"features.{key}": value for key, value in convolutions.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, folder / "vgg16_random.pth")
    linear = {f"lin{number}.model.1.weight": torch.rand(1, channels, 1, 1) for number, channels in enumerate(CHANNELS)}
    torch.save(linear, folder / "lpips_linear_random.pth")
    return folder / "vgg16_random.pth", folder / "lpips_linear_random.pth", state, linear


def _lpips_by_hand(state, linear, first, second):
    """The lpips package's VGG/v0.1 forward written out in float64 from the saved tensors."""
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def activations(images):
        x = (2 * images.double().expand(-1, 3, -1, -1) - 1 - shift) / scale
        taps = []
        for count, index in enumerate(_CONVS, start=1):
            x = F.relu(F.conv2d(x, state[f"features.{index}.weight"].double(), state[f"features.{index}.bias"].double(),
                                padding=1))
            if count in _TAP_AFTER:
                taps.append(x)
            if count in _POOL_AFTER:
                x = F.max_pool2d(x, 2, 2)
        return taps

    total = torch.zeros(len(first), dtype=torch.float64)
    for number, (a, b) in enumerate(zip(activations(first), activations(second))):
        a = a / (torch.sqrt((a**2).sum(dim=1, keepdim=True)) + 1e-10)
        b = b / (torch.sqrt((b**2).sum(dim=1, keepdim=True)) + 1e-10)
        w = linear[f"lin{number}.model.1.weight"].double().view(1, -1, 1, 1)
        total += (w * (a - b) ** 2).sum(dim=1).mean(dim=(1, 2))
    return total


@pytest.mark.parametrize("channels,size", [(3, 24), (1, 16), (3, 20)])  # 20: odd sizes met by the pools
def test_lpips_equals_the_package_formula_by_hand(weight_files, channels, size):
    vgg_path, linear_path, state, linear = weight_files
    network = load_lpips_vgg16(vgg_path, linear_path)
    generator = torch.Generator().manual_seed(size)
    first = torch.rand(3, channels, size, size, generator=generator)
    second = (first + 0.2 * torch.randn(3, channels, size, size, generator=generator)).clamp(0, 1)
    distances = lpips_distances(network, first, second, batch_size=2)
    expected = _lpips_by_hand(state, linear, first, second)
    assert distances.shape == (3,) and distances.dtype == torch.float32
    torch.testing.assert_close(distances.double(), expected, rtol=1e-4, atol=1e-6)
    assert (distances > 0).all()
    # a distance: 0 for identical images, symmetric, and independent of the batch size
    assert lpips_distances(network, first, first).abs().max() < 1e-6
    torch.testing.assert_close(lpips_distances(network, second, first), distances, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(lpips_distances(network, first, second, batch_size=3), distances)


def test_grey_images_are_scored_as_their_rgb_copies(weight_files):
    vgg_path, linear_path, _state, _linear = weight_files
    network = load_lpips_vgg16(vgg_path, linear_path)
    generator = torch.Generator().manual_seed(1)
    first, second = torch.rand(2, 1, 16, 16, generator=generator), torch.rand(2, 1, 16, 16, generator=generator)
    torch.testing.assert_close(lpips_distances(network, first, second),
                               lpips_distances(network, first.repeat(1, 3, 1, 1), second.repeat(1, 3, 1, 1)))


def test_the_backbone_of_a_loaded_vgg16_feature_net_is_shared_not_read_again(weight_files):
    vgg_path, linear_path, _state, _linear = weight_files
    with torch.device("meta"):
        feature_net = VGG16FeatureNet()  # its classifier stays on meta: LPIPS never touches it
    feature_net.features = load_vgg16_convolutions(vgg_path)
    network = lpips_vgg16_of(feature_net, linear_path)
    assert network.convolutions[0] is feature_net.features[0]
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(lpips_distances(network, images, images.flip(0)),
                               lpips_distances(load_lpips_vgg16(vgg_path, linear_path), images, images.flip(0)))


def _installed_lpips():
    try:
        importlib.metadata.distribution("lpips")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed_lpips(), reason="the lpips package is not installed (make install adds it with "
                    "--no-deps); test_lpips_equals_the_package_formula_by_hand is the oracle then")
def test_lpips_equals_the_lpips_package_with_its_shipped_linear_layers(weight_files, monkeypatch):
    """lpips.LPIPS(net="vgg", pnet_rand=True) builds its trunk from torchvision.models.vgg16(pretrained=False):
    a stand-in module returns the random VGG16 saved above (torchvision itself cannot load beside this torch).
    Its linear layers come from the file in its wheel, which medsyn must find and read the same."""
    vgg_path, _linear_path, _state, _linear = weight_files
    convolutions = load_vgg16_convolutions(vgg_path)

    def vgg16(pretrained=False, **_):
        assert not pretrained, "the test must not ask for downloaded weights"
        return types.SimpleNamespace(features=convolutions)

    models = types.ModuleType("torchvision.models")
    models.vgg16 = vgg16
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    for name in [name for name in sys.modules if name == "lpips" or name.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)
    assert importlib.util.find_spec("lpips") is not None
    import lpips

    try:
        package = lpips.LPIPS(pretrained=True, net="vgg", version="0.1", pnet_rand=True, verbose=False)
        assert lpips_linear_layers_file().samefile(
            importlib.metadata.distribution("lpips").locate_file(LINEAR_LAYERS_IN_PACKAGE))
        ours = load_lpips_vgg16(vgg_path)  # linear layers: the installed package's file
        generator = torch.Generator().manual_seed(3)
        first = torch.rand(4, 3, 32, 32, generator=generator)
        second = (first + 0.3 * torch.randn(4, 3, 32, 32, generator=generator)).clamp(0, 1)
        with torch.no_grad():
            expected = package(first, second, normalize=True).flatten()
        torch.testing.assert_close(lpips_distances(ours, first, second), expected, rtol=1e-5, atol=1e-6)
        for number in range(len(CHANNELS)):
            torch.testing.assert_close(ours.linear[number], getattr(package, f"lin{number}").model[1].weight)
    finally:
        for name in [name for name in sys.modules if name == "lpips" or name.startswith("lpips.")]:
            del sys.modules[name]  # never leave a package imported against the stand-in torchvision


def test_linear_layer_files_are_checked(tmp_path, weight_files):
    _vgg_path, _linear_path, _state, linear = weight_files
    negative = dict(linear)
    negative["lin2.model.1.weight"] = -linear["lin2.model.1.weight"]
    torch.save(negative, tmp_path / "negative.pth")
    with pytest.raises(ValueError, match=r"negative\.pth: LPIPS linear layer 2 must be finite and >= 0"):
        read_linear_layers(tmp_path / "negative.pth")
    missing = {key: value for key, value in linear.items() if not key.startswith("lin4")}
    torch.save(missing, tmp_path / "alex.pth")
    with pytest.raises(ValueError, match=r"alex\.pth must hold exactly .*lin4\.model\.1\.weight"):
        read_linear_layers(tmp_path / "alex.pth")
    wrong_shape = {**linear, "lin0.model.1.weight": torch.rand(1, 32, 1, 1)}
    torch.save(wrong_shape, tmp_path / "wrong_shape.pth")
    with pytest.raises(ValueError, match=r"wrong_shape\.pth: LPIPS VGG16 linear layers must be 5 tensors"):
        read_linear_layers(tmp_path / "wrong_shape.pth")


def test_vgg16_file_of_another_architecture_is_refused(tmp_path):
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "resnet_like.pth")
    with pytest.raises(ValueError, match=r"VGG16 weights file .*resnet_like\.pth does not match.*missing key"):
        load_vgg16_convolutions(tmp_path / "resnet_like.pth")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_vgg16_convolutions(tmp_path / "absent.pth")


def test_missing_lpips_package_says_how_to_install_it(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps lpips==0\.1\.4"):
        lpips_linear_layers_file()


def test_bad_images_are_refused(weight_files):
    vgg_path, linear_path, _state, _linear = weight_files
    network = load_lpips_vgg16(vgg_path, linear_path)
    small = torch.rand(1, 3, MIN_IMAGE_SIZE - 1, MIN_IMAGE_SIZE - 1)
    with pytest.raises(ValueError, match=r"at least 16x16"):
        lpips_distances(network, small, small)
    with pytest.raises(ValueError, match="grey or RGB"):
        lpips_distances(network, torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        lpips_distances(network, torch.rand(1, 3, 16, 16), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"second must lie in \[0, data_range=1"):
        lpips_distances(network, torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) + 2)
