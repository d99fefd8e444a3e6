"""Checking a node before it joins: the messages the CLI and the wizard show, on real servers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from sync_agent.config import NodeConfig
from sync_agent.credentials import Credentials
from sync_agent.minio_server import free_port
from sync_agent.node_check import check_node
from tests.nodepool import TLS, NodePool


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain web server that is not S3."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{port}"
    server.shutdown()


def _node1(nodes: NodePool) -> NodeConfig:
    """node1 as a pool config names it (https with the run's CA when the suite runs over TLS)."""
    return replace(nodes.config("check-bucket", nodes=["node1"]).nodes[0], name="a")


def test_good_node(shared_nodes: NodePool) -> None:
    n = shared_nodes["node1"]
    c = check_node(_node1(shared_nodes), Credentials(n.access_key, n.secret_key), "check-bucket")
    assert c.ok and c.title == "Connected" and c.admin is True and "will be created" in c.message


def test_wrong_secret(shared_nodes: NodePool) -> None:
    n = shared_nodes["node1"]
    c = check_node(_node1(shared_nodes), Credentials(n.access_key, "wrong-secret"), "check-bucket")
    assert not c.ok and c.title == "Wrong credentials" and n.access_key in c.message


def test_unreachable() -> None:
    c = check_node(NodeConfig("a", f"127.0.0.1:{free_port()}"), Credentials("a", "b"), "check-bucket", timeout=1)
    assert not c.ok and c.title == "Unreachable" and "Nothing answers" in c.message


@pytest.mark.skipif(TLS, reason="the nodes serve https in this run (test_tls covers http against https)")
def test_https_against_an_http_node(shared_nodes: NodePool) -> None:
    n = shared_nodes["node1"]
    c = check_node(NodeConfig("a", n.endpoint, secure=True), Credentials(n.access_key, n.secret_key), "check-bucket")
    assert not c.ok and c.title == "TLS problem" and "does not speak TLS" in c.message


def test_not_an_s3_server(web_server: str) -> None:
    c = check_node(NodeConfig("a", web_server), Credentials("a", "b"), "check-bucket")
    assert not c.ok and c.title == "Not an S3 server" and "HTTP 404" in c.message, c
