"""A copy of an installed connector's package whose API base URL points at the simulator: the
connectors name Intercom's host in their code, so the peers run a copy, made at run time, with
that one line changed, first on the path."""
import os
import pathlib
import shutil
import tempfile


def relocated(module, relative_file, old, new):
    """Copies `module`'s package into a fresh folder, replaces `old` (which must be there) with
    `new` in `relative_file`, and returns the folder and an environment that imports the copy."""
    work = pathlib.Path(tempfile.mkdtemp())
    package = work / pathlib.Path(module.__file__).parent.name
    shutil.copytree(pathlib.Path(module.__file__).parent, package)
    path = package / relative_file
    text = path.read_text()
    assert old in text, f"{relative_file} no longer holds {old!r}"
    path.write_text(text.replace(old, new))
    return work, dict(os.environ, PYTHONPATH=str(work))
