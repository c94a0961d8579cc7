"""`planpulse demo`'s simulated quarter: the live bot, scripted people, the timeline and the report."""
