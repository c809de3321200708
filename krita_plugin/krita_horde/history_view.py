"""The docker's history: thumbnails of past results (newest first) and the actions on the
selected one. It renders the History model and forwards clicks; the docker wires "re-run"
and "use settings" to its form."""

from __future__ import annotations

from collections.abc import Callable

from PyQt5.QtCore import QSize, Qt, pyqtSignal
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (
    QApplication,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .history import THUMBNAIL_SIDE, History, HistoryItem


class HistoryView(QWidget):
    """Widgets (attributes named like their objectName): `history_list`, `apply_button`,
    `discard_button`, `rerun_button`, `copy_seed_button`, `use_settings_button`."""

    rerun_requested = pyqtSignal(str)  # item id
    settings_requested = pyqtSignal(str)  # item id

    def __init__(self, history: History, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("history_view")
        self.history = history
        self.history_list = QListWidget()
        self.history_list.setObjectName("history_list")
        self.history_list.setViewMode(QListWidget.IconMode)
        self.history_list.setIconSize(QSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self.history_list.setResizeMode(QListWidget.Adjust)
        self.history_list.setMovement(QListWidget.Static)
        self.history_list.setMinimumHeight(THUMBNAIL_SIDE + 40)
        self.history_list.itemDoubleClicked.connect(lambda _item: self._apply())
        buttons = {
            "apply_button": ("Apply", "Add the selected result as a layer at its selection"),
            "discard_button": ("Discard", "Remove the selected result from the history"),
            "rerun_button": ("Re-run", "Generate again with this result's settings"),
            "copy_seed_button": ("Copy seed", "Copy this result's seed to the clipboard"),
            "use_settings_button": ("Use settings", "Put this result's settings in the form"),
        }
        grid = QGridLayout()
        for index, (name, (text, tip)) in enumerate(buttons.items()):
            button = QPushButton(text)
            button.setObjectName(name)
            button.setToolTip(tip)
            setattr(self, name, button)
            grid.addWidget(button, index // 3, index % 3)
        self.apply_button.clicked.connect(self._apply)
        self.discard_button.clicked.connect(
            lambda: self._with_selected(lambda item: history.discard(item.item_id))
        )
        self.rerun_button.clicked.connect(
            lambda: self._with_selected(lambda item: self.rerun_requested.emit(item.item_id))
        )
        self.copy_seed_button.clicked.connect(
            lambda: self._with_selected(lambda item: QApplication.clipboard().setText(item.seed))
        )
        self.use_settings_button.clicked.connect(
            lambda: self._with_selected(lambda item: self.settings_requested.emit(item.item_id))
        )
        self.history_list.currentItemChanged.connect(lambda *_: self._update_buttons())
        title = QLabel("History")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.history_list)
        layout.addLayout(grid)
        history.changed.connect(self.render)
        self.render()

    def selected(self) -> HistoryItem | None:
        current = self.history_list.currentItem()
        if current is None:
            return None
        return self.history.items.get(current.data(Qt.UserRole))

    def select(self, item_id: str) -> None:
        for row in range(self.history_list.count()):
            if self.history_list.item(row).data(Qt.UserRole) == item_id:
                self.history_list.setCurrentRow(row)
                return

    def render(self) -> None:
        """Rebuild the thumbnails from the model, keeping the selected one."""
        current = self.selected()
        self.history_list.clear()
        for item in reversed(list(self.history.items.values())):
            entry = QListWidgetItem(
                QIcon(QPixmap.fromImage(item.thumbnail)), f"#{item.job_number} {item.seed}"
            )
            entry.setData(Qt.UserRole, item.item_id)
            mark = " (applied)" if item.applied else ""
            entry.setToolTip(item.summary() + mark)
            self.history_list.addItem(entry)
        if current is not None and current.item_id in self.history.items:
            self.select(current.item_id)
        elif self.history_list.count():
            self.history_list.setCurrentRow(0)
        self.setVisible(bool(self.history.items))
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.selected() is not None
        for name in (
            "apply_button",
            "discard_button",
            "rerun_button",
            "copy_seed_button",
            "use_settings_button",
        ):
            getattr(self, name).setEnabled(has)

    def _with_selected(self, action: Callable[[HistoryItem], object]) -> None:
        item = self.selected()
        if item is not None:
            action(item)

    def _apply(self) -> None:
        self._with_selected(lambda item: self.history.apply(item.item_id))
