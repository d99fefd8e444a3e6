"""Network profiles as Toxiproxy toxics (pure data; the proxies themselves are used in test_wan)."""

from __future__ import annotations

import pytest

from sync_agent.netshape.profiles import PROFILES, Link, changed, profile_links


def test_a_link_splits_its_round_trip_and_limits_both_directions() -> None:
    toxics = {t["name"]: t for t in Link(rtt_ms=80, jitter_ms=10, rate_mbit=20).toxics()}
    assert toxics["latency_upstream"]["attributes"] == {"latency": 40, "jitter": 5}
    assert toxics["latency_downstream"]["attributes"] == {"latency": 40, "jitter": 5}
    assert toxics["bandwidth_upstream"]["attributes"] == {"rate": 2500}  # KB/s
    assert Link().toxics() == []
    flaky = {t["type"]: t for t in Link(resets=0.05, slow_close_ms=200).toxics()}
    assert flaky["reset_peer"]["toxicity"] == 0.05 and flaky["slow_close"]["attributes"] == {"delay": 200}


def test_profiles_cover_any_node_count_and_refuse_nonsense() -> None:
    links = profile_links("wan", 6)
    assert [link.label for link in links] == ["LAN", "VPS", "home", "flaky", "LAN", "VPS"]
    assert set(PROFILES) >= {"loopback", "lan", "wan"}
    with pytest.raises(ValueError, match="profiles: loopback"):
        profile_links("moon", 2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Link(resets=2)
    assert changed(links[1], rtt_ms=300, rate_mbit=None).describe() == "VPS: 300 ms RTT +-10, 100 Mbit/s"


def test_files_in_flight_follow_the_round_trip() -> None:
    from sync_agent.transfer import FEWEST_IN_FLIGHT, MOST_IN_FLIGHT, files_in_flight

    assert files_in_flight([]) == FEWEST_IN_FLIGHT
    assert files_in_flight([0.001, 0.002, 0.001, 0.003]) == FEWEST_IN_FLIGHT  # loopback / LAN: CPU-bound
    assert files_in_flight([0.001, 0.04, 0.08, 0.02]) == 24  # median 40 ms
    assert files_in_flight([0.3, 0.4, 0.5]) == MOST_IN_FLIGHT
