"""Build step the pyproject.toml metadata cannot express: the top-level k8s/ and charts/ folders
(the templates `ko-child-asr-submit` renders) are copied into the package as trainer/_templates/
(trainer.pipeline.render.SHIPPED_DIR), so an installed package renders without a checkout."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATE_FOLDERS = ("k8s", "charts")


class BuildWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install renders from the checkout itself
            return
        for folder in TEMPLATE_FOLDERS:
            shutil.copytree(Path(folder), Path(self.build_lib, "trainer", "_templates", folder), dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithTemplates})
