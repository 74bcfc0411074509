"""The HTML report: one self-contained page per claims run (``write_report``) and an index of published runs
(``write_index``). Both read saved results only; figures are embedded PNGs, styles inline, no scripts, no network.
"""

from repro.report.document import REPORT_FILE, render_report, write_report
from repro.report.index import write_index

__all__ = ["REPORT_FILE", "render_report", "write_index", "write_report"]
