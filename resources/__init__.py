"""Shipped data: presets, tours, icons, styles. Installed as the package initsim.resources."""
