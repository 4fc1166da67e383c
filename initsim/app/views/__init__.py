"""The window's views, one module each, the plotting they share, and the registry that finds a
view by the name tours and the CLI use."""
