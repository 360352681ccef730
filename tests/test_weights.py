import pytest
import torch

from pipeline.weights import WeightsUnavailable, resolve


def test_none_fetches_nothing():
    assert resolve("maskrcnn_resnet50_fpn", "none") == {"kind": "none", "arch": "maskrcnn_resnet50_fpn"}


def test_local_path_is_hashed(tmp_path):
    p = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(1)}, p)
    info = resolve("maskrcnn_resnet50_fpn", str(p))
    assert info["kind"] == "path" and len(info["sha256"]) == 64


def test_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        resolve("maskrcnn_resnet50_fpn", str(tmp_path / "nope.pth"))


def test_coco_offline_says_how_to_prestage(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise OSError("network unreachable")

    # Whether or not this machine has internet, the failure path must explain itself.
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable) as err:
        resolve("maskrcnn_resnet50_fpn", "coco")
    msg = str(err.value)
    assert "maskrcnn_resnet50_fpn_coco" in msg and str(tmp_path) in msg and "weights: none" in msg
