"""Build hook: compile every gettext catalogue (`<package>/locale/<lang>/LC_MESSAGES/<domain>.po`) to `.mo`.

The `.mo` files are not committed. A wheel (`pip install .`) gets them compiled into the build directory; an
editable install (`pip install -e .`, what scripts/demo and scripts/test run) gets them beside the `.po` files in
the source tree, which is where an editable install reads its package data. Everything else is in pyproject.toml.
"""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

PACKAGES = ("engine", "workflows", "api", "notifications")


def compile_catalogues(root: Path) -> list[Path]:
    """Compile each `.po` under root's packages to the `.mo` beside it; return the files written."""
    written = []
    for package in PACKAGES:
        for po in sorted((root / package).glob("locale/*/LC_MESSAGES/*.po")):
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name, domain=po.stem)
            mo = po.with_suffix(".mo")
            with mo.open("wb") as out:
                write_mo(out, catalog)
            written.append(mo)
    return written


class BuildWithCatalogues(build_py):
    """build_py that also compiles the catalogues (in place when editable, in build_lib otherwise)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            compile_catalogues(Path(__file__).resolve().parent)
        else:
            compile_catalogues(Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithCatalogues})
