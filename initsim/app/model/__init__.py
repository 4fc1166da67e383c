"""What the window shows, without Qt: a run's state as its layers arrive, the histograms' grids
and images, the reference tables."""
