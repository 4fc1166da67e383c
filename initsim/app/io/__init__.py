"""What goes in and out of the window: exports (images and data), offscreen rendering for the
CLI, the saved session and settings, and tours."""
