"""fashion_fc: mnist5k_fc's network and structural defaults, only the period scaled to the data."""

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.data import registry


def test_fashion_fc_is_mnist5k_fc_with_the_period_scaled():
    fash = load_config(find_model("fashion_fc")).to_dict()
    base = load_config(find_model("mnist5k_fc")).to_dict()
    assert fash["data"]["dataset"] == "fashion" and registry.get("fashion").input_shape == (1, 28, 28)
    # the period is the same fraction of the training set (a tenth) and of the test set (a fifth)
    assert fash["schedule"]["train_per_period"] / 60000 == base["schedule"]["train_per_period"] / 4000
    assert fash["schedule"]["test_per_period"] / 10000 == base["schedule"]["test_per_period"] / 1000
    for d in (fash, base):
        for key in ("name", "description"):
            d.pop(key)
        d["data"].pop("dataset")
        d["schedule"].pop("train_per_period")
        d["schedule"].pop("test_per_period")
    # everything else, layers and structural constants included, is mnist5k_fc's
    assert fash == base
