"""Storage: the tables, the engine and every query; nothing above this package writes SQL."""
