"""Test helpers shared by the suites: real servers on loopback, image similarity."""
