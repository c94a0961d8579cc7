"""The plan as code: read, validate, apply and export a plan file (YAML, .xlsx or a CSV folder)."""
