"""Mage's run state kept out of the tracked pipeline files: a git ``clean`` filter.

Running a block in Mage's editor rewrites the pipeline's ``metadata.yaml``: every block's
``status`` and ``all_upstream_blocks_executed``, and the machine's ``variables_dir``. Those are run
state, not pipeline definition. Git passes each ``metadata.yaml`` through :func:`clean` (declared in
``.gitattributes``, configured by ``scripts/setup``) before comparing or committing it, so an
editor run leaves ``git status`` clean while a real edit (a new block, a changed variable) shows.
The tracked files are stored in this clean form, which is Mage's own layout (``yaml.dump``, keys
sorted) minus the run state.

    git config filter.mage-run-state.clean ".venv/bin/python -m converge.training.mage_files"
"""

from __future__ import annotations

import sys
import yaml

BLOCK_LISTS = ("blocks", "callbacks", "conditionals", "widgets")
# Written by Mage at run time; their resting values are those of a pipeline never run here.
RESTING = {"status": "not_executed", "all_upstream_blocks_executed": True}
MACHINE_KEYS = ("variables_dir",)


def clean(text: str) -> str:
    """The pipeline metadata without run state; anything that is not a pipeline passes unchanged."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(data, dict) or not isinstance(data.get("blocks"), list):
        return text
    for key in MACHINE_KEYS:
        data.pop(key, None)
    for name in BLOCK_LISTS:
        for block in data.get(name) or []:
            if isinstance(block, dict):
                for key, value in RESTING.items():
                    if key in block:
                        block[key] = value
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=True)


def main() -> int:
    sys.stdout.write(clean(sys.stdin.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
