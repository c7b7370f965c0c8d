"""Ollama parameters: known names, Ollama's types, and errors that say what to write instead."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkit.ollama.params import OPTIONS, RETIRED, OptionType, check_parameter, check_parameters


def test_normalises_to_ollama_types_and_keeps_order() -> None:
    params = check_parameters(
        {"temperature": 1, "num_ctx": 8192.0, "top_p": 0.9, "stop": "<|eot_id|>", "use_mmap": False, "seed": -1}
    )
    assert params == {"temperature": 1.0, "num_ctx": 8192, "top_p": 0.9, "stop": ["<|eot_id|>"],
                      "use_mmap": False, "seed": -1}
    assert list(params) == ["temperature", "num_ctx", "top_p", "stop", "use_mmap", "seed"]
    assert type(params["temperature"]) is float and type(params["num_ctx"]) is int


def test_typical_p_is_a_model_parameter() -> None:
    """api/types.go has ``TypicalP float32 `json:"typical_p"``` in Options, and create stores it."""
    assert check_parameter("typical_p", 0.7) == 0.7
    assert OPTIONS["typical_p"] is OptionType.FLOAT


def test_stop_keeps_a_list_of_strings() -> None:
    assert check_parameter("stop", ["a", "\n\nUser:", " b "]) == ["a", "\n\nUser:", " b "]


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("temprature", "temperature"), ("num_ctxt", "num_ctx"), ("topp", "top_p"), ("stops", "stop"),
     ("repeat_penality", "repeat_penalty")],
)
def test_unknown_parameter_suggests_the_closest(name: str, suggestion: str) -> None:
    with pytest.raises(ValueError) as info:
        check_parameter(name, 1)
    assert str(info.value) == f"unknown Ollama parameter '{name}' (did you mean '{suggestion}'?)"


def test_unknown_parameter_without_a_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown Ollama parameter 'flux_capacitor' \(known: .*temperature"):
        check_parameter("flux_capacitor", 1)


@pytest.mark.parametrize("name", sorted(RETIRED))
def test_retired_parameters_are_errors_with_the_reason(name: str) -> None:
    with pytest.raises(ValueError, match=f"Ollama parameter '{name}' .*; remove it"):
        check_parameter(name, 1)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("num_ctx", "big", "'num_ctx' must be an integer, got 'big'"),
        ("num_ctx", "8192", "'num_ctx' must be an integer, got '8192'"),
        ("num_ctx", 1.5, "'num_ctx' must be an integer, got 1.5"),
        ("num_ctx", True, "'num_ctx' must be an integer, got true"),
        ("num_predict", 2**63, "'num_predict' is out of range for a 64-bit integer"),
        ("temperature", "hot", "'temperature' must be a number, got 'hot'"),
        ("temperature", False, "'temperature' must be a number, got false"),
        ("top_p", math.inf, "'top_p' must be a finite number that fits a float32"),
        ("top_p", math.nan, "'top_p' must be a finite number"),
        ("min_p", 1e39, "fits a float32"),
        ("use_mmap", 1, "'use_mmap' must be true or false, got 1"),
        ("stop", 5, "'stop' must be a string or a list of strings, got 5"),
        ("stop", ["a", 1], "'stop' must be a string or a list of strings"),
        ("stop", [""], "'stop' entries must not be empty strings"),
    ],
)
def test_mistyped_values_name_the_parameter(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_parameter(name, value)
    assert message in str(info.value)


def test_every_known_option_has_a_type_and_none_is_also_retired() -> None:
    assert set(OPTIONS).isdisjoint(RETIRED)
    assert {"temperature", "top_p", "num_ctx", "num_predict", "stop"} <= set(OPTIONS)
    assert OPTIONS["temperature"] is OptionType.FLOAT and OPTIONS["num_ctx"] is OptionType.INT


@given(st.integers(-(2**63), 2**63 - 1))
def test_any_int64_is_a_valid_integer_option(n: int) -> None:
    assert check_parameter("seed", n) == n


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-3.4e38, max_value=3.4e38))
def test_any_float32_sized_number_is_a_valid_float_option(x: float) -> None:
    assert check_parameter("temperature", x) == x
