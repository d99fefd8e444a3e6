"""What a network link between this computer and one node is like, and the named profiles of the dev pool.

Pure data: ``Link`` says it in the words a person uses (round trip, jitter, megabits, how often the link
drops a connection); ``toxics`` turns it into Toxiproxy toxics. A round trip is split evenly between the two
directions, and a bandwidth limit applies to both (the link is as slow sending as receiving).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Link:
    rtt_ms: int = 0  # round trip added to loopback's
    jitter_ms: int = 0  # +- on each direction's delay
    rate_mbit: float = 0.0  # 0: unlimited
    resets: float = 0.0  # share of connections the link cuts (TCP RST) once they carry data
    slow_close_ms: int = 0  # the far side holds a closing connection this long
    label: str = ""

    def __post_init__(self) -> None:
        if self.rtt_ms < 0 or self.jitter_ms < 0 or self.rate_mbit < 0 or self.slow_close_ms < 0:
            raise ValueError("link figures cannot be negative")
        if not 0.0 <= self.resets <= 1.0:
            raise ValueError("resets is a share of connections, between 0 and 1")

    def describe(self) -> str:
        if self == Link(label=self.label):
            return f"{self.label or 'loopback'}: no shaping"
        bits = [f"{self.rtt_ms} ms RTT" + (f" +-{self.jitter_ms}" if self.jitter_ms else "")]
        if self.rate_mbit:
            bits.append(f"{self.rate_mbit:g} Mbit/s")
        if self.resets:
            bits.append(f"{self.resets:.0%} of connections reset")
        if self.slow_close_ms:
            bits.append(f"slow close {self.slow_close_ms} ms")
        return (f"{self.label}: " if self.label else "") + ", ".join(bits)

    def toxics(self) -> list[dict[str, Any]]:
        """The Toxiproxy toxics that make a loopback proxy behave like this link."""
        out: list[dict[str, Any]] = []
        for stream in ("upstream", "downstream"):
            if self.rtt_ms or self.jitter_ms:
                out.append({"name": f"latency_{stream}", "type": "latency", "stream": stream, "toxicity": 1.0,
                            "attributes": {"latency": self.rtt_ms // 2, "jitter": self.jitter_ms // 2}})
            if self.rate_mbit:
                out.append({"name": f"bandwidth_{stream}", "type": "bandwidth", "stream": stream, "toxicity": 1.0,
                            "attributes": {"rate": max(1, int(self.rate_mbit * 125))}})  # KB/s
        if self.resets:
            # the reply direction: the request reaches the node, the answer is cut (the worst case)
            out.append({"name": "reset_downstream", "type": "reset_peer", "stream": "downstream",
                        "toxicity": self.resets, "attributes": {"timeout": 50}})
        if self.slow_close_ms:
            out.append({"name": "slow_close_downstream", "type": "slow_close", "stream": "downstream",
                        "toxicity": 1.0, "attributes": {"delay": self.slow_close_ms}})
        return out


LOOPBACK = Link(label="loopback")

# node1 on the LAN, node2 a VPS, node3 a home box behind a small uplink, node4 on a link that drops
# connections. A pool with more nodes repeats the pattern.
PROFILES: dict[str, tuple[Link, ...]] = {
    "loopback": (LOOPBACK,),
    "lan": (Link(rtt_ms=1, rate_mbit=1000, label="LAN"),),
    "wan": (Link(rtt_ms=1, label="LAN"),
            Link(rtt_ms=40, jitter_ms=10, rate_mbit=100, label="VPS"),
            Link(rtt_ms=80, rate_mbit=20, label="home"),
            Link(rtt_ms=20, jitter_ms=5, resets=0.05, slow_close_ms=200, label="flaky")),
}


def profile_links(profile: str, count: int) -> list[Link]:
    """One link per node for a named profile (ValueError names the profiles for an unknown one)."""
    try:
        pattern = PROFILES[profile]
    except KeyError:
        raise ValueError(f"no network profile '{profile}'; profiles: {', '.join(PROFILES)}") from None
    return [pattern[i % len(pattern)] for i in range(count)]


def changed(link: Link, **figures: Any) -> Link:
    """``link`` with some figures changed (None leaves a figure as it is)."""
    return replace(link, **{k: v for k, v in figures.items() if v is not None})
