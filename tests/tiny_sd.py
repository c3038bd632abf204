"""Tiny random Stable Diffusion 1.x pipelines for tests, and the same weights written as an
artist's single-file checkpoint (original key layout) or a diffusers folder.

The UNet keeps SD1's text width (768) so the family detection sees a true SD1 file; everything
else is small (a 1000-token text vocabulary, two UNet levels, a two-level VAE), a few MB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from studio.models.sd.original_layout import pipeline_to_original

SD1_CONTEXT = 768


def tiny_sd1_pipeline(*, inpainting: bool = False, seed: int = 0) -> Any:
    """A random ``StableDiffusionPipeline`` (or the inpaint one) small enough for unit tests."""
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.models.sd.tokenizer import clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=9 if inpainting else 4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=SD1_CONTEXT,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=SD1_CONTEXT,
            intermediate_size=64,
            num_attention_heads=12,
            num_hidden_layers=1,
            vocab_size=1000,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_act="quick_gelu",
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
    )
    cls = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    return cls(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=clip_tokenizer(),
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _text_encoder(width: int, projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=width,
        intermediate_size=64,
        num_attention_heads=8,
        num_hidden_layers=2,
        vocab_size=1000,
        max_position_embeddings=77,
        projection_dim=width,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def tiny_sd2_pipeline(seed: int = 0) -> Any:
    """SD2's widths (an OpenCLIP ViT-H-like text encoder of 1024), otherwise tiny."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = tiny_sd1_pipeline(seed=seed)
    torch.manual_seed(seed)
    unet = _unet(1024, linear=True)
    return StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=_text_encoder(1024),
        tokenizer=pipe.tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(prediction_type="v_prediction", steps_offset=1, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sdxl_pipeline(seed: int = 0) -> Any:
    """SDXL's widths (CLIP ViT-L 768 + bigG 1280 = 2048, size conditioning 2816), else tiny."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    from studio.models.sd.tokenizer import clip_tokenizer

    pipe = tiny_sd1_pipeline(seed=seed)
    torch.manual_seed(seed)
    return StableDiffusionXLPipeline(
        vae=pipe.vae,
        text_encoder=_text_encoder(768),
        text_encoder_2=_text_encoder(1280, projection=True),
        tokenizer=pipe.tokenizer,
        tokenizer_2=clip_tokenizer("!"),
        unet=_unet(2048, linear=True, added=2816),
        scheduler=EulerDiscreteScheduler(steps_offset=1),
    )


def _unet(context: int, *, linear: bool = False, added: int | None = None) -> Any:
    from diffusers import UNet2DConditionModel

    extra: dict[str, Any] = {}
    if added:
        extra = {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": added,
        }
    return UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=context,
        attention_head_dim=8,
        norm_num_groups=32,
        use_linear_projection=linear,
        **extra,
    ).eval()


def tiny_sd_folder(folder: Path, seed: int = 0) -> Path:
    """A tiny random SD 1.x pipeline saved as an artist's diffusers folder, with a letters
    vocabulary its small text encoder can read (the bundled CLIP one has 49 408 tokens)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    pipe = tiny_sd1_pipeline(seed=seed)
    pipe.tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def write_config_folder(pipe: Any, folder: Path) -> Path:
    """The pipeline's configs without weights: what Studio bundles for the real families."""
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_config(folder)
    pipe.unet.save_config(folder / "unet")
    pipe.vae.save_config(folder / "vae")
    pipe.scheduler.save_config(folder / "scheduler")
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None:
            getattr(pipe, name).config.save_pretrained(folder / name)
    return folder


def write_single_file(
    pipe: Any, path: Path, metadata: dict[str, str] | None = None, drop: str = ""
) -> Path:
    """The pipeline's weights as one original-layout ``.safetensors`` (or ``.ckpt`` through
    ``torch.save``); keys starting with ``drop`` left out."""
    from safetensors.torch import save_file

    state = {
        k: v for k, v in pipeline_to_original(pipe).items() if not drop or not k.startswith(drop)
    }
    if path.suffix == ".safetensors":
        save_file(state, str(path), metadata=metadata)
    else:
        torch.save({"state_dict": state, "global_step": 1}, path)
    return path


def unet_output(unet: Any, seed: int = 1) -> torch.Tensor:
    """The UNet's prediction for a fixed random latent, timestep and text embedding (and
    SDXL's pooled text and size conditioning)."""
    g = torch.Generator().manual_seed(seed)
    channels = unet.config.in_channels
    sample = torch.randn(1, channels, 16, 16, generator=g)
    context = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    added = None
    if unet.config.addition_embed_type == "text_time":
        pooled = unet.config.projection_class_embeddings_input_dim - 6 * 256
        added = {
            "text_embeds": torch.randn(1, pooled, generator=g),
            "time_ids": torch.tensor([[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]),
        }
    with torch.no_grad():
        return unet(sample, 500, encoder_hidden_states=context, added_cond_kwargs=added).sample
