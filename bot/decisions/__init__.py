"""Decision polls: a slip framed by its owner, voted on by leaders, closed on the tick, applied to the plan."""
