"""The clock driver: `planpulse tick` and the in-process scheduler of `planpulse serve`."""
