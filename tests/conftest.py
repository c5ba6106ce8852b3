"""Shared test setup: draw figures off-screen."""

import matplotlib

matplotlib.use("Agg")
