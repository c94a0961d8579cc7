"""PlanPulse core: the rules of the plan and the one place that talks to Slack."""
