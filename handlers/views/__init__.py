"""Listeners for view_submission: modals people fill in."""
