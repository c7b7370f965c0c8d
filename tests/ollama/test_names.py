"""Ollama model names and tags, by the rules of Ollama's types/model/name.go."""

from __future__ import annotations

import pytest

from modelkit.ollama.names import ModelName, check_model_name, check_tag, parse_model_name


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("support-bot", ModelName("", "", "", "support-bot", "")),
        ("support-bot:q4_k_m", ModelName("", "", "", "support-bot", "q4_k_m")),
        ("Support_Bot.v2:Q4_K_M", ModelName("", "", "", "Support_Bot.v2", "Q4_K_M")),
        ("me/support-bot:latest", ModelName("", "me", "", "support-bot", "latest")),
        ("registry.example.com:5000/me/bot:1.0", ModelName("registry.example.com:5000", "me", "", "bot", "1.0")),
        ("https://registry.example.com/me/bot", ModelName("registry.example.com", "me", "", "bot", "")),
        ("me/skill/bot:x", ModelName("", "me", "skill", "bot", "x")),
        ("_x", ModelName("", "", "", "_x", "")),
        ("a" * 80 + ":" + "b" * 80, ModelName("", "", "", "a" * 80, "b" * 80)),
    ],
)
def test_valid_names_split_like_ollama(name: str, parts: ModelName) -> None:
    assert parse_model_name(name) == parts
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "cannot be empty"),
        ("Support Bot", "the model 'Support Bot' contains ' '"),
        ("-bot", "the model '-bot' must start with"),
        (".bot", "the model '.bot' must start with"),
        ("bot:", "the tag is empty"),
        (":q4", "the model is empty"),
        ("bot:q4:x", "the model 'bot:q4' contains ':'"),
        ("bot:q4 k", "the tag 'q4 k' contains ' '"),
        ("bot:-q4", "the tag '-q4' must start with"),
        ("my.ns/bot", "the namespace 'my.ns' contains '.'"),
        ("/bot", "the namespace is empty"),
        ("a/b/c/d/e", "the host 'a/b/c' contains '/'"),
        ("modèle", "contains 'è'"),
        ("a" * 81, "longer than 80 characters"),
        ("bot:" + "t" * 81, "the tag"),
        ("bot@sha256", "contains '@'"),
    ],
)
def test_invalid_names_say_which_part_is_wrong(name: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        check_model_name(name)
    assert problem in str(info.value)


def test_tags() -> None:
    assert check_tag("q4_k_m") == "q4_k_m"
    with pytest.raises(ValueError, match="invalid Ollama tag 'q4/k'"):
        check_tag("q4/k")
    with pytest.raises(ValueError, match="cannot be empty"):
        check_tag("")


@pytest.mark.parametrize("name", ["bot:cloud", "bot:Local", "bot:q4_k_m-cloud", "ns/bot:x-CLOUD"])
def test_tags_that_ollama_reads_as_a_model_source_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is reserved"):
        check_model_name(name)


def test_names_compare_case_insensitively_with_defaults() -> None:
    assert parse_model_name("Support-Bot").key() == parse_model_name("registry.ollama.ai/library/support-bot:LATEST").key()
