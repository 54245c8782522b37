"""Mage's run state stays out of the tracked project when converge's blocks run in the editor.

After every block the editor runs, Mage saves the whole pipeline back into its tracked
``metadata.yaml`` just to record the block's status, and writes this machine's ``variables_dir``
into it on the way. In a process that runs converge's blocks (the editor's kernel, a scheduler's
block run, the headless runner) that save is dropped: block outputs, logs and run statuses live
in Mage's data directory and database already. Edits to the pipeline itself are saved by Mage's
web server, a process this does not touch.
"""

from __future__ import annotations

_MARK = "_converge_keeps_run_state_out"


def keep_out_of_project() -> None:
    """Drop Mage's status-only saves of the pipeline file in this process (idempotent)."""
    try:
        from mage_ai.data_preparation.models.block import Block
    except ImportError:  # not running under Mage
        return
    if getattr(Block, _MARK, False):
        return

    def _status_not_saved(self, widget: bool = False) -> None:  # noqa: ARG001
        return None

    # Block.__update_pipeline_block saves the pipeline file. Where blocks execute, only a new
    # status calls it; renames and other edits call it in the web server, not patched here.
    Block._Block__update_pipeline_block = _status_not_saved
    setattr(Block, _MARK, True)
