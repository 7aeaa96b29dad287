"""`ducklm doctor`: checks a DuckLM set-up before it bites — each model role against its
server, every gRPC service, and this machine — and prints one line per check with the fix for
each failure.

The checks only read and probe (small requests, temporary probe files); they never change a
service's state, a collection or a config file.
"""

from deploy.doctor.checks import Check, Report, Status
from deploy.doctor.run import SECTIONS, run_doctor
from deploy.doctor.setup import Setup

__all__ = ["SECTIONS", "Check", "Report", "Setup", "Status", "run_doctor"]
