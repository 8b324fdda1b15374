"""Crash safety: an indexer killed with SIGKILL leaves the state before or after its run, never a mix.

A handful of the trials of ``scripts/crash_trials.py`` (which runs 50 and more);
each kills a real indexer process and checks the index that is left.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap

import pytest

from embeddings import IndexLockedError
from embeddings.stores.embedded.generations import WriteLock
from scripts import crash_trials

from .conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def trials(tmp_path_factory, model_cache):
    return crash_trials.Trials.prepare(tmp_path_factory.mktemp("crash"), SEEDS, cache_dir=model_cache)


@pytest.mark.slow
def test_states_before_and_after_differ_in_every_way(trials):
    """Otherwise "equals A or B" would prove little."""
    a, b = trials.state_a, trials.state_b
    assert set(a.files) - set(b.files), "B deletes a file"
    assert set(b.files) - set(a.files), "B adds files"
    assert any(a.files[s] != b.files[s] for s in set(a.files) & set(b.files)), "B changes a file"
    assert trials.write_steps > 100


@pytest.mark.slow
@pytest.mark.parametrize("mode, seed", [("anywhere", 1), ("write", 2), ("step", 3), ("step", 4)])
def test_killed_indexer_leaves_before_or_after_and_the_next_run_recovers(trials, mode, seed):
    result = trials.run(seed, mode, random.Random(seed))
    assert result["problems"] == [], result
    assert result["outcome"] in ("A", "B")
    if mode == "step":  # killed by construction while writing (before or after the switch of CURRENT)
        assert result["killed_in"] == "write", result


def test_a_killed_lock_holder_does_not_block_the_next_writer(tmp_path):
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from embeddings.stores.embedded.generations import WriteLock
        with WriteLock({str(tmp_path)!r}):
            print("locked", flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match="being updated by another process"), WriteLock(tmp_path, 0.3):
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with WriteLock(tmp_path, timeout=5):
        pass
