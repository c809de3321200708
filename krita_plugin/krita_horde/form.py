"""The docker's widgets and the mapping between them and JobSettings (no Krita here).

Every widget is an attribute whose objectName equals the attribute name, so scripts (and the
real-Krita end-to-end test) can find and drive them; `apply_settings` sets them by field name.
"""

from __future__ import annotations

import math
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .geometry import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE
from .replies import ModelInfo
from .settings import MODES, SAMPLERS, JobSettings, SettingsError, field_names, from_text

ANY_MODEL_LABEL = "(any model)"

# settings field -> widget attribute (the contract's names: the field plus a widget suffix)
FIELD_WIDGETS: dict[str, str] = {
    "prompt": "prompt_edit",
    "negative": "negative_edit",
    "model": "model_combo",
    "mode": "mode_combo",
    "denoise": "denoise_spin",
    "cfg": "cfg_spin",
    "steps": "steps_spin",
    "sampler": "sampler_combo",
    "karras": "karras_check",
    "seed": "seed_edit",
    "n": "n_spin",
    "min_size": "min_size_spin",
    "max_size": "max_size_spin",
    "clip_skip": "clip_skip_spin",
    "nsfw": "nsfw_check",
    "url": "url_edit",
    "apikey": "apikey_edit",
    "max_wait": "max_wait_spin",
    "insert_all": "insert_all_check",
    "ca_file": "ca_file_edit",
}
OTHER_WIDGETS = (
    "extend_left_spin",
    "extend_top_spin",
    "extend_right_spin",
    "extend_bottom_spin",
    "outpaint_button",
    "advanced_toggle",
    "advanced_panel",
    "connection_button",
    "plan_label",
    "kudos_label",
    "refresh_models_button",
    "generate_button",
    "cancel_button",
    "status_label",
    "progress_bar",
)
WIDGET_NAMES = (*FIELD_WIDGETS.values(), *OTHER_WIDGETS)
assert set(FIELD_WIDGETS) == set(field_names())


def _named(widget: Any, name: str) -> Any:
    widget.setObjectName(name)
    return widget


def _spin(name: str, low: int, high: int, step: int = 1, suffix: str = "") -> QSpinBox:
    spin = _named(QSpinBox(), name)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    if suffix:
        spin.setSuffix(suffix)
    return spin


def _double(name: str, low: float, high: float, step: float, decimals: int) -> QDoubleSpinBox:
    spin = _named(QDoubleSpinBox(), name)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    return spin


def _combo(name: str, items: tuple[str, ...]) -> QComboBox:
    combo = _named(QComboBox(), name)
    for item in items:
        combo.addItem(item, item)
    return combo


class HordeForm(QWidget):
    """All fields of the docker. `changed` fires when the artist edits any setting."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt_edit = _named(QPlainTextEdit(), "prompt_edit")
        self.prompt_edit.setPlaceholderText("What to paint, e.g. a red fox in the snow")
        self.prompt_edit.setFixedHeight(70)
        self.negative_edit = _named(QPlainTextEdit(), "negative_edit")
        self.negative_edit.setPlaceholderText("What to avoid (optional)")
        self.negative_edit.setFixedHeight(45)
        self.model_combo = _named(QComboBox(), "model_combo")
        self.model_combo.addItem(ANY_MODEL_LABEL, "")
        self.refresh_models_button = _named(QPushButton("↻"), "refresh_models_button")
        self.refresh_models_button.setToolTip("Reload the horde's models and worker counts")
        self.mode_combo = _combo("mode_combo", MODES)
        self.denoise_spin = _double("denoise_spin", 0.01, 1.0, 0.05, 2)
        self.cfg_spin = _double("cfg_spin", 0.0, 100.0, 0.5, 1)
        self.steps_spin = _spin("steps_spin", 1, 500)
        self.sampler_combo = _combo("sampler_combo", SAMPLERS)
        self.karras_check = _named(QCheckBox("Karras noise schedule"), "karras_check")
        self.seed_edit = _named(QLineEdit(), "seed_edit")
        self.seed_edit.setPlaceholderText("random")
        self.n_spin = _spin("n_spin", 1, 20)
        self.min_size_spin = _spin("min_size_spin", MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE, " px")
        self.max_size_spin = _spin("max_size_spin", MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE, " px")
        self.clip_skip_spin = _spin("clip_skip_spin", 1, 12)
        self.nsfw_check = _named(QCheckBox("Allow NSFW results"), "nsfw_check")
        self.url_edit = _named(QLineEdit(), "url_edit")
        self.url_edit.setPlaceholderText("https://aihorde.net")
        self.apikey_edit = _named(QLineEdit(), "apikey_edit")
        self.apikey_edit.setEchoMode(QLineEdit.Password)
        self.max_wait_spin = _spin("max_wait_spin", 10, 24 * 3600, 30, " s")
        self.insert_all_check = _named(
            QCheckBox("Add every result as a layer at once"), "insert_all_check"
        )
        self.insert_all_check.setToolTip(
            "Off: results wait in the history below until you apply one"
        )
        self.plan_label = _named(QLabel(""), "plan_label")
        self.plan_label.setWordWrap(True)
        self.plan_label.setToolTip("What Generate would do now: mode, sizes, workers")
        self.kudos_label = _named(QLabel(""), "kudos_label")
        self.kudos_label.setWordWrap(True)
        self.kudos_label.setToolTip("What the horde charges for this job, and your balance")
        self.advanced_toggle = _named(QToolButton(), "advanced_toggle")
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_panel = _named(QWidget(), "advanced_panel")
        self.ca_file_edit = _named(QLineEdit(), "ca_file_edit")
        self.ca_file_edit.setPlaceholderText("only for a horde with its own CA (PEM file)")
        self.connection_button = _named(QToolButton(), "connection_button")
        self.connection_button.setText("⚙")
        self.connection_button.setToolTip("Connection: horde URL, API key, max wait")
        self.connection_button.clicked.connect(self.open_connection)
        self.connection_dialog = _named(QDialog(self), "connection_dialog")
        self.connection_dialog.setWindowTitle("Krita Horde: connection")
        connection = QFormLayout(self.connection_dialog)
        connection.addRow("Horde URL", self.url_edit)
        connection.addRow("API key", self.apikey_edit)
        connection.addRow("Max wait", self.max_wait_spin)
        connection.addRow("CA file", self.ca_file_edit)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.connection_dialog.hide)
        connection.addRow(close)
        for side in ("left", "top", "right", "bottom"):
            spin = _spin(f"extend_{side}_spin", 0, MAX_SIDE, SIDE_MULTIPLE, " px")
            spin.setToolTip(f"How far to extend the canvas to the {side}")
            setattr(self, f"extend_{side}_spin", spin)
        self.outpaint_button = _named(QPushButton("Extend canvas && generate"), "outpaint_button")
        self.outpaint_button.setToolTip(
            "Extend the canvas (by the sides above, or as far as the selection reaches past"
            " its edges) and paint the new area from the pixels beside it"
        )
        self.generate_button = _named(QPushButton("Generate"), "generate_button")
        self.cancel_button = _named(QPushButton("Cancel"), "cancel_button")
        self.cancel_button.setEnabled(False)
        self.status_label = _named(QLabel("Ready."), "status_label")
        self.status_label.setWordWrap(True)
        self.progress_bar = _named(QProgressBar(), "progress_bar")
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(False)  # shown only while images are being generated
        self._layout()
        self.show_settings(JobSettings())
        self._connect_changes()

    def _layout(self) -> None:
        """Compact: what an artist changes all day (prompt, negative, strength, model) and an
        always-visible Generate on top; below, in a scroll area, the plan, the queue, the
        history and the advanced fields (folded); the connection in a dialog."""
        top = QFormLayout()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.refresh_models_button)
        model_row.addWidget(self.connection_button)
        for label, field in (
            ("Prompt", self.prompt_edit),
            ("Negative", self.negative_edit),
            ("Strength", self.denoise_spin),
            ("Model", model_row),
        ):
            top.addRow(label, field)
        self._form_layout = top
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)

        advanced = QFormLayout(self.advanced_panel)
        for label, field in (
            ("Mode", self.mode_combo),
            ("CFG scale", self.cfg_spin),
            ("Steps", self.steps_spin),
            ("Sampler", self.sampler_combo),
            ("", self.karras_check),
            ("Seed", self.seed_edit),
            ("Images", self.n_spin),
            ("Min size", self.min_size_spin),
            ("Max size", self.max_size_spin),
            ("Clip skip", self.clip_skip_spin),
            ("", self.nsfw_check),
            ("", self.insert_all_check),
        ):
            advanced.addRow(label, field)
        sides = QGridLayout()
        sides.addWidget(self.extend_top_spin, 0, 1)
        sides.addWidget(self.extend_left_spin, 1, 0)
        sides.addWidget(self.extend_right_spin, 1, 2)
        sides.addWidget(self.extend_bottom_spin, 2, 1)
        advanced.addRow("Outpaint", sides)
        advanced.addRow("", self.outpaint_button)
        self.advanced_panel.setVisible(False)
        self.advanced_toggle.toggled.connect(self._fold_advanced)

        rest = QWidget()
        inner = QVBoxLayout(rest)
        inner.addWidget(self.plan_label)
        inner.addWidget(self.kudos_label)
        inner.addWidget(self.status_label)
        inner.addWidget(self.advanced_toggle)
        inner.addWidget(self.advanced_panel)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("form_scroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(rest)

        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addLayout(buttons)
        outer.addWidget(self.progress_bar)
        outer.addWidget(scroll, 1)
        self._outer = inner

    def show_denoise(self, visible: bool) -> None:
        """Denoising only means something when a source image is sent (not for txt2img)."""
        label = self._form_layout.labelForField(self.denoise_spin)
        for widget in (self.denoise_spin, label):
            if widget is not None and widget.isHidden() == visible:
                widget.setVisible(visible)

    def add_queue_view(self, view: QWidget) -> None:
        """The job queue's rows (and the history) go under the status line, above the
        advanced fields."""
        self._outer.insertWidget(self._outer.indexOf(self.advanced_toggle), view)

    def _fold_advanced(self, unfolded: bool) -> None:
        self.advanced_panel.setVisible(unfolded)
        self.advanced_toggle.setArrowType(Qt.DownArrow if unfolded else Qt.RightArrow)

    def open_connection(self) -> None:
        """The connection settings (horde URL, API key, max wait) in their dialog."""
        self.connection_dialog.show()
        self.connection_dialog.raise_()

    def _connect_changes(self) -> None:
        for edit in (self.prompt_edit, self.negative_edit):
            edit.textChanged.connect(self.changed)
        for line in (self.seed_edit, self.url_edit, self.apikey_edit, self.ca_file_edit):
            line.textChanged.connect(self.changed)
        for combo in (self.model_combo, self.mode_combo, self.sampler_combo):
            combo.currentIndexChanged.connect(self.changed)
        for spin in (
            self.denoise_spin,
            self.cfg_spin,
            self.steps_spin,
            self.n_spin,
            self.min_size_spin,
            self.max_size_spin,
            self.clip_skip_spin,
            self.max_wait_spin,
        ):
            spin.valueChanged.connect(self.changed)
        for check in (self.karras_check, self.nsfw_check, self.insert_all_check):
            check.toggled.connect(self.changed)

    # --- widgets <-> settings -------------------------------------------------------------

    def settings(self) -> JobSettings:
        return JobSettings(
            prompt=self.prompt_edit.toPlainText(),
            negative=self.negative_edit.toPlainText(),
            model=self.model_combo.currentData() or "",
            mode=self.mode_combo.currentData(),
            denoise=round(self.denoise_spin.value(), 2),
            cfg=round(self.cfg_spin.value(), 1),
            steps=self.steps_spin.value(),
            sampler=self.sampler_combo.currentData(),
            karras=self.karras_check.isChecked(),
            seed=self.seed_edit.text().strip(),
            n=self.n_spin.value(),
            min_size=self.min_size_spin.value(),
            max_size=self.max_size_spin.value(),
            clip_skip=self.clip_skip_spin.value(),
            nsfw=self.nsfw_check.isChecked(),
            url=self.url_edit.text().strip(),
            apikey=self.apikey_edit.text().strip(),
            max_wait=self.max_wait_spin.value(),
            insert_all=self.insert_all_check.isChecked(),
            ca_file=self.ca_file_edit.text().strip(),
        )

    def show_settings(self, settings: JobSettings) -> None:
        for name in field_names():
            self._set_widget(name, getattr(settings, name))

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Set fields by name (the widget names without their suffix), e.g.
        {"prompt": "a cat", "steps": 4, "model": "krita-horde-tiny"}."""
        unknown = sorted(set(values) - set(FIELD_WIDGETS))
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(FIELD_WIDGETS)}"
            )
        defaults = JobSettings()
        for name, value in values.items():
            self._set_widget(name, self._coerce(name, value, getattr(defaults, name)))

    def _coerce(self, name: str, value: Any, default: Any) -> Any:
        if isinstance(value, str) and not isinstance(default, str):
            try:
                value = from_text(value, default)
            except ValueError:
                raise SettingsError(f"{name}: {value!r} is not a valid value") from None
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SettingsError(f"{name} must be true or false, got {value!r}")
            return value
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingsError(f"{name} must be a number, got {value!r}")
            widget = getattr(self, FIELD_WIDGETS[name])
            if not widget.minimum() <= value <= widget.maximum():
                raise SettingsError(
                    f"{name} must be between {widget.minimum()} and {widget.maximum()}, got {value}"
                )
            if isinstance(default, int) and value != int(value):
                raise SettingsError(f"{name} must be a whole number, got {value}")
            return type(default)(value)
        if name == "seed" and isinstance(value, int):
            return str(value)
        if not isinstance(value, str):
            raise SettingsError(f"{name} must be text, got {value!r}")
        return value

    def _set_widget(self, name: str, value: Any) -> None:
        widget = getattr(self, FIELD_WIDGETS[name])
        if isinstance(widget, QPlainTextEdit):
            widget.setPlainText(value)
        elif isinstance(widget, QLineEdit):
            widget.setText(value)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(value)
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(value)
        elif name == "model":
            self.select_model(value)
        else:
            index = widget.findData(value)
            if index < 0:
                allowed = ", ".join(widget.itemData(i) for i in range(widget.count()))
                raise SettingsError(f"{name} must be one of {allowed}, got {value!r}")
            widget.setCurrentIndex(index)

    # --- models -----------------------------------------------------------------------

    def select_model(self, name: str) -> None:
        """Select a model by name, adding it when the horde's list does not have it (yet)."""
        index = self.model_combo.findData(name)
        if index < 0:
            self.model_combo.addItem(name, name)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(index)

    def set_models(self, models: list[ModelInfo], max_pixels: dict[str, int] | None = None) -> None:
        """Fill the model list (already sorted by worker count), keeping the selection; with
        the workers' limits known, each entry says the largest image its workers take."""
        current = self.model_combo.currentData() or ""
        self.model_combo.blockSignals(True)
        try:
            self.model_combo.clear()
            self.model_combo.addItem(ANY_MODEL_LABEL, "")
            for model in models:
                workers = "worker" if model.count == 1 else "workers"
                label = f"{model.name} ({model.count} {workers}"
                limit = (max_pixels or {}).get(model.name)
                if limit:
                    side = math.isqrt(limit)
                    label += f", up to {side}×{side}"
                self.model_combo.addItem(label + ")", model.name)
            self.select_model(current)
        finally:
            self.model_combo.blockSignals(False)
