"""Delivery signals: tracker work (GitHub, Jira) linked to milestones, told by the trackers' webhooks."""
