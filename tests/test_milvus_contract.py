"""The store contract (tests/store_contract.py) for the Milvus store, on Milvus Lite 2.5.1 in a temporary folder."""

from __future__ import annotations

import pytest

pytest.importorskip("pymilvus", reason='the Milvus store needs pip install -e ".[milvus]"')

from embeddings.stores.milvus.store import MilvusStore

from .store_contract import StoreContract

pytestmark = pytest.mark.slow


class TestMilvusStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        store = MilvusStore(f"milvus:{tmp_path / 'contract.db'}")
        yield store
        store.close()
