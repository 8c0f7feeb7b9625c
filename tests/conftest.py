"""Registers the shared server fixtures; test data factories live in each test package."""

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.broker", "tests.fixtures.smtp"]
