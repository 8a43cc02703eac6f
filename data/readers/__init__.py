"""Readers for each dataset layout; data.datasets holds the name registry."""
