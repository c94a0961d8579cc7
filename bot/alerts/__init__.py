"""Detection and alerts: conditions find what is wrong, the lifecycle raises, updates and resolves each alert once."""

from bot.alerts.lifecycle import DetectionReport, run_detection

__all__ = ["DetectionReport", "run_detection"]
