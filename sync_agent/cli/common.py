"""What every CLI command shares: opening the pool the user chose."""

from __future__ import annotations

import argparse

from sync_agent.pool import Pool


def open_pool(args: argparse.Namespace) -> Pool:
    return Pool.open(args.pool)
