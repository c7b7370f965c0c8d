"""Tests of modelkit.chat_template (a package, so that its conftest does not shadow tests/conftest.py)."""
