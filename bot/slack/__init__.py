"""The Slack side of the core: the Web API gateway and its typed errors."""
