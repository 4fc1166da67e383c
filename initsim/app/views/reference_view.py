"""The Reference tab: which initialization for which activation, the formulas, the framework names."""

from __future__ import annotations

from PySide6.QtWidgets import QTextBrowser

from ..model.reference import reference_html


class ReferenceView(QTextBrowser):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("reference")
        self.setOpenExternalLinks(True)
        self.setHtml(reference_html())
