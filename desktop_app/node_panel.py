"""The node panel: one card per node with a health light, latency, space, weight and zone."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from sync_agent.api import Health, NodeStatus

COLOURS = {Health.UP.value: "#2fbf71", Health.DEGRADED.value: "#f0a020", Health.DOWN.value: "#e04040"}


def human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def light(colour: str, size: int = 14) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(colour))
    p.setPen(QColor(colour).darker(130))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return pm


class NodeCard(QFrame):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.state = Health.UP.value
        self.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setVerticalSpacing(2)
        self.light = QLabel()
        self.title = QLabel(f"<b>{name}</b>")
        self.latency = QLabel("")
        self.latency.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.detail = QLabel("")
        self.detail.setStyleSheet("color: palette(mid);")
        self.space = QProgressBar()
        self.space.setMaximumHeight(12)
        self.space.setTextVisible(False)
        self.space_label = QLabel("")
        self.space_label.setStyleSheet("color: palette(mid); font-size: 11px;")
        grid.addWidget(self.light, 0, 0)
        grid.addWidget(self.title, 0, 1)
        grid.addWidget(self.latency, 0, 2)
        grid.addWidget(self.detail, 1, 1, 1, 2)
        grid.addWidget(self.space, 2, 1, 1, 2)
        grid.addWidget(self.space_label, 3, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        self.set_state(Health.UP.value)

    def set_state(self, state: str) -> None:
        self.state = state
        self.light.setPixmap(light(COLOURS.get(state, "#8a8a8a")))
        self.light.setToolTip(state)
        self.setProperty("health", state)
        if state == Health.DOWN.value:
            self.latency.setText("<span style='color:#e04040'>down</span>")

    def update_status(self, s: NodeStatus) -> None:
        self.set_state(s.state.value)
        if s.state != Health.DOWN:
            mb = s.rate / 1e6
            rate = f" · {mb:.0f} MB/s" if mb >= 10 else f" · {mb:.1f} MB/s" if s.rate else ""
            self.latency.setText(f"{s.latency_ms:.0f} ms{rate}")
            self.latency.setToolTip("round trip" + (" · rate of its recent downloads" if s.rate else ""))
        zone = f" · zone {s.zone}" if s.zone else ""
        drain = " · draining" if s.draining else ""
        self.detail.setText(f"{s.endpoint}\nweight {s.weight:g}{zone}{drain} · {s.replicas} copies")
        if s.total:
            used = s.used or 0
            self.space.setMaximum(1000)
            self.space.setValue(int(1000 * used / s.total))
            self.space_label.setText(f"{human(s.total - used)} free of {human(s.total)}")
        if s.error and s.state != Health.UP:
            self.setToolTip(s.error)


class NodePanel(QWidget):
    def __init__(self, names: list[str]) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QLabel("<b>Nodes</b>")
        layout.addWidget(header)
        self.cards: dict[str, NodeCard] = {}
        self.set_names(names)
        layout.addStretch(1)

    def set_names(self, names: list[str]) -> None:
        """The pool's nodes changed (added or removed in Settings): one card each, in pool order."""
        layout = self.layout()
        for name in [n for n in self.cards if n not in names]:
            card = self.cards.pop(name)
            layout.removeWidget(card)
            card.deleteLater()
        for i, name in enumerate(names):
            if name not in self.cards:
                self.cards[name] = NodeCard(name)
                layout.insertWidget(1 + i, self.cards[name])  # after the header

    def set_state(self, node: str, state: str) -> None:
        if node in self.cards:
            self.cards[node].set_state(state)

    def update_statuses(self, statuses: list[NodeStatus]) -> None:
        for s in statuses:
            if s.name in self.cards:
                self.cards[s.name].update_status(s)
