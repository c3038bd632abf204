"""The one explicit list of models Studio ships, and lookup by id."""

from __future__ import annotations

from studio.errors import MissingModelError
from studio.models.spec import ModelFile, ModelSpec
from studio.task_kind import TaskKind

CLASSICAL_UPSCALERS = (
    ModelSpec(
        id="lanczos",
        name="Lanczos",
        task=TaskKind.UPSCALE,
        arch="classical",
        description="Sharp classical resampling; no new detail. Instant.",
        scale=1,
        bytes_per_px=64,
        mpx_per_s=60,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="bicubic",
        name="Bicubic",
        task=TaskKind.UPSCALE,
        arch="classical",
        description="Smooth classical resampling; no new detail. Instant.",
        scale=1,
        bytes_per_px=64,
        mpx_per_s=60,
        speed_hint="instant",
        license="n/a",
    ),
)

NEURAL_UPSCALERS = (
    ModelSpec(
        id="studio-photo-x2",
        name="Studio photo x2",
        task=TaskKind.UPSCALE,
        arch="srvgg",
        description="Our own fast photo upscaler (79k parameters): +2.0 dB over bicubic on our "
        "validation photos, sharper than waifu2x photo at a fraction of its time.",
        files=(
            ModelFile(
                "studio-photo-x2.safetensors",
                "bc3d6a2859c22ad21dc22da6ad1b1dae31baf790b948249ee24c11a44ade6586",
            ),
        ),
        scale=2,
        bytes_per_px=1500,
        mpx_per_s=2.0,
        speed_hint="fast",
        license="MIT",
    ),
    ModelSpec(
        id="studio-photo-x4",
        name="Studio photo x4",
        task=TaskKind.UPSCALE,
        arch="srvgg",
        description="Our own fast photo upscaler (89k parameters): +1.2 dB over bicubic; "
        "faithful rather than invented detail.",
        files=(
            ModelFile(
                "studio-photo-x4.safetensors",
                "8bdd766cea164fa75e309e727f2f6b74302dfa8260ae2bc449bf6f817c743cf9",
            ),
        ),
        scale=4,
        bytes_per_px=2500,
        mpx_per_s=2.0,
        speed_hint="fast",
        license="MIT",
    ),
    ModelSpec(
        id="realesrgan-x4plus",
        name="Real-ESRGAN x4plus",
        task=TaskKind.UPSCALE,
        arch="rrdbnet",
        description="The strongest photo upscaler here: restores detail, removes JPEG and "
        "noise artefacts. Slow on a CPU.",
        files=(
            ModelFile(
                "realesrgan-x4plus.safetensors",
                "1d401faf83a8caa4583e8f6dd35a88ac197fca9c0c21fa48fe0ba328f46287b6",
            ),
        ),
        scale=4,
        bytes_per_px=12000,
        mpx_per_s=0.08,
        speed_hint="slow",
        license="BSD-3-Clause",
    ),
    ModelSpec(
        id="realesrgan-x4plus-anime",
        name="Real-ESRGAN x4plus anime",
        task=TaskKind.UPSCALE,
        arch="rrdbnet",
        description="Real-ESRGAN tuned for anime and illustration: clean lines, flat colour.",
        files=(
            ModelFile(
                "realesrgan-x4plus-anime.safetensors",
                "6a35150ebb6190ec12f84edbef846b8814e5fe103d61118f476f949e5d30bbac",
            ),
        ),
        scale=4,
        bytes_per_px=12000,
        mpx_per_s=0.25,
        speed_hint="medium",
        license="BSD-3-Clause",
    ),
    ModelSpec(
        id="realesr-animevideov3",
        name="Real-ESRGAN anime video v3",
        task=TaskKind.UPSCALE,
        arch="srvgg",
        description="Small, fast Real-ESRGAN for anime frames and drawings.",
        files=(
            ModelFile(
                "realesr-animevideov3-x4.safetensors",
                "a577d71517817be52aecb547a6117cba8ebf1d211bb9667718d726ade8a3f946",
            ),
        ),
        scale=4,
        bytes_per_px=3000,
        mpx_per_s=1.0,
        speed_hint="fast",
        license="BSD-3-Clause",
    ),
    ModelSpec(
        id="waifu2x-photo-x2-noisenone",
        name="waifu2x photo (no denoise)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for photos, x2.",
        files=(
            ModelFile(
                "waifu2x-photo-x2-noisenone.safetensors",
                "87e1cf5cc30c1361c05be42ad32be87f8c1a39e80d5e04f29459d3f1769f40e0",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-photo-x2-noise0",
        name="waifu2x photo (denoise 0)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for photos, x2, with noise reduction level 0.",
        files=(
            ModelFile(
                "waifu2x-photo-x2-noise0.safetensors",
                "481e3f08e7dd3a87d6de5199408b5a8c14ce7ddb93ebb7e9c7b1b318fde8c5a0",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-photo-x2-noise1",
        name="waifu2x photo (denoise 1)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for photos, x2, with noise reduction level 1.",
        files=(
            ModelFile(
                "waifu2x-photo-x2-noise1.safetensors",
                "c7ea985b387bddea6f6cbf7feae80c0286ff4951365910b0cdc65f94b828cc68",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-photo-x2-noise2",
        name="waifu2x photo (denoise 2)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for photos, x2, with noise reduction level 2.",
        files=(
            ModelFile(
                "waifu2x-photo-x2-noise2.safetensors",
                "048085d4b7015ad4966f31f78fafea8383e8799d75ca059ac98d59d5a38d18aa",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-photo-x2-noise3",
        name="waifu2x photo (denoise 3)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for photos, x2, with noise reduction level 3.",
        files=(
            ModelFile(
                "waifu2x-photo-x2-noise3.safetensors",
                "10297d5bc7b2f001c04acab940c79b28e6ed184ef2526484376d91b89849a701",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-anime-x2-noisenone",
        name="waifu2x anime (no denoise)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for anime and illustration, x2.",
        files=(
            ModelFile(
                "waifu2x-anime-x2-noisenone.safetensors",
                "48ca60c3bf3f51b07009793c805c336d6b3908b2692261f67492e46cf842f01f",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-anime-x2-noise0",
        name="waifu2x anime (denoise 0)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for anime and illustration, x2, with noise reduction level 0.",
        files=(
            ModelFile(
                "waifu2x-anime-x2-noise0.safetensors",
                "38ae4c5e05c9cfd8d05731ddcd433df8655dc1253c549b397560b7ccb86fedfa",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-anime-x2-noise1",
        name="waifu2x anime (denoise 1)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for anime and illustration, x2, with noise reduction level 1.",
        files=(
            ModelFile(
                "waifu2x-anime-x2-noise1.safetensors",
                "3cd130767c1698aa2b1d3c00392924028c3b175c352dc443d2d4d1d56f7dca1a",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-anime-x2-noise2",
        name="waifu2x anime (denoise 2)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for anime and illustration, x2, with noise reduction level 2.",
        files=(
            ModelFile(
                "waifu2x-anime-x2-noise2.safetensors",
                "a7929a6926aec9bc00a89ca585c6571fbac39ac802caacbd696b8471c1b1c8c1",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
    ModelSpec(
        id="waifu2x-anime-x2-noise3",
        name="waifu2x anime (denoise 3)",
        task=TaskKind.UPSCALE,
        arch="upconv7",
        description="waifu2x UpConv7 for anime and illustration, x2, with noise reduction level 3.",
        files=(
            ModelFile(
                "waifu2x-anime-x2-noise3.safetensors",
                "ae63377c933b605a8215ca532122f0ebd70641be50926a26c2ef605c31cd1f88",
            ),
        ),
        scale=2,
        bytes_per_px=8000,
        mpx_per_s=0.6,
        speed_hint="medium",
        license="MIT",
    ),
)

CLASSICAL_INPAINTERS = (
    ModelSpec(
        id="telea",
        name="Telea (fast marching)",
        task=TaskKind.INPAINT,
        arch="classical",
        description="Smoothly continues the surrounding colours inward. Best for thin scratches, "
        "wires and small blemishes.",
        max_side=2048,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="navier-stokes",
        name="Navier-Stokes",
        task=TaskKind.INPAINT,
        arch="classical",
        description="Fluid-dynamics diffusion that follows edges into the hole. Small defects.",
        max_side=2048,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="patchmatch",
        name="PatchMatch (content-aware fill)",
        task=TaskKind.INPAINT,
        arch="classical",
        description="Copies real texture from the rest of the image: grass, walls, sky, fabric.",
        max_side=512,
        speed_hint="~1 s",
        license="n/a",
    ),
)

LEARNED_INPAINTERS = (
    ModelSpec(
        id="studio-inpaint",
        name="Studio inpaint",
        task=TaskKind.INPAINT,
        arch="inpaint_unet",
        description="Our own Fourier-convolution U-Net (LaMa-like), trained on photos: "
        "continues structure and shading across larger holes than Telea.",
        files=(
            ModelFile(
                "studio-inpaint.safetensors",
                "6f82e0e533f0079dc8c5c9d869f1613076960efe7b10559266aad71a71394e1a",
            ),
        ),
        size_multiple=8,
        max_side=1024,
        speed_hint="~2 s",
        license="MIT",
        flip_average=True,
    ),
    ModelSpec(
        id="studio-inpaint-hybrid",
        name="Studio inpaint + texture",
        task=TaskKind.INPAINT,
        arch="hybrid",
        description="Studio inpaint's structure with real texture copied from the photo "
        "(PatchMatch guided by the network): for removing objects, large holes.",
        files=(
            ModelFile(
                "studio-inpaint.safetensors",
                "6f82e0e533f0079dc8c5c9d869f1613076960efe7b10559266aad71a71394e1a",
            ),
        ),
        size_multiple=8,
        max_side=1024,
        speed_hint="~1 s",
        license="MIT",
    ),
    ModelSpec(
        id="auto",
        name="Automatic (by mask)",
        task=TaskKind.INPAINT,
        arch="auto",
        description="Chosen by the mask: Studio inpaint for thin strokes and blemishes, "
        "Studio inpaint + texture for object-sized parts; extends the canvas with texture "
        "copied from the picture.",
        files=(
            ModelFile(
                "studio-inpaint.safetensors",
                "6f82e0e533f0079dc8c5c9d869f1613076960efe7b10559266aad71a71394e1a",
            ),
        ),
        size_multiple=8,
        max_side=1024,
        speed_hint="~1 s",
        license="MIT",
    ),
)

STYLE_MODELS = (
    ModelSpec(
        id="style-multistyle26",
        name="26 built-in styles",
        task=TaskKind.STYLIZE,
        arch="style_cin",
        description="One network holding 26 styles (blendable); see the style list below.",
        files=(
            ModelFile(
                "style-multistyle26.safetensors",
                "5b65801956c7acfe272f8827ab7fb47c387e0631948ca1aaff18c9774e8d36d9",
            ),
        ),
        speed_hint="~0.5 s/MP",
        license="Apache-2.0",
    ),
    ModelSpec(
        id="style-arbitrary",
        name="Any picture as a style",
        task=TaskKind.STYLIZE,
        arch="style_cin",
        description="Magenta's arbitrary style transfer: a style predictor and a transfer "
        "network; painting presets and your own pictures.",
        files=(
            ModelFile(
                "style-arbitrary-predict.safetensors",
                "b44efe31b2695bf9f74d3064cf6a8c739d1ce3f79165a76257bf4633197916a0",
            ),
            ModelFile(
                "style-arbitrary-transform.safetensors",
                "bf540e115d1c61a238588cd130a3fae8a2c789eb7e4afa89b16527c310ac2fa9",
            ),
        ),
        speed_hint="~0.5 s/MP",
        license="Apache-2.0",
    ),
)

GENERATORS = (
    ModelSpec(
        id="studio-emoji-gan",
        name="Emoji GAN",
        task=TaskKind.GENERATE,
        arch="gan",
        description="Our own 64x64 emoji-art generator (adversarially trained): crisp, varied "
        "emoji-like pictures from noise.",
        files=(
            ModelFile(
                "studio-emoji-gan.safetensors",
                "0a1ec9749dc0e6b5393c84b46e115f1fbd70bd5069a1bb135528eb69e8b4e1c1",
            ),
        ),
        speed_hint="instant",
        license="MIT",
    ),
    ModelSpec(
        id="studio-emoji-vae",
        name="Emoji VAE",
        task=TaskKind.GENERATE,
        arch="vae",
        description="Our own 64x64 emoji variational autoencoder: softer samples, and "
        "variations of the picture on the canvas.",
        files=(
            ModelFile(
                "studio-emoji-vae.safetensors",
                "e91527a1aa38d1fbc7b5917ba5b20f889e71e28de690a6b08264157d94886ead",
            ),
        ),
        speed_hint="instant",
        license="MIT",
    ),
    ModelSpec(
        id="studio-text2img",
        name="Studio text-to-image",
        task=TaskKind.GENERATE,
        arch="text-unet",
        description="Our own small 64x64 text-to-image diffusion model (emoji, clip art, "
        "stamps, icons), prompted through all-MiniLM-L6-v2; img2img and masks.",
        files=(
            ModelFile(
                "studio-text2img.safetensors",
                "f050d43cf1b6924075a5c34677d9720fe06108b4a8cb6bb7c8dbc0d061008832",
            ),
        ),
        size_multiple=8,
        tiling=False,
        speed_hint="~2 s per image",
        license="MIT",
    ),
)

DESCRIBERS = (
    ModelSpec(
        id="studio-mini-clip",
        name="Mini CLIP",
        task=TaskKind.DESCRIBE,
        arch="mini-clip",
        description="Our own small image encoder trained against MiniLM caption vectors: the "
        "captions that fit a picture best, from a bank of 6,473 names stored in the file.",
        files=(
            ModelFile(
                "studio-mini-clip.safetensors",
                "170c0ec623550c3f5951b768b0625e9c50af2b1d7e728c33a38b9abdb7598176",
            ),
        ),
        tiling=False,
        speed_hint="instant",
        license="MIT",
    ),
)

MODELS: tuple[ModelSpec, ...] = (
    *CLASSICAL_UPSCALERS,
    *NEURAL_UPSCALERS,
    *CLASSICAL_INPAINTERS,
    *LEARNED_INPAINTERS,
    *STYLE_MODELS,
    *GENERATORS,
    *DESCRIBERS,
)

_BY_ID = {spec.id: spec for spec in MODELS}
if len(_BY_ID) != len(MODELS):
    raise RuntimeError("duplicate model ids in the registry")


def all_models(task: TaskKind | None = None) -> list[ModelSpec]:
    return [m for m in MODELS if task is None or m.task == task]


def get_model(model_id: str, task: TaskKind | None = None) -> ModelSpec:
    """The spec for ``model_id``; a clear error naming the valid ids otherwise."""
    spec = _BY_ID.get(model_id)
    if spec is None or (task is not None and spec.task != task):
        names = ", ".join(m.id for m in all_models(task))
        what = f"{task} model" if task else "model"
        raise MissingModelError(f"unknown {what} '{model_id}' (available: {names})")
    return spec


__all__ = ["MODELS", "ModelFile", "ModelSpec", "all_models", "get_model"]
