"""Listeners for slash commands."""
