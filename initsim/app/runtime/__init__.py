"""Background work: the worker that runs the engine off the GUI thread, the runners that start,
cancel and throttle it, and the process pools of sweeps and bands."""
