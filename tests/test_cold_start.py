"""A process starts with nothing loaded, and a server loads everything before its first question."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_command_line_loads_no_model_and_reads_no_dictionary():
    code = (
        "import sys, rag, ui.cli; from rag.answering.lexicon import load; "
        "heavy = [m for m in ('faiss', 'onnxruntime', 'onnx', 'tokenizers', 'torch', 'gradio') if m in sys.modules]; "
        "print(heavy, load.cache_info().currsize)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[] 0"


def test_warm_up_loads_the_view_the_model_and_the_dictionary(fake_index, fake_embedder):
    from rag import Engine
    from rag.answering.lexicon import load

    engine = Engine(fake_index)  # the model the index names (the fake), not loaded yet
    assert engine._embedder is None and engine._loaded is None
    load.cache_clear()
    engine.warm_up()
    assert engine._embedder is not None and engine._loaded is not None
    assert load.cache_info().currsize == 1  # the English question read the dictionary (or found none)
