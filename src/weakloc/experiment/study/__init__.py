"""The paper's study as an experiment report (``table = "study"``): tables beside the paper's numbers, figures,
findings checked, a self-contained HTML page."""

from .report import write_study_report

__all__ = ["write_study_report"]
