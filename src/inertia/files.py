"""Output files: every file inertia writes goes through ``atomic_write`` (or ``atomic_path``),
and every output path is checked with ``check_output`` before any work starts.

Writing: a temporary file beside the target, named ``.NAME.inertia-tmp-PID-RANDOM.EXT``
(recognisable, and with the target's extension, which some writers read), is written,
flushed, fsynced and renamed over the target; on any error it is removed. Temporaries left by
a killed process (its PID no longer running) are removed by the next write of the same target.
An existing target keeps its permission bits; a symlink is followed (its target is replaced,
the link stays); a directory, device, pipe or socket is refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

TMP_TAG = ".inertia-tmp-"

# picture formats by extension; jpeg needs Pillow (matplotlib's own dependency)
PICTURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg",
                   ".jpeg": "jpeg"}


def npz_problem(path):
    """Why ``path`` cannot be a .npz archive, read from its first bytes (a NumPy .npy array,
    or not a zip archive at all), or None when it may be one. np.load would take any other
    file for pickled data and say so."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        return "it is a NumPy .npy array, not a .npz archive"
    if not magic.startswith(b"PK"):
        return "it is not a .npz archive"
    return None


def _flag(flag, path):
    return f"{flag} {path}" if flag else str(path)


def resolve(path):
    """The file a write to ``path`` replaces: ``path`` itself, or the end of its symlinks."""
    path = os.fspath(path)
    return os.path.realpath(path) if os.path.islink(path) else path


def _refuse_special(path, real, flag):
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return
    except OSError as ex:
        raise ValueError(f"cannot write {_flag(flag, path)}: {ex.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{_flag(flag, path)} is a directory: give a file path inside it")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{_flag(flag, path)} is not a regular file (a device, pipe or "
                         "socket): give a file path")


def check_output(path, flag=None, *, stdout_ok=False, picture=False, archive=False):
    """Check, before any work, that ``path`` can be written: not empty, not a directory or
    special file, its folder exists and accepts a new file (probed by creating and removing a
    temporary). ``stdout_ok``: ``-`` means standard output. ``picture``: the extension must
    name a picture format matplotlib can write. ``archive``: it must end in .npz (a model,
    written as a .npz archive whatever its name). ``flag`` names the option in messages.
    Returns the path (``-`` unchanged); raises a one-line ValueError otherwise."""
    if path is None or not str(path).strip():
        raise ValueError(f"{flag or 'the output path'} is empty: give a file path")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{flag or 'the output path'} must be a file path (str or "
                         f"pathlib.Path), got {type(path).__name__} {path!r}")
    path = os.fspath(path)
    if path == "-" and stdout_ok:
        return path
    if picture:
        picture_format(path, flag)
    if archive and not path.lower().endswith(".npz"):
        raise ValueError(f"{_flag(flag, path)}: a model is written as a .npz archive: end "
                         "the name in .npz")
    real = resolve(path)
    _refuse_special(path, real, flag)
    if os.path.isfile(real) and not os.access(real, os.W_OK):
        raise ValueError(f"cannot write {_flag(flag, path)}: the file is read-only; make it "
                         "writable (chmod u+w) or give another path")
    folder = os.path.dirname(os.path.abspath(real))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {_flag(flag, path)}: the folder {folder} does not "
                         "exist")
    try:
        fd, tmp = _make_temp(real, 0o600)
    except OSError as ex:
        raise ValueError(f"cannot write {_flag(flag, path)}: {ex.strerror or ex} "
                         f"(in {folder})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return path


def check_distinct(outputs, inputs=()):
    """A one-line ValueError when two outputs, or an output and an input, are one file
    (``outputs``, ``inputs``: (flag, path) pairs; None and "-" are skipped): writing one
    would replace the other."""
    def key(path):
        return os.path.normcase(os.path.realpath(os.fspath(path)))

    seen = [(flag, key(path)) for flag, path in inputs
            if path is not None and path != "-" and os.path.isfile(path)]
    for flag, path in outputs:
        if path is None or path == "-":
            continue
        for other, k in seen:
            if k == key(path):
                raise ValueError(f"{flag} {path} is the same file as {other}: writing it would "
                                 f"replace {other}'s file; give {flag} another path")
        seen.append((flag, key(path)))


def check_folder(path, flag=None):
    """Create the output folder ``path`` if needed and check that it accepts new files.
    Returns the path; raises a one-line ValueError otherwise."""
    if path is None or not str(path).strip():
        raise ValueError(f"{flag or 'the output folder'} is empty: give a folder")
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{_flag(flag, path)} is not a folder: give a folder for the output")
    try:
        os.makedirs(path, exist_ok=True)
        fd, tmp = _make_temp(os.path.join(path, "probe"), 0o600)
    except OSError as ex:
        raise ValueError(f"cannot write into {_flag(flag, path)}: {ex.strerror or ex}"
                         ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return path


def picture_format(path, flag=None):
    """The matplotlib format for ``path``'s extension (png, pdf, svg, jpeg), or a one-line
    ValueError naming the ones that work."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    fmt = PICTURE_FORMATS.get(ext)
    if fmt == "jpeg":
        try:
            import PIL  # noqa: F401  (matplotlib writes jpeg through Pillow)
        except ImportError:
            fmt = None
    if fmt is None:
        raise ValueError(f"{_flag(flag, path)}: cannot draw a picture of type "
                         f"{ext or '(no extension)'}: end the name in .png, .pdf, .svg or .jpg")
    return fmt


def _temp_prefix(real):
    return "." + os.path.basename(real) + TMP_TAG


def _make_temp(real, mode):
    folder = os.path.dirname(os.path.abspath(real))
    ext = os.path.splitext(real)[1]
    name = f"{_temp_prefix(real)}{os.getpid()}-{secrets.token_hex(4)}{ext}"
    tmp = os.path.join(folder, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def stale_temporaries(path):
    """Temporaries of ``path`` left by processes that no longer run."""
    real = resolve(path)
    folder = os.path.dirname(os.path.abspath(real))
    prefix = _temp_prefix(real)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        path = os.path.join(folder, name)
        if pid.isdigit() and not _running(int(pid)) and path not in _OPEN:
            stale.append(path)
    return stale


_OPEN = set()                        # this process's temporaries being written now


def _running(pid):
    if pid == os.getpid():
        return False                 # ours, unless in _OPEN: an earlier interrupted write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True                  # exists, owned by someone else
    return True


def _new_mode(real):
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask        # as an ordinary open() would create it


@contextlib.contextmanager
def atomic_path(path, flag=None):
    """``with atomic_path(p) as tmp:`` write the file named ``tmp`` (it has ``p``'s
    extension); on a clean exit it replaces ``p`` (through symlinks, keeping ``p``'s permission
    bits), on an error it is removed and ``p`` is untouched. OSErrors become one-line
    ValueErrors naming the path."""
    path = os.fspath(path)
    real = resolve(path)
    _refuse_special(path, real, flag)
    folder = os.path.dirname(os.path.abspath(real))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {_flag(flag, path)}: the folder {folder} does not "
                         "exist")
    for old in stale_temporaries(real):
        with contextlib.suppress(OSError):
            os.unlink(old)
    try:
        fd, tmp = _make_temp(real, _new_mode(real))
    except OSError as ex:
        raise ValueError(f"cannot write {_flag(flag, path)}: {ex.strerror or ex}") from None
    os.close(fd)
    _OPEN.add(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, real)
        _sync_folder(folder)
    except BaseException as ex:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(ex, OSError):
            raise ValueError(f"cannot write {_flag(flag, path)}: {ex.strerror or ex}"
                             ) from None
        raise
    finally:
        _OPEN.discard(tmp)


def atomic_write(path, write, flag=None):
    """Call ``write(fileobj)`` (a binary file) on a temporary file beside ``path``, flush and
    fsync it, then rename it over ``path`` (see ``atomic_path``). On any error the temporary
    file is removed and ``path`` is untouched."""
    with atomic_path(path, flag) as tmp:
        with open(tmp, "wb") as f:
            write(f)


def _sync_folder(folder):
    """fsync the folder so that the rename itself is durable (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
