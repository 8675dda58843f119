"""Add byte code to a function zip, compiled by the Python running this file.

    python3.12 deploy/bytecode.py SOURCE_ZIP TARGET_ZIP

Standard library only, so that the runtime's Python (``chalicelayer.build.RUNTIME``)
can run it whatever the packaging Python is: byte code is specific to one
CPython version, and Lambda ignores byte code of another. ``deploy.package``
runs it in-process when the packaging Python is the runtime's, else with the
runtime's interpreter.

/var/task is read-only on Lambda, so source without byte code is compiled on
every cold start (about 70 ms for this app, measured by ``python -m bench``).
The byte code is hash-checked without reading the source ("unchecked hash",
PEP 552), so zip timestamps cannot make it stale.
"""

from __future__ import annotations

import importlib.util
import marshal
import sys
import zipfile
from pathlib import Path


def add_byte_code(source_zip: Path, target_zip: Path) -> None:
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(source_zip) as src, \
            zipfile.ZipFile(target_zip, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data)
            if not info.filename.endswith(".py"):
                continue
            code = compile(data, "/var/task/" + info.filename, "exec", dont_inherit=True)
            folder, _, name = info.filename.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{name[:-3]}.{tag}.pyc"
            source_hash = importlib.util.source_hash(data)
            header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + source_hash
            entry = zipfile.ZipInfo(pyc, date_time=info.date_time)
            entry.external_attr = info.external_attr
            dst.writestr(entry, header + marshal.dumps(code), zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    add_byte_code(Path(sys.argv[1]), Path(sys.argv[2]))
