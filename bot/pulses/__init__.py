"""Pulse checks: when they are due, delivering them exactly once, answers, reminders, escalation."""
