"""train.py's --optimizer and the flags each optimizer takes: Keras's names and defaults, checked before
TensorFlow loads, each refusal one line; the table the flags are checked by is the registry's."""

import pytest

from engine import optimizers
from engine.errors import ConfigError
from engine.run.config import OPTIMIZER_FLAGS, TrainConfig


def test_the_flag_table_names_the_registrys_optimizers_and_only_arguments_they_take():
    """config.OPTIMIZER_FLAGS repeats engine.optimizers.OPTIMIZERS (it must be read without TensorFlow):
    adding a fifth optimizer without its line here fails this test."""
    assert list(OPTIMIZER_FLAGS) == list(optimizers.OPTIMIZERS)
    for name, flags in OPTIMIZER_FLAGS.items():
        assert set(flags) <= set(optimizers.arguments_of(name)), name


@pytest.mark.parametrize("name", list(OPTIMIZER_FLAGS))
def test_without_its_flags_each_optimizer_gets_keras_defaults(name):
    made = optimizers.get(name, **TrainConfig(optimizer=name, learning_rate=0.001).optimizer_arguments())
    assert made.get_config() == optimizers.get(name, learning_rate=0.001).get_config()


def test_given_flags_reach_the_optimizer():
    config = TrainConfig(optimizer="adam", learning_rate=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                         weight_decay=0.01)
    made = optimizers.get(config.optimizer, **config.optimizer_arguments())
    assert made.get_config() == {"learning_rate": pytest.approx(0.003), "beta_1": 0.8, "beta_2": 0.99,
                                 "epsilon": 1e-6, "amsgrad": False, "weight_decay": 0.01}
    rmsprop = TrainConfig(optimizer="rmsprop", learning_rate=0.001, rho=0.8, momentum=0.5).optimizer_arguments()
    assert rmsprop == {"learning_rate": 0.001, "rho": 0.8, "momentum": 0.5}


@pytest.mark.parametrize("settings, message", [
    ({"optimizer": "adam", "momentum": 0.9}, "--optimizer=adam takes no --momentum: its flags are --learning_rate, "
                                             "--beta_1, --beta_2, --epsilon, --weight_decay"),
    ({"optimizer": "sgd", "rho": 0.5}, "--optimizer=sgd takes no --rho"),
    ({"optimizer": "rmsprop", "nesterov": True}, "--optimizer=rmsprop takes no --nesterov"),
    ({"optimizer": "adam", "beta_1": 1.0}, "--beta_1 must be in [0, 1), got 1.0"),
    ({"optimizer": "adamw", "beta_2": -0.1}, "--beta_2 must be in [0, 1), got -0.1"),
    ({"optimizer": "rmsprop", "rho": float("nan")}, "--rho must be in [0, 1), got nan"),
    ({"optimizer": "adam", "epsilon": 0.0}, "--epsilon must be a finite number > 0, got 0.0"),
    ({"optimizer": "adam", "epsilon": float("inf")}, "--epsilon must be a finite number > 0, got inf"),
    ({"optimizer": "adamw", "weight_decay": -1.0}, "--weight_decay must be a finite number >= 0, got -1.0"),
    ({"optimizer": "lion"}, "--optimizer must be one of sgd, adam, adamw, rmsprop, got 'lion'"),
])
def test_a_flag_the_optimizer_does_not_take_or_out_of_range_is_one_clear_error(settings, message):
    with pytest.raises(ConfigError) as raised:
        TrainConfig(**settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_command_line_refuses_a_foreign_flag_with_one_line_and_exit_2(capsys):
    import train

    assert train.main(["train.py", "--optimizer=adam", "--rho=0.5"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "train.py: error: --optimizer=adam takes no --rho: its flags are --learning_rate, --beta_1, --beta_2, "
        "--epsilon, --weight_decay"]
