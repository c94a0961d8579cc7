"""Listeners for block_actions: buttons people click in messages and modals."""
