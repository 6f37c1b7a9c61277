"""Recording in MLflow: the `Recorder` of a run and the HTML health report."""

from .logged_steps import LoggedSteps
from .recorder import BATCH_SIZE, Recorder, RecordingWarning
from .report import grad_flow_figure, render_report

__all__ = ["BATCH_SIZE", "LoggedSteps", "Recorder", "RecordingWarning", "grad_flow_figure", "render_report"]
