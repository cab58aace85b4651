"""Where the loaders look for a data set, in one order, with one help text.

Every static-image loader searches, in this order:

1. ``data_dir``, when given: the only source (an explicit folder never falls
   through to the others);
2. prepared copies on the machine: system folders (e.g. Debian's
   ``/usr/share/datasets/``) or a tensorflow-datasets copy (:func:`tfds_data_dir`);
3. the cache, ``<cache root>/<name>`` (:func:`cache_root`);
4. the official download into the cache, when allowed and reachable.

:func:`search` runs that order; each loader hands it the readers of its own
formats. When nothing has the data it raises :class:`DataNotFoundError`,
whose message lists what was tried and the ways to get the data
(:func:`help_text`). The event-camera loaders have only step 1 and raise the
same error type.

The library names its argument ``data_dir`` in these messages; a command that
exposes it under another name (a flag such as ``--data-dir``) rephrases the
error with :meth:`DataNotFoundError.rephrased`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar, Union

from nsnn_jax.data import download as _download

__all__ = [
    "DATA_DIR",
    "DataNotFoundError",
    "cache_root",
    "tfds_data_dir",
    "help_text",
    "search",
    "find_root",
]

PathLike = Union[str, os.PathLike]
T = TypeVar("T")

#: Placeholder for the name of the ``data_dir`` argument in error templates.
DATA_DIR = "{data_dir}"

# One attempt at a source: appends to ``tried`` why it had nothing, or returns the data.
Attempt = Callable[[list], Optional[T]]


class DataNotFoundError(FileNotFoundError):
    """No source had the data, or ``data_dir`` lacks it.

    The message is built from a template in which :data:`DATA_DIR` stands for
    the name of the argument the user sets; ``str(error)`` says ``data_dir``.

    Attributes:
      template: the message with :data:`DATA_DIR` placeholders.
    """

    def __init__(self, template: str):
        self.template = template
        super().__init__(template.replace(DATA_DIR, "data_dir"))

    def rephrased(self, data_dir: str) -> "DataNotFoundError":
        """The same error naming the argument ``data_dir`` (e.g. ``"--data-dir"``).

        Args:
          data_dir: how the caller's users set the folder, e.g. a flag name.

        Returns:
          A :class:`DataNotFoundError` whose message says ``data_dir``.
        """
        return DataNotFoundError(self.template.replace(DATA_DIR, data_dir))


def cache_root(cache_dir: Optional[PathLike] = None) -> Path:
    """The root of the data cache.

    Args:
      cache_dir: explicit root; default ``$NSNN_JAX_DATA`` or ``~/.cache/nsnn_jax``.

    Returns:
      The root folder (``~`` expanded); data sets live in per-set subfolders.
    """
    root = cache_dir or os.environ.get("NSNN_JAX_DATA") or Path.home() / ".cache" / "nsnn_jax"
    return Path(root).expanduser()


def tfds_data_dir(tfds_dir: Optional[PathLike] = None) -> Path:
    """The tensorflow-datasets data folder.

    Args:
      tfds_dir: explicit folder; default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    Returns:
      The folder (``~`` expanded).
    """
    folder = tfds_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets"
    return Path(folder).expanduser()


def help_text(name: str, tried: Sequence[str], data_dir_holds: str, ways: Sequence[str]) -> str:
    """The message of a data set that no source had, as a :class:`DataNotFoundError` template.

    Args:
      name: the data set's name.
      tried: one line per source tried and why it had nothing.
      data_dir_holds: what a ``data_dir`` folder must hold.
      ways: the other ways to get the data, in the order to suggest them.

    Returns:
      ``Could not find <name>. Tried: ... Get it one of these ways: 1. pass DIR
      as data_dir, a folder holding <data_dir_holds>; 2. <ways[0]> ...``, with
      :data:`DATA_DIR` for the argument's name.
    """
    all_ways = [f"pass DIR as {DATA_DIR}, a folder holding {data_dir_holds}", *ways]
    lines = [f"Could not find the {name} data set. Tried:"]
    lines += [f"  - {line}" for line in tried]
    lines.append("Get it one of these ways:")
    lines += [f"  {i}. {way}" for i, way in enumerate(all_ways, 1)]
    return "\n".join(lines)


def search(name: str, data_dir: Optional[PathLike], from_data_dir: Callable[[Path], T],
           prepared: Sequence[Attempt], from_cache: Attempt, fetch: Callable[[list, list], Optional[T]],
           urls: Sequence[str], download: bool, data_dir_holds: str, ways: Sequence[str],
           reachable: Optional[Callable[[str, float], bool]] = None) -> T:
    """Runs the search order of the module docstring.

    Args:
      name: the data set's name, for messages.
      data_dir: the user's folder, or None.
      from_data_dir: reads ``data_dir`` (``~`` expanded); raises
        :class:`DataNotFoundError` when it lacks the data.
      prepared: attempts at prepared copies (system folders, tfds), in order;
        each ``attempt(tried)`` returns the data or None after appending to
        ``tried`` why not.
      from_cache: the same for the cache.
      fetch: ``fetch(reachable_urls, tried)`` downloads into the cache and
        returns the data, or None after appending the errors to ``tried``.
      urls: the download URLs, checked for reachability in one short budget.
      download: whether step 4 may run.
      data_dir_holds: what a ``data_dir`` folder must hold (help text).
      ways: the other ways to get the data (help text).
      reachable: ``reachable(url, timeout) -> bool``; default
        :func:`nsnn_jax.data.download.is_reachable` (tests pass their own).

    Returns:
      What the first source that had the data returned.

    Raises:
      DataNotFoundError: no source had the data (the message says how to get it).
      ValueError: a source holds a corrupt copy (raised by its reader).
    """
    if data_dir is not None:
        return from_data_dir(Path(data_dir).expanduser())
    tried: list = []
    for attempt in (*prepared, from_cache):
        found = attempt(tried)
        if found is not None:
            return found

    def not_found() -> DataNotFoundError:
        return DataNotFoundError(help_text(name, tried, data_dir_holds, ways))

    if not download:
        tried.append("download: disabled (download=False)")
        raise not_found()
    bases = _download.reachable_urls(urls, check=reachable)
    if not bases:
        tried.append(f"download: {', '.join(urls)} not reachable within "
                     f"{_download.REACHABILITY_TIMEOUT_S:g} s (offline?)")
        raise not_found()
    found = fetch(bases, tried)
    if found is None:
        raise not_found()
    return found


def find_root(data_dir: Optional[PathLike], subfolders: Sequence[str], entries: Sequence[str],
              is_entry: Callable[[Path], bool], make_error: Callable[[Optional[Path], str], DataNotFoundError]) -> Path:
    """The folder of a data set given only as ``data_dir`` (the event-camera sets).

    Args:
      data_dir: the folder the user gave, or ``None``.
      subfolders: folders inside ``data_dir`` that may hold the data instead
        (e.g. the name its archive extracts to).
      entries: names that the data set's folder holds (class folders, lists).
      is_entry: whether a path is such an entry (e.g. ``Path.is_dir``).
      make_error: builds the error for a folder (``None``: none given) and a problem.

    Returns:
      ``data_dir`` or the first of its ``subfolders`` holding every entry.

    Raises:
      DataNotFoundError: from ``make_error``, saying what is missing.
    """
    if data_dir is None:
        raise make_error(None, f"no {DATA_DIR} given.")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise make_error(folder, f"{DATA_DIR} {folder} does not exist.")
    for candidate in (folder, *(folder / sub for sub in subfolders)):
        if all(is_entry(candidate / name) for name in entries):
            return candidate
    absent = [name for name in entries if not is_entry(folder / name)]
    raise make_error(folder, f"{DATA_DIR} {folder} lacks {', '.join(absent)}.")
