"""The weekly leadership digest: what it says (content, metrics, calibration) and its delivery."""
