"""The `pooldrive` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from sync_agent import api
from sync_agent.api import PoolDriveError

# command groups, each a module with register(subparsers); a missing optional one is skipped
COMMAND_MODULES = ["devpool_cmd", "pool_cmd", "files_cmd", "history_cmd", "status_cmd", "catalog_cmd",
                   "maintenance_cmd", "policy_cmd", "sync_cmd", "share_cmd", "desktop_cmd"]
# which module registers each command: a command loads only its own group (every group loaded made each
# command start ~60 ms later); help, or a name not here, loads them all (tests check this table)
COMMANDS = {"devpool": "devpool_cmd", "pool": "pool_cmd", "status": "status_cmd", "catalog": "catalog_cmd",
            "policy": "policy_cmd", "sync": "sync_cmd", "share": "share_cmd", "purge": "history_cmd",
            **dict.fromkeys(("put", "get", "ls", "mv", "rm", "stat", "versions", "restore", "conflicts"), "files_cmd"),
            **dict.fromkeys(("repair", "rebalance", "scrub", "node"), "maintenance_cmd"),
            **dict.fromkeys(("desktop", "autostart", "session"), "desktop_cmd")}


class _Version(argparse.Action):
    """--version among other arguments: the version is looked up only when asked for (16 ms of metadata)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"pooldrive {api.app_version()}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with only ``command``'s group when it is known (else every group)."""
    parser = argparse.ArgumentParser(prog="pooldrive", description="Your files on a pool of your own MinIO nodes.")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument("--pool", help="pool name or config file (default: $POOLDRIVE_POOL or the only pool)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sync_agent.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"sync_agent.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command ``argv`` (global options first) names, or None (help, or none given)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--pool":
            i += 2
            continue
        if a.startswith("-"):
            if a in ("-h", "--help"):
                return None
            i += 1
            continue
        return a
    return None


def hoist_global_options(argv: list[str]) -> list[str]:
    """Let --json, --pool and -v stand anywhere (`pooldrive ls -l --json`), not only before the command."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            break
        if a in ("--json", "-v", "--verbose"):
            front.append(a)
        elif a == "--pool" and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 1
        elif a.startswith("--pool="):
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


def _leaf_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The parser of the (sub)command ``argv`` names: 'pool add-node ...' -> add-node's."""
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs and token in subs[0].choices:
            parser = subs[0].choices[token]
    return parser


def print_error(e: PoolDriveError) -> None:
    from sync_agent.cli.output import print_error as show  # rich loads only when there is something to show

    show(e)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # answered before the command groups (and rich) are loaded: ~140 ms -> ~70 ms
        print(f"pooldrive {api.app_version()}")
        return 0
    argv = hoist_global_options(argv)
    parser = build_parser(_command_in(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, with its own usage line (not the global one)
        _leaf_parser(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # a dead node is reported once, in words, not as urllib3 retry chatter
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    old_umask = os.umask(0o077)  # catalogs, sync state, logs, configs and invitations are the user's alone
    api.keep_user_umask(old_umask)  # downloads and synced files get the user's own modes
    try:
        api.secure_tree()  # and so are those an older version left readable
        return int(args.func(args) or 0)
    except PoolDriveError as e:
        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        print_error(PoolDriveError("Interrupted.", title="Stopped"))
        return 130
    except Exception as e:  # a bug: said in words, the details in the log, never a traceback on screen
        logging.getLogger("pooldrive").debug("unexpected error", exc_info=True)
        print_error(PoolDriveError(f"{type(e).__name__}. Run again with --verbose for "
                                   "details, and please report it.", title="Internal error"))
        return 70
    finally:
        os.umask(old_umask)  # main() is also called in-process (tests, the bundle)


if __name__ == "__main__":
    sys.exit(main())
