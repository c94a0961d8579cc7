"""The entry layer: builds and runs the application (CLI, server, Bolt app, demo) around the core."""
