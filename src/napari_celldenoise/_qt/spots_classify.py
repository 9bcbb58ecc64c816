"""The Spots dock's "Classify good / bad" and "ML centroids" groups (widgets only; the dock
connects them)."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..spots.classify import default_rules


class ClassifyBox(QGroupBox):
    """Mark buttons, the rules editor, and the classifier's retrain / save / load."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Classify good / bad", parent)
        col = QVBoxLayout(self)
        row = QHBoxLayout()
        self.good_button = QPushButton("Mark good (G)")
        self.bad_button = QPushButton("Mark bad (B)")
        row.addWidget(self.good_button)
        row.addWidget(self.bad_button)
        col.addLayout(row)
        self.rules_edit = QPlainTextEdit(default_rules(1.3).to_yaml())
        self.rules_edit.setMaximumHeight(110)
        self.rules_button = QPushButton("Apply rules")
        col.addWidget(QLabel("rules (YAML: feature, low, high)"))
        col.addWidget(self.rules_edit)
        col.addWidget(self.rules_button)
        row = QHBoxLayout()
        self.retrain_button = QPushButton("Retrain classifier")
        self.save_model_button = QPushButton("Save…")
        self.load_model_button = QPushButton("Load…")
        row.addWidget(self.retrain_button)
        row.addWidget(self.save_model_button)
        row.addWidget(self.load_model_button)
        col.addLayout(row)
        self.classifier_label = QLabel("classifier: none (rules)")
        col.addWidget(self.classifier_label)


PICKLE_RISK = (
    "{name} is a pickle (an old .joblib classifier). Opening a pickle can run any code on this "
    "computer, with your permissions: it can read, change or delete your files. Open it only "
    "if you made it yourself or trust the person who sent it.\n\nOpen it anyway? Save it "
    "again afterwards: the new .skops file opens without running code."
)


def confirm_pickle(parent: QWidget | None, path: str) -> bool:
    """Ask the user before a pickle classifier is opened; No is the default answer."""
    from pathlib import Path

    answer = QMessageBox.warning(
        parent,
        "Open a pickle classifier?",
        PICKLE_RISK.format(name=Path(path).name),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


class CentroidBox(QGroupBox):
    """The ML centroid model: kind, training source, train and apply."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("ML centroids (faster than fitting)", parent)
        form = QFormLayout(self)
        self.centroid_kind = QComboBox()
        self.centroid_kind.addItems(["ridge", "mlp"])
        self.centroid_source = QComboBox()
        self.centroid_source.addItems(["good fitted spots", "simulated spots"])
        self.centroid_train_button = QPushButton("Train")
        self.centroid_apply_button = QPushButton("Localise with the model")
        self.centroid_label = QLabel("centroid model: none")
        self.centroid_label.setWordWrap(True)
        form.addRow("model", self.centroid_kind)
        form.addRow("train on", self.centroid_source)
        row = QHBoxLayout()
        row.addWidget(self.centroid_train_button)
        row.addWidget(self.centroid_apply_button)
        form.addRow(row)
        form.addRow(self.centroid_label)
