"""One registration place: a method registers itself where it is defined, with its table column name."""

from __future__ import annotations

import pytest
import torch

from weakloc.errors import ConfigError
from weakloc.experiment.report import table2_markdown
from weakloc.methods import METHODS, Localizer, LocalizerOutput, MethodDefaults, build_model, register_method


def test_the_three_methods_are_registered_with_their_paper_columns():
    assert {name: cls.short_name for name, cls in METHODS.items()} == {"gradcam": "GC", "patches": "PT",
                                                                       "attention": "AT"}
    for name, cls in METHODS.items():
        assert cls.__module__ == f"weakloc.methods.{name}"  # registered in its own file
        assert set(cls.defaults) == {"A", "B", "C"}


def test_the_contract_is_enforced():
    class NoLocalize(Localizer):
        name, short_name = "broken", "BR"

        def forward(self, images):
            return {}

        def loss(self, outputs, batch):
            return torch.zeros(())

    with pytest.raises(TypeError, match="abstract"):
        NoLocalize("A")


@pytest.fixture
def constant_method():
    @register_method
    class Constant(Localizer):
        """A map of 0.5 everywhere: the smallest method that satisfies the contract."""

        name, short_name = "constant", "K"
        defaults = {s: MethodDefaults(lr=1e-3, batch_size=2, epochs=1) for s in "ABC"}

        def __init__(self, setup: str = "A") -> None:
            super().__init__(setup)
            self.bias = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return {"map_logits": self.bias.expand(len(images), 2, 4, 4)}

        def loss(self, outputs, batch):
            return outputs["map_logits"].sum() * 0

        def localize(self, images):
            fake = torch.full((len(images), 4, 4), 0.5)
            return LocalizerOutput(fake.mean(dim=(1, 2)), fake)

    yield Constant
    METHODS.pop("constant")


def test_a_new_method_is_one_decorated_class(constant_method):
    model = build_model("constant", "B")
    assert isinstance(model, constant_method) and model.map_size(32) == 4
    results = {"constant-A": {"method": "constant", "setup": "A", "localization": {"iou_lg": 12.5, "pbca_lg": 50.0},
                              "detection": {"ap": 50.0}},
               "patches-A": {"method": "patches", "setup": "A", "localization": {"iou_lg": 30.0, "pbca_lg": 80.0},
                             "detection": {"ap": 90.0}}}
    header = table2_markdown(results).splitlines()[0]
    assert "IoU K" in header and "IoU PT" in header and header.index("IoU K") < header.index("IoU PT")
    with pytest.raises(ValueError, match="registered twice"):
        register_method(type("Other", (constant_method,), {}))
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        build_model("nope", "A")
