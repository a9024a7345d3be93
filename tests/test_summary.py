"""summary(): the paper's neuron counts (section 3.5) and the cost of each layer."""
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex import models, nn

PAPER_NEURONS = {"conv1": 290_400, "conv2": 186_624, "conv3": 64_896, "conv4": 64_896, "conv5": 43_264,
                 "fc6": 4096, "fc7": 4096, "fc8": 1000}


@pytest.fixture(scope="module")
def paper_tables():
    """The paper network's table in the two-column and the grouped form (weights left at zero)."""
    return [ta.summary(models.alexnet(columns=c, init=None), (3, 227, 227), print_table=False) for c in (2, 1)]


def test_neurons_per_layer_are_the_papers(paper_tables):
    for table in paper_tables:
        neurons = {r.layer: r.neurons for r in table.rows if r.neurons}
        assert neurons == PAPER_NEURONS
        assert next(r for r in table.rows if r.layer == "conv1").output_shape == (96, 55, 55)  # not 253,440


def test_both_forms_give_the_same_table_but_for_the_devices(paper_tables):
    two, one = paper_tables
    assert [(r.layer, r.output_shape, r.parameters, r.multiply_adds) for r in two.rows] == \
        [(r.layer, r.output_shape, r.parameters, r.multiply_adds) for r in one.rows]
    assert two.rows[0].devices == ("cpu", "cpu") and one.rows[0].devices == ("cpu",)


def test_parameters_and_multiply_adds(paper_tables):
    rows = {r.layer: r for r in paper_tables[0].rows}
    assert paper_tables[0].total_parameters == 60_965_224
    assert rows["conv1"].multiply_adds == 55 * 55 * 96 * (11 * 11 * 3)
    assert rows["conv2"].multiply_adds == 27 * 27 * 256 * (5 * 5 * 48)  # each kernel sees its column's 48 maps
    assert rows["conv3"].multiply_adds == 13 * 13 * 384 * (3 * 3 * 256)  # and conv3 both columns' 256
    assert rows["fc6"].parameters == 9216 * 4096 + 4096
    assert paper_tables[0].total_multiply_adds == 724_406_816


def test_the_table_is_printed_and_lists_the_crossings(capsys):
    model = models.alexnet_cifar(width=0.125, init=None)
    table = ta.summary(model, (3, 32, 32))
    out = capsys.readouterr().out
    assert out.strip() == str(table) and out.startswith("layer")
    assert out.strip().endswith("before conv3, fc6, fc7, fc8, output")


def test_summary_leaves_the_model_in_its_mode():
    model = models.vgg_cifar("A", width=0.125)
    ta.summary(model, (3, 32, 32), print_table=False)
    assert all(m.training for m in model.modules())
    assert ta.summary(model.eval(), (3, 32, 32), print_table=False).rows[-1].output_shape == (10,)
    assert not any(m.training for m in model.modules())


def test_a_layer_used_twice_has_two_rows_and_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(F.flatten(x)))

    table = ta.summary(Twice(), (4, 1, 1), print_table=False)
    assert [(r.layer, r.parameters, r.multiply_adds) for r in table.rows] == [("fc", 20, 16), ("fc", 0, 16)]
