"""First run: add your nodes (each one tested, with a clear reason when it fails) or start a local demo
pool; choose the redundancy and the sync folder. Secrets go to the keyring, never to a file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from desktop_app.dialogs import ask_trust
from desktop_app.workers import run_async
from sync_agent import api
from sync_agent.api import NodeCheck, NodeConfig, PoolConfig, PoolDriveError, check_node


class StartPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome to PoolDrive")
        self.setSubTitle("PoolDrive keeps your files on several MinIO servers of your own.")
        self.own = QRadioButton("Use my own MinIO servers")
        self.demo = QRadioButton("Try it on a local demo pool (4 MinIO nodes on this computer)")
        self.own.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.own)
        layout.addWidget(self.demo)
        if not api.keyring_available():
            warn = QLabel(api.KEYRING_HELP)
            warn.setWordWrap(True)
            warn.setStyleSheet("color: #b05000;")
            layout.addWidget(warn)


class NodesPage(QWizardPage):
    """Add nodes one by one; each is checked before it is added."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Your nodes")
        self.setSubTitle("Add each MinIO server: its address, and the access key and secret key to use.")
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. nas")
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("host:port, e.g. 192.168.1.10:9000")
        self.access = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secure = QCheckBox("Use https")
        self.test = QPushButton("Test and add")
        self.test.clicked.connect(self.test_node)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.list = QListWidget()
        self.nodes: list[tuple[NodeConfig, api.Credentials]] = []
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Address", self.endpoint)
        form.addRow("Access key", self.access)
        form.addRow("Secret key", self.secret)
        form.addRow("", self.secure)
        row = QHBoxLayout()
        row.addWidget(self.test)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.result)
        layout.addWidget(QLabel("Nodes added:"))
        layout.addWidget(self.list)

    def test_node(self, trusted_sha256: str = "") -> None:
        """Check the node; ``trusted_sha256``: the certificate the user chose to trust after seeing it."""
        try:
            node = NodeConfig(self.name.text().strip() or f"node{len(self.nodes) + 1}", self.endpoint.text().strip(),
                              secure=self.secure.isChecked() or bool(trusted_sha256), cert_sha256=trusted_sha256)
            PoolConfig(name="probe", bucket="pooldrive", nodes=(node,)).validate()
        except PoolDriveError as e:
            self.show_result(NodeCheck(False, e.title, e.message))
            return
        creds = api.Credentials(self.access.text().strip(), self.secret.text())
        self.test.setEnabled(False)
        self.result.setText(f"Checking {node.url}…")

        def done(check: NodeCheck) -> None:
            self.test.setEnabled(True)
            self.show_result(check)
            if check.fingerprint and not trusted_sha256 and ask_trust(self, node.endpoint, check.fingerprint):
                self.test_node(trusted_sha256=check.fingerprint)
                return
            if check.ok:
                self.nodes.append((node, creds))
                self.list.addItem(f"{node.name}  {node.url}")
                for w in (self.name, self.endpoint):
                    w.clear()
                self.completeChanged.emit()

        run_async(lambda: check_node(node, creds, "pooldrive", timeout=4), done,
                  lambda e: (self.test.setEnabled(True), self.show_result(NodeCheck(False, e.title, e.message))))

    def show_result(self, check: NodeCheck) -> None:
        colour = "#1f8a4c" if check.ok else "#c03030"
        self.result.setText(f"<b style='color:{colour}'>{check.title}</b>: {check.message}")

    def isComplete(self) -> bool:
        return bool(self.nodes)


class FinishPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Copies and sync folder")
        self.replicas = QSpinBox()
        self.replicas.setRange(1, 8)
        self.replicas.setValue(2)
        self.folder = QLineEdit(str(Path.home() / "PoolDrive"))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.choose)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Copies of each file", self.replicas)
        form.addRow("Sync folder", row)
        self.sync_now = QCheckBox("Start syncing this folder now")
        self.sync_now.setChecked(True)
        self.autostart = QCheckBox("Sync in the background when I log in")
        self.autostart.setChecked(True)
        form.addRow("", self.sync_now)
        form.addRow("", self.autostart)
        note = QLabel("Two copies survive the loss of any one node; three survive two.")
        note.setStyleSheet("color: palette(mid);")
        form.addRow("", note)

    def choose(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Sync folder", self.folder.text())
        if d:
            self.folder.setText(d)


class SetupWizard(QWizard):
    """Returns the pool config and sync folder through ``result_config`` / ``sync_folder``."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Set up PoolDrive")
        self.start, self.nodes_page, self.finish_page = StartPage(), NodesPage(), FinishPage()
        self.addPage(self.start)
        self.addPage(self.nodes_page)
        self.addPage(self.finish_page)
        self.result_config: PoolConfig | None = None
        self.sync_folder: Path | None = None
        self.resize(620, 520)

    def nextId(self) -> int:
        if self.currentPage() is self.start and self.start.demo.isChecked():
            return 2
        return super().nextId()

    def accept(self) -> None:
        replicas = self.finish_page.replicas.value()
        if self.start.demo.isChecked():  # starting four MinIO processes takes a moment: not on the GUI thread
            from sync_agent.api import DevPool

            self.button(QWizard.WizardButton.FinishButton).setEnabled(False)
            self.finish_page.setSubTitle("Starting the demo pool…")
            run_async(lambda: DevPool().up(4, replicas), self._done, self._failed)
            return
        try:
            cfg = PoolConfig(name="home", bucket="pooldrive", replicas=replicas,
                             nodes=tuple(n for n, _ in self.nodes_page.nodes))
            for node, creds in self.nodes_page.nodes:
                api.store_in_keyring(cfg.name, node.name, creds)
            api.save_pool(cfg)
            cfg = api.load_pool(cfg.name)
        except PoolDriveError as e:
            self._failed(e)
            return
        self._done(cfg)

    def _done(self, cfg: PoolConfig) -> None:
        """The pool exists: create its buckets, the sync folder, and start the agent (off the GUI thread)."""
        folder = Path(self.finish_page.folder.text()).expanduser()
        sync_now, autostart = self.finish_page.sync_now.isChecked(), self.finish_page.autostart.isChecked()
        self.finish_page.setSubTitle("Preparing the nodes and starting sync…")
        self.button(QWizard.WizardButton.FinishButton).setEnabled(False)

        def prepare() -> None:
            from sync_agent.api import Pool

            with Pool(cfg) as pool:
                errors = pool.init_buckets()
            if errors and len(errors) == len(cfg.nodes):
                raise PoolDriveError("No node could be prepared: " + "; ".join(f"{n}: {e}" for n, e in errors.items()),
                                     title="Nodes not ready")
            folder.mkdir(parents=True, exist_ok=True)
            if sync_now:
                from desktop_app.agent_link import start_agent

                start_agent(folder, cfg.name)
            if autostart:

                try:
                    api.autostart_on(folder)
                except (OSError, PoolDriveError):
                    pass  # syncing works; only the start at login is missing (Settings can retry)

        def ready(_: object) -> None:
            self.result_config = cfg
            self.sync_folder = folder
            super(SetupWizard, self).accept()

        run_async(prepare, ready, self._failed)

    def _failed(self, e: PoolDriveError) -> None:

        self.button(QWizard.WizardButton.FinishButton).setEnabled(True)
        self.finish_page.setSubTitle("")
        QMessageBox.warning(self, e.title, e.message)
