"""Many files at once: upload or download a tree in parallel, keeping per-file errors apart.

One bad file (unreadable, a name S3 cannot hold, a checksum failure) is reported and the rest go on.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sync_agent import keys, paths, reader, small_writes, writer
from sync_agent.catalog.store import VersionInfo
from sync_agent.errors import InvalidPathError, LocalIOError, NotFoundError, PoolDriveError
from sync_agent.transfer import TransferControl

if TYPE_CHECKING:
    from sync_agent.pool import Pool

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unchanged, already there
    failed: list[tuple[str, PoolDriveError]] = field(default_factory=list)
    bytes: int = 0
    symlinks: list[str] = field(default_factory=list)  # not followed

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class PlannedUpload:
    local: Path
    remote: str
    size: int


def plan_upload(local: Path, remote: str | None = None) -> tuple[list[PlannedUpload], BatchResult]:
    """Which files an upload of ``local`` (a file or a folder) writes where. Symlinks are not followed."""
    result = BatchResult()
    if local.is_symlink():
        result.symlinks.append(str(local))
        return [], result
    if local.is_file():
        target = remote if remote and not remote.endswith("/") else (remote or "") + local.name
        try:
            return [PlannedUpload(local, keys.normalize(target), local.stat().st_size)], result
        except InvalidPathError as e:
            result.failed.append((str(local), e))
            return [], result
    if not local.is_dir():
        why = "is not a regular file or a folder (a pipe, socket or device)" if os.path.lexists(local) \
            else "does not exist"
        result.failed.append((str(local), LocalIOError(f"{local} {why}.", paths=[str(local)])))
        return [], result
    base = keys.normalize_dir(remote if remote is not None else local.name)
    plan: list[PlannedUpload] = []
    for dirpath, dirnames, filenames in os.walk(local):
        d = Path(dirpath)
        for name in list(dirnames):
            if (d / name).is_symlink():
                result.symlinks.append(str(d / name))
                dirnames.remove(name)
        for name in filenames:
            p = d / name
            if p.is_symlink():
                result.symlinks.append(str(p))
                continue
            rel = p.relative_to(local).as_posix()
            try:
                plan.append(PlannedUpload(p, keys.normalize(base + rel), p.stat().st_size))
            except InvalidPathError as e:
                result.failed.append((str(p), e))
            except OSError as e:
                result.failed.append((str(p), LocalIOError(f"Cannot read {p}: {e.strerror}", paths=[str(p)])))
    plan.sort(key=lambda u: u.remote)
    return _drop_name_clashes(plan, result), result


def _drop_name_clashes(plan: list[PlannedUpload], result: BatchResult) -> list[PlannedUpload]:
    """Two local names that are one pool name once normalized (e.g. 'café' precomposed and with a
    combining accent): neither is uploaded, both are reported, so neither silently replaces the other."""
    by_key: dict[str, list[PlannedUpload]] = {}
    for u in plan:
        by_key.setdefault(u.remote, []).append(u)
    keep = []
    for key, group in by_key.items():
        if len(group) == 1:
            keep.append(group[0])
            continue
        names = [str(u.local) for u in group]
        same = len({u.local.name for u in group}) == 1
        for u in group:
            others = ", ".join(repr(n) for n in names if n != str(u.local))
            why = "have the same name" if same else "differ only in Unicode normalization"
            result.failed.append((str(u.local), InvalidPathError(
                f"{u.local} and {others} {why} and would both be '{key}' on the pool; neither was uploaded. "
                "Rename one of them, or upload them to different folders.", paths=names)))
    return keep


def _run(items: Iterable, work: Callable, result: BatchResult, parallel: int,
         on_file: Callable[[str, int, PoolDriveError | None], None] | None,
         control: TransferControl | None = None, lock: threading.Lock | None = None) -> BatchResult:
    """``work`` on each of ``items`` (submitted as they come), ``parallel`` at once, each counted in
    ``result`` under ``lock`` (shared with whoever else counts there meanwhile)."""
    lock = lock or threading.Lock()

    def one(item: object) -> None:
        name, size = item.remote, item.size  # type: ignore[attr-defined]
        err: PoolDriveError | None = None
        skipped = False
        try:
            skipped = work(item)
        except PoolDriveError as e:
            err = e
        with lock:
            _tally(result, name, size, err, skipped)
        if on_file is not None:
            on_file(name, size, err)

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        try:
            for fut in [ex.submit(one, item) for item in items]:
                while True:  # a timeout now and then lets a Ctrl+C in: the kernel may hand the signal to any
                    try:     # thread, and a main thread blocked without one then sleeps through it to the end
                        fut.result(timeout=0.5)
                        break
                    except TimeoutError:
                        continue
        except BaseException:  # Ctrl+C: the files being moved stop at their next part, not at their end
            if control is not None:
                control.cancel()
            raise
    return result


def put_tree(pool: Pool, local: Path, remote: str | None = None, *, parallel: int | None = None,
           on_file: Callable[[str, int, PoolDriveError | None], None] | None = None,
           control: TransferControl | None = None) -> BatchResult:
    return put_trees(pool, [(local, remote)], parallel=parallel, on_file=on_file, control=control)


def put_trees(pool: Pool, sources: list[tuple[Path, str | None]], *, parallel: int | None = None,
                on_file: Callable[[str, int, PoolDriveError | None], None] | None = None,
                control: TransferControl | None = None) -> BatchResult:
    """Several local files or folders, each to its pool path, as one batch: two of them that would land
    on one pool name ('a/report.txt' and 'b/report.txt' into one folder) are refused before any byte
    moves, like two forms of one name inside a folder."""
    plan: list[PlannedUpload] = []
    result = BatchResult()
    for local, remote in sources:
        part, res = plan_upload(local, remote)
        plan.extend(part)
        result.failed.extend(res.failed)
        result.skipped.extend(res.skipped)
        result.symlinks.extend(res.symlinks)
    if len(sources) > 1:
        plan = _drop_name_clashes(plan, result)

    def work(u: PlannedUpload) -> bool:
        if control is not None:
            control.checkpoint()
        _, changed = writer.put_file(pool, u.local, u.remote, control=control.child() if control else None)
        if control is not None:
            control.advance(u.size)
        return not changed

    if control is not None:
        control.total = sum(u.size for u in plan)
    small = [u for u in plan if small_writes.fits(u.size)]
    given, parallel = parallel, parallel or pool.files_in_flight(files=len(plan))
    lock = threading.Lock()  # the batches' thread and the full path's workers both count in ``result``
    if len(small) > 1:  # new small files in batches; the rest, and whatever a batch hands back, one by one
        batched = given or pool.files_in_flight(small=True, files=len(small))
        rest = [u for u in plan if not small_writes.fits(u.size)]
        return _run(itertools.chain(rest, _beside_batches(pool, small, batched, result, on_file, control, lock)),
                    work, result, parallel, on_file, control, lock)
    return _run(plan, work, result, parallel, on_file, control, lock)


def _beside_batches(pool: Pool, small: list[PlannedUpload], parallel: int, result: BatchResult,
                    on_file: Callable[[str, int, PoolDriveError | None], None] | None,
                    control: TransferControl | None, lock: threading.Lock) -> Iterator[PlannedUpload]:
    """Write ``small`` in batches on a thread of their own, and yield each file a batch hands back as soon
    as it does, for the full path to start on while the batches go on: over a WAN the files with a copy
    on a far node (which batches leave to the full path) went up only after the last batch, one phase
    after the other, with the cores a quarter idle."""
    by_pair = {(u.local, u.remote): u for u in small}
    handed: queue.SimpleQueue[tuple[Path, str] | None] = queue.SimpleQueue()
    failure: list[BaseException] = []

    def noted(o: small_writes.Outcome) -> None:
        with lock:
            _tally(result, o.key, o.size, o.error)
        if on_file is not None:
            on_file(o.key, o.size, o.error)

    def batches() -> None:
        try:
            small_writes.put_new(pool, list(by_pair), parallel=parallel, on_file=noted, control=control,
                                 on_left=handed.put)
        except BaseException as e:  # said on the caller's thread
            failure.append(e)
        finally:
            handed.put(None)

    thread = threading.Thread(target=batches, name="pooldrive-batches", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = handed.get(timeout=0.5)  # a timeout now and then lets a Ctrl+C in
            except queue.Empty:
                continue
            if item is None:
                break
            yield by_pair[item]
    except BaseException:
        if control is not None:
            control.cancel()  # the batches record what they finished and hand back the rest
        raise
    finally:
        thread.join()
    if failure:
        raise failure[0]


def _tally(result: BatchResult, name: str, size: int, err: PoolDriveError | None, skipped: bool = False) -> None:
    """One file written, skipped (unchanged) or failed, in ``result`` (the caller serializes)."""
    if err is not None:
        result.failed.append((name, err))
    elif skipped:
        result.skipped.append(name)
    else:
        result.done.append(name)
        result.bytes += size


@dataclass(frozen=True)
class PlannedDownload:
    remote: str
    local: Path
    size: int
    version: VersionInfo | None = None  # what the folder walk already knows: no lookup per file


def plan_download(pool: Pool, remote: str, local: Path) -> tuple[list[PlannedDownload], BatchResult]:
    result = BatchResult()
    key = keys.normalize(remote, allow_root=True)
    info = pool.catalog.get(key) if key else None
    if info is not None:
        target = local / keys.basename(key) if local.is_dir() else local
        return [PlannedDownload(key, target, info.size)], result
    folder = keys.normalize_dir(key)
    root = local / keys.basename(key) if key and local.is_dir() else local
    plan = []
    land = keys.Targets(root)
    for f in pool.catalog.walk(folder):
        try:
            plan.append(PlannedDownload(f.path, land(f.path[len(folder):]), f.size, f.current))
        except InvalidPathError as e:
            result.failed.append((f.path, e))
    if not plan and not result.failed:
        raise NotFoundError(f"'{key or '/'}' is not in the pool.", paths=[key])
    existing = root if root.is_dir() else root.parent
    while not existing.is_dir() and existing != existing.parent:
        existing = existing.parent
    return drop_case_clashes(plan, result, paths.case_insensitive(existing)), result


def drop_case_clashes(plan: list[PlannedDownload], result: BatchResult,
                      case_insensitive: bool) -> list[PlannedDownload]:
    """Pool names that differ only in case ('Report.txt', 'report.txt') land on one file where the local
    file system ignores case: neither is downloaded (the second would overwrite the first), both are
    reported. Pure: the caller probes the file system."""
    if not case_insensitive:
        return plan
    groups: dict[str, list[PlannedDownload]] = {}
    for d in plan:
        groups.setdefault(str(d.local).casefold(), []).append(d)
    keep = []
    for group in groups.values():
        if len(group) == 1:
            keep.append(group[0])
            continue
        names = [d.remote for d in group]
        for d in group:
            others = ", ".join(repr(n) for n in names if n != d.remote)
            result.failed.append((d.remote, InvalidPathError(
                f"'{d.remote}' and {others} differ only in case, which the file system at {d.local.parent} "
                "cannot hold apart; neither was downloaded. Download them one at a time to different "
                "folders, or rename one on the pool.", paths=names)))
    return keep


def get_tree(pool: Pool, remote: str, local: Path, *, parallel: int | None = None,
             on_file: Callable[[str, int, PoolDriveError | None], None] | None = None,
             control: TransferControl | None = None) -> BatchResult:
    plan, result = plan_download(pool, remote, local)

    def work(d: PlannedDownload) -> bool:
        if control is not None:
            control.checkpoint()
        if d.version is not None:
            try:
                done = reader.get_small_version(pool, d.version, d.local)
            except OSError as e:  # a local problem: the full path says it with the file's name
                log.debug("fast path for %s: %s", d.remote, e)
                done = False
            if not done:
                reader.get_version(pool, d.version, d.local, control.child() if control else None,
                                   path_for_errors=d.remote)
        else:
            pool.get_file(d.remote, d.local)
        if control is not None:
            control.advance(d.size)
        return False

    if control is not None:
        control.total = sum(d.size for d in plan)
    small = [d for d in plan if d.version is not None and d.size <= reader.WHOLE_MAX]
    rest = [d for d in plan if d.version is None or d.size > reader.WHOLE_MAX]
    if small:  # one request each: more at once (``SMALL_IN_FLIGHT``), then the rest
        _run(small, work, result, parallel or pool.files_in_flight(small=True, files=len(small)), on_file, control)
    return _run(rest, work, result, parallel or pool.files_in_flight(files=len(rest)), on_file, control)
