"""TLS with the certificates people's own nodes have: a private CA, or one pinned certificate. A dev pool
served over https by real MinIO processes (`devpool up --tls`), driven through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_agent.config import NodeConfig
from sync_agent.credentials import Credentials
from sync_agent.node_check import check_node
from sync_agent.node_client import NodeClient
from sync_agent.tls import DevCA, pem_fingerprint

pytestmark = pytest.mark.minio  # starts dev pools through the real command

ROOT = Path(__file__).resolve().parents[2]


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, **{k: str(root / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME",
                                                                        "XDG_STATE_HOME")}}
        self.env.pop("POOLDRIVE_POOL", None)

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "sync_agent.cli.main", *args], cwd=ROOT, env=self.env,
                           capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        assert "Traceback" not in out, out
        if ok:
            assert r.returncode == 0, out
        return r

    @property
    def devpool(self) -> Path:
        return self.root / "xdg_state_home" / "pooldrive" / "devpool"

    @property
    def pool_toml(self) -> Path:
        return self.root / "xdg_config_home" / "pooldrive" / "pools" / "dev.toml"


@pytest.fixture
def tls_pool(tmp_path: Path) -> Iterator[Home]:
    home = Home(tmp_path / "home")
    home.run("devpool", "up", "--tls", "--nodes", "2")
    yield home
    home.run("devpool", "down", "--purge", ok=False)


def test_a_pool_served_over_https_by_its_own_ca(tls_pool: Home, tmp_path: Path) -> None:
    text = tls_pool.pool_toml.read_text()
    assert "secure = true" in text and "ca.crt" in text
    src = tmp_path / "report été.txt"
    src.write_text("over https")
    tls_pool.run("put", str(src), "--to", "docs/report été.txt")
    tls_pool.run("get", "docs/report été.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "over https"
    assert "https://" in tls_pool.run("devpool", "status").stdout


def test_an_untrusted_certificate_is_refused_with_what_to_do_then_pinned(tls_pool: Home, tmp_path: Path) -> None:
    other = DevCA.create(tmp_path / "other-ca")  # the config trusts a CA that did not sign the nodes
    wrong = tls_pool.pool_toml.with_name("wrong.toml")
    wrong.write_text(tls_pool.pool_toml.read_text().replace(str(tls_pool.devpool / "tls" / "ca.crt"),
                                                            str(other.cert)).replace('name = "dev"', 'name = "wrong"'))
    r = tls_pool.run("--pool", "wrong", "ls", ok=False)
    assert r.returncode == 5, r.stdout + r.stderr
    r = tls_pool.run("--pool", "wrong", "status", ok=False)
    assert r.returncode == 1 and "node1" in r.stdout and "not trusted" in r.stdout, r.stdout
    assert "pooldrive pool trust node1" in r.stdout

    r = tls_pool.run("--pool", "wrong", "pool", "trust", "node1", ok=False)  # not a terminal: never silently
    assert r.returncode == 3 and "--yes" in r.stderr
    node1_cert = tls_pool.devpool / "tls" / "node1" / "public.crt"
    expected = pem_fingerprint(node1_cert.read_bytes())
    r = tls_pool.run("--pool", "wrong", "pool", "trust", "node1", "--yes")
    assert expected[:2].upper() + ":" + expected[2:4].upper() in r.stdout  # shown before it is trusted
    tls_pool.run("--pool", "wrong", "pool", "trust", "node2", "--fingerprint",
                 pem_fingerprint((tls_pool.devpool / "tls" / "node2" / "public.crt").read_bytes()).upper())
    assert f'cert_sha256 = "{expected}"' in wrong.read_text()
    src = tmp_path / "a.txt"
    src.write_text("pinned")
    tls_pool.run("--pool", "wrong", "put", str(src), "--to", "a.txt")

    # node1 gets a new certificate (same CA): the pinned config refuses it, the CA config takes it
    DevCA(tls_pool.devpool / "tls").issue(node1_cert.parent)
    tls_pool.run("devpool", "stop", "node1")
    tls_pool.run("devpool", "start", "node1")
    r = tls_pool.run("--pool", "wrong", "status", ok=False)
    assert "node1" in r.stdout and "other than the one trusted" in r.stdout, r.stdout
    assert not any(line.startswith("node2:") for line in r.stdout.splitlines())  # node2 is still trusted
    tls_pool.run("get", "a.txt", str(tmp_path / "a-back.txt"))
    assert (tmp_path / "a-back.txt").read_text() == "pinned"


def test_the_node_check_offers_the_certificate_to_trust(tls_pool: Home) -> None:
    """What the wizard and 'pool add-node' see for a node whose CA the system does not know."""
    creds_file = tls_pool.devpool / "credentials.json"
    c = json.loads(creds_file.read_text())["default"]
    creds = Credentials(c["access_key"], c["secret_key"])
    endpoint = next(line.split('"')[1] for line in tls_pool.pool_toml.read_text().splitlines()
                    if line.startswith("endpoint"))
    check = check_node(NodeConfig("n", endpoint, secure=True), creds, "pooldrive")
    assert not check.ok and check.title == "Certificate not trusted"
    assert check.fingerprint == pem_fingerprint((tls_pool.devpool / "tls" / "node1" / "public.crt").read_bytes())
    assert check_node(NodeConfig("n", endpoint, secure=True, cert_sha256=check.fingerprint), creds, "pooldrive").ok
    assert check_node(NodeConfig("n", endpoint, secure=True, ca_file=str(tls_pool.devpool / "tls" / "ca.crt")),
                      creds, "pooldrive").ok
    check = check_node(NodeConfig("n", endpoint, secure=False), creds, "pooldrive")
    assert not check.ok and "expects https" in check.message


def test_plain_http_to_another_machine_is_warned_about(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.run("pool", "create", "office")
    toml = home.root / "xdg_config_home" / "pooldrive" / "pools" / "office.toml"
    toml.write_text(toml.read_text().replace('credentials = "keyring"', 'credentials = "file"')
                    .replace('credentials_file = ""', f'credentials_file = "{tmp_path / "c.json"}"'))
    r = home.run("--pool", "office", "pool", "add-node", "nas", "192.0.2.10:9000")
    assert "plain http" in r.stdout and "unencrypted" in r.stdout
    r = home.run("--pool", "office", "pool", "add-node", "local", "127.0.0.1:9000")
    assert "plain http" not in r.stdout


def test_an_invitation_carries_the_owners_trust_in_each_node(tls_pool: Home, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipient of a share on https nodes trusts them as the owner does (the CA's certificate travels
    in the invitation, never a key) and reaches them with the share's own key."""
    from sync_agent import config
    from sync_agent.pool import Pool
    from sync_agent.sharing import invitation, shares
    from sync_agent.sharing.policy import ShareMode

    with Pool(config.load_pool(str(tls_pool.pool_toml)), catalog_path=tmp_path / "owner.sqlite3") as owner:
        owner.put_bytes("team/plan.txt", b"plan")
        _, inv = shares.create_share(owner, "team", ShareMode.READ_ONLY)  # the admin API over https too
    got = invitation.decode(invitation.encode(inv))
    ca_text = (tls_pool.devpool / "tls" / "ca.crt").read_text()
    assert all(n.secure and n.ca_pem == ca_text and "PRIVATE" not in n.ca_pem for n in got.nodes)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "recipient-config"))
    node = shares._trusted_node("shared-team", got.nodes[0])
    assert Path(node.ca_file).read_text() == ca_text and Path(node.ca_file).stat().st_mode & 0o777 == 0o600
    client = NodeClient(node, Credentials(got.access_key, got.secret_key), got.bucket, scope=got.folder + "/")
    try:
        assert client.probe() > 0  # the share's key, over https, trusting the CA from the invitation
    finally:
        client.close()
