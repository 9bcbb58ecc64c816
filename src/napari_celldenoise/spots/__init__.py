"""Spot detection, fitting, classification and simulation (pure: no Qt)."""
