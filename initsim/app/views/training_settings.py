"""The task and optimizer of a training run, as the Training and Compare views ask for them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSpinBox, QWidget

from initsim.engine.params import Param
from initsim.engine.tasks import TASKS
from initsim.engine.train import OPTIMIZERS, TRAIN_RANGES, TRAIN_REAL_RANGES, TrainConfig

from ..widgets import NumberBox

MAX_STEPS = 100_000


class TrainingSettings(QWidget):
    """The task and the optimizer of a training run, in a grid of two rows (task, optimizer,
    learning rate; steps, batch) whose last place, row 1 columns 4-5, is left for the view's
    buttons; `training` reads them."""

    def __init__(self, prefix: str, steps: int = TrainConfig.steps) -> None:
        super().__init__()
        self.task = QComboBox()
        self.task.setObjectName(f"{prefix}.task")
        self.task.setToolTip("The data to learn, generated from a fixed seed; the 2-D tasks also "
                             "show their decision regions")
        self.task.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.task.setMinimumContentsLength(10)
        for index, task in enumerate(TASKS.values()):
            self.task.addItem(task.name, task.name)
            self.task.setItemData(index, task.description, Qt.ItemDataRole.ToolTipRole)
        _select(self.task, TrainConfig.task)
        self.optimizer = QComboBox()
        self.optimizer.setObjectName(f"{prefix}.optimizer")
        self.optimizer.setToolTip(f"sgd: SGD with momentum {TrainConfig.momentum} (PyTorch's form); "
                                  "adam: Adam with betas (0.9, 0.999)")
        for name in OPTIMIZERS:
            self.optimizer.addItem(name, name)
        _select(self.optimizer, TrainConfig.optimizer)
        low, high = TRAIN_REAL_RANGES["lr"]
        self.lr = NumberBox(Param("lr", "learning rate", low=low, high=high))
        self.lr.setObjectName(f"{prefix}.lr")
        self.lr.setToolTip("Learning rate; choosing an optimizer sets its usual one: "
                           + ", ".join(f"{name} {o.default_lr:g}" for name, o in OPTIMIZERS.items()))
        self.lr.setValue(OPTIMIZERS[TrainConfig.optimizer].default_lr)
        self.optimizer.currentIndexChanged.connect(
            lambda: self.lr.setValue(OPTIMIZERS[self.optimizer.currentData()].default_lr))
        self.steps = QSpinBox()
        self.steps.setObjectName(f"{prefix}.steps")
        self.steps.setToolTip("Training steps (one mini-batch each)")
        self.steps.setRange(1, MAX_STEPS)
        self.steps.setValue(steps)
        self.batch = QSpinBox()
        self.batch.setObjectName(f"{prefix}.batch")
        self.batch.setToolTip("Samples per training step (the controls' batch is the simulation's)")
        self.batch.setRange(*TRAIN_RANGES["train_batch"])
        self.batch.setValue(TrainConfig.train_batch)
        self.inputs: list[QWidget] = [self.task, self.optimizer, self.lr, self.steps, self.batch]
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        captions = ("Task", "Optimizer", "lr", "Steps", "Batch")
        for index, (caption, widget) in enumerate(zip(captions, self.inputs)):
            label = QLabel(caption)
            label.setToolTip(widget.toolTip())
            row, column = divmod(index, 3)
            self.grid.addWidget(label, row, 2 * column, Qt.AlignmentFlag.AlignRight)
            self.grid.addWidget(widget, row, 2 * column + 1)

    def training(self, **changes) -> TrainConfig:
        """The settings as a TrainConfig (not validated), with ``changes``."""
        return TrainConfig(task=self.task.currentData(), optimizer=self.optimizer.currentData(),
                           lr=self.lr.value(), steps=self.steps.value(),
                           train_batch=self.batch.value()).replace(**changes)

    def set_training(self, training: TrainConfig) -> None:
        """Show ``training``'s task, optimizer, learning rate, steps and batch."""
        training = training.validated()
        _select(self.task, training.task)
        _select(self.optimizer, training.optimizer)
        self.lr.setValue(training.lr)
        self.steps.setValue(min(training.steps, MAX_STEPS))
        self.batch.setValue(training.train_batch)


def _select(combo: QComboBox, key: str) -> None:
    combo.setCurrentIndex(combo.findData(key))
