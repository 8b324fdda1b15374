"""The index as a LangChain retriever, for use in your own chains.

Imported only by :func:`rag.as_retriever`, so the core never loads LangChain.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever


class NewsRetriever(BaseRetriever):
    """Hybrid (dense + BM25) retrieval over a news-rag index.

    Each ``Document`` holds a passage; its metadata has ``source``, ``title``,
    ``start``, ``end`` (offsets into the article text), ``score`` (fused rank
    score) and ``date`` (the article's date, ISO, or None).
    """

    engine: Any
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        documents = self.engine.loaded().snapshot.documents
        out = []
        for hit in self.engine.retrieve(query, self.k):
            c = hit.chunk
            doc = documents.get(c.source)
            metadata = {
                "source": c.source,
                "title": c.title,
                "start": c.start,
                "end": c.end,
                "score": round(hit.score, 6),
                "date": doc.date.isoformat() if doc is not None and doc.date else None,
            }
            out.append(Document(page_content=c.text, metadata=metadata))
        return out
