"""Download helpers shared by the data loaders (numpy-free, standard library only).

* :func:`is_reachable` / :func:`reachable_urls`: a bounded reachability check,
  so that offline machines fail within seconds instead of hanging in DNS;
* :func:`download_file`: a streamed download into a temp file next to its
  destination, with progress on stderr, checked by size and MD5, then moved
  into place atomically (the destination never holds a partial file).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

__all__ = [
    "REACHABILITY_TIMEOUT_S",
    "DOWNLOAD_TIMEOUT_S",
    "is_reachable",
    "reachable_urls",
    "download_file",
]

PathLike = Union[str, os.PathLike]

# Seconds for the whole reachability check, so offline machines fail fast.
REACHABILITY_TIMEOUT_S = 3.0
# Per-read socket timeout of a download.
DOWNLOAD_TIMEOUT_S = 30.0


def is_reachable(url: str, timeout: float = REACHABILITY_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    The connect runs in a daemon thread because DNS resolution ignores socket
    timeouts and can stall for long on an offline machine.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result = []

    def connect():
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def reachable_urls(urls: Iterable[str], check: Optional[Callable[[str, float], bool]] = None,
                   budget: float = REACHABILITY_TIMEOUT_S) -> list:
    """The URLs whose host answers, all checked within one short time budget.

    Args:
      urls: URLs, checked in order.
      check: ``check(url, timeout) -> bool``; default :func:`is_reachable`
        (tests pass their own).
      budget: seconds for all the checks together.

    Returns:
      The reachable URLs, in the given order.
    """
    check = is_reachable if check is None else check
    deadline = time.monotonic() + budget
    reachable = []
    for url in urls:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if check(url, remaining):
            reachable.append(url)
    return reachable


def _progress(name: str, done: int, total: int) -> None:
    print(f"\r  {name}: {100 * done // max(total, 1):3d}% ({done / 1e6:.1f}/{total / 1e6:.1f} MB)",
          end="", file=sys.stderr, flush=True)


def _fetch(url: str, name: str, size: int, tmp_path: Path) -> tuple[int, str]:
    """Streams ``url`` into ``tmp_path``; returns (size, md5). Stops past the expected size."""
    md5, done, last = hashlib.md5(), 0, -1
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp_path, "wb") as out:
        while done <= size:  # a wrong or endless stream cannot fill the disk
            chunk = response.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            md5.update(chunk)
            done += len(chunk)
            percent = 100 * done // max(size, 1)
            if percent != last:
                last = percent
                _progress(name, done, size)
    print(file=sys.stderr)
    return done, md5.hexdigest()


def download_file(url: str, folder: PathLike, name: str, size: int, md5: str) -> Path:
    """Downloads ``url`` to ``folder/name`` via a temp file, checking size and MD5.

    Args:
      url: what to download (any scheme ``urllib`` opens, ``file://`` included).
      folder: destination folder; created if missing.
      name: destination file name.
      size: expected size in bytes; the stream is cut just past it.
      md5: expected MD5 (hex).

    Returns:
      The path of the verified file.

    Raises:
      ValueError: size or MD5 mismatch; the message names the file, the URL,
        the expected and the received values. The bad file is deleted.
      OSError: network or disk errors (``urllib.error.URLError`` included).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"downloading {url}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        got_size, got_md5 = _fetch(url, name, size, tmp_path)
        if got_size != size or got_md5 != md5:
            raise ValueError(f"{name} from {url}: expected {size} bytes with MD5 {md5}, "
                             f"got {got_size} bytes with MD5 {got_md5}; the file was deleted.")
        final = folder / name
        os.replace(tmp_path, final)  # atomic: the destination never holds a partial file
        return final
    finally:
        tmp_path.unlink(missing_ok=True)
