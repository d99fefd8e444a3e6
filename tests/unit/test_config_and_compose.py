from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sync_agent import config
from sync_agent.config import NodeConfig, PoolConfig
from sync_agent.errors import ConfigError
from sync_agent.minio_server import MINIO_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_pool_config_round_trips(tmp_path: Path) -> None:
    cfg = PoolConfig(name="home", bucket="pooldrive-home", replicas=3, write_quorum=2,
                     nodes=(NodeConfig("a", "nas:9000", 2.0, "attic"), NodeConfig("b", "pi:9000")))
    path = config.save_pool(cfg, tmp_path / "home.toml")
    again = config.parse_pool(path.read_text(), path)
    assert again == cfg
    assert "secret" not in path.read_text().lower()


@pytest.mark.parametrize("change, message", [
    ({"name": "Bad Name"}, "Pool name"), ({"bucket": "B"}, "bucket"), ({"replicas": 0}, "Redundancy"),
    ({"write_quorum": 5}, "quorum"), ({"nodes": (NodeConfig("a", "http://x:1"),)}, "without a scheme"),
    ({"nodes": (NodeConfig("a", "x:1"), NodeConfig("a", "y:1"))}, "same name"),
    ({"nodes": (NodeConfig("a", "x:1", weight=0),)}, "weight"),
])
def test_bad_configs_are_refused_with_a_reason(change: dict, message: str) -> None:
    cfg = PoolConfig(**{"name": "p", "bucket": "pooldrive-p", **change})
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert message.lower() in e.value.message.lower()


def test_docker_compose_matches_its_pool_config_and_the_pinned_minio() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    pool = config.parse_pool((ROOT / "resources/pools/docker-compose.toml").read_text())
    services = compose["services"]
    assert sorted(services) == sorted(n.name for n in pool.nodes) and len(services) == 4
    for node in pool.nodes:
        svc = services[node.name]
        host_ports = {p.split(":")[-2]: p.split(":")[-1] for p in svc["ports"]}
        assert host_ports[node.endpoint.split(":")[1]] == "9000", (node, svc["ports"])
        assert any(p.endswith(":9001") for p in svc["ports"]), "console port"
        assert svc["healthcheck"]["test"][-1].endswith("/minio/health/live")
        assert any(v.startswith(f"{node.name}-data:") for v in svc["volumes"])
        env = svc["environment"]
        assert "?" in env["MINIO_ROOT_USER"] and "minioadmin" not in str(env)  # no default credentials
    assert pool.credentials == "keyring" and pool.replicas == 2
    dockerfile = (ROOT / "packaging/minio.Dockerfile").read_text()
    assert re.search(rf"MINIO_VERSION={re.escape(MINIO_VERSION)}\b", dockerfile)


def test_dev_pool_and_compose_pool_agree_on_shape(tmp_path: Path) -> None:
    """Same node names, same redundancy, same bucket: what runs in Docker is what the dev pool gives."""
    from sync_agent.devpool import DevPool

    compose_pool = config.parse_pool((ROOT / "resources/pools/docker-compose.toml").read_text())
    dp = DevPool(tmp_path / "dp")
    cfg = PoolConfig(name="dev", bucket="pooldrive", replicas=2, credentials="file",
                     credentials_file=str(dp.credentials_file),
                     nodes=tuple(NodeConfig(f"node{i}", f"127.0.0.1:{9000 + i}") for i in range(1, 5)))
    assert [n.name for n in cfg.nodes] == [n.name for n in compose_pool.nodes]
    assert (cfg.bucket, cfg.replicas) == (compose_pool.bucket, compose_pool.replicas)
