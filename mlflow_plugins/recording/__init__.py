"""Recording in MLflow: the `Recorder` of a run and the HTML health report."""

from .recorder import BATCH_SIZE, Recorder, RecordingWarning
from .report import grad_flow_figure, render_report

__all__ = ["BATCH_SIZE", "Recorder", "RecordingWarning", "grad_flow_figure", "render_report"]
