"""ViT-B/16: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
at Scale", ICLR 2021.

torchvision's layout: ``conv_proj`` cuts the image into 16x16 patches and projects each to D
features (one strided conv); the patches become tokens, row by row (``PatchTokens``, no weights);
``class_token`` is prepended; ``encoder`` adds ``encoder.pos_embedding`` (one row per token, the
class token first), applies dropout, ``encoder.layers.encoder_layer_<i>`` (pre-norm transformer
layers: ``x + dropout(self_attention(ln_1(x)))``, then ``x + mlp(ln_2(x))``, the MLP being
Linear, GELU, Dropout, Linear, Dropout as ``mlp.0`` to ``mlp.4``) and a final LayerNorm
``encoder.ln``. The head reads the class token and applies ``heads.head``. Every LayerNorm is eps
1e-6 (torchvision's, not torch's 1e-5 nor Keras' 1e-3). The position embedding fixes the input
size: ``image_size`` builds the model for another one (the SWAG weights use 384 and 518).
"""

from ..model import ModelSpec
from ..nodes import (
    GELU,
    ClassToken,
    Conv,
    Dropout,
    LayerNorm,
    Linear,
    MultiHeadAttention,
    Node,
    PatchTokens,
    PositionEmbedding,
    ResidualChain,
    SelectToken,
    Sequential,
)
from ..published import TORCHVISION_BASE, TORCHVISION_RECIPES, EvalTransform, PublishedWeights, register_weights
from ..registry import register

LAYER_NORM_EPS = 1e-6


def encoder_layer(
    name: str, heads: int, mlp_dim: int, hidden_dim: int, dropout: float, attention_dropout: float
) -> ResidualChain:
    """torchvision's EncoderBlock: pre-norm self-attention and MLP, each added to its input."""
    mlp = Sequential(
        name="mlp",
        children=(Linear(out=mlp_dim), GELU(), Dropout(p=dropout), Linear(out=hidden_dim), Dropout(p=dropout)),
    )
    return ResidualChain(
        name=name,
        groups=(
            (
                LayerNorm(eps=LAYER_NORM_EPS, name="ln_1"),
                MultiHeadAttention(heads=heads, dropout=attention_dropout, name="self_attention"),
                Dropout(p=dropout, name="dropout"),
            ),
            (LayerNorm(eps=LAYER_NORM_EPS, name="ln_2"), mlp),
        ),
    )


def vision_transformer(
    name: str,
    image_size: int,
    patch_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    num_classes: int = 1000,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
) -> ModelSpec:
    """Any torchvision VisionTransformer without a representation layer (tests build small ones)."""
    if image_size % patch_size:
        raise ValueError(
            f"{name}: image_size must be a multiple of the patch size {patch_size}, received image_size={image_size}"
        )
    layers = tuple(
        encoder_layer(f"encoder_layer_{i}", num_heads, mlp_dim, hidden_dim, dropout, attention_dropout)
        for i in range(num_layers)
    )
    encoder = Sequential(
        name="encoder",
        children=(
            PositionEmbedding(name="pos_embedding"),
            Dropout(p=dropout, name="dropout"),
            Sequential(name="layers", children=layers),
            LayerNorm(eps=LAYER_NORM_EPS, name="ln"),
        ),
    )
    features: tuple[Node, ...] = (
        Conv(out=hidden_dim, kernel=patch_size, stride=patch_size, name="conv_proj"),
        PatchTokens(name="patch_tokens"),
        ClassToken(name="class_token"),
        encoder,
    )
    return ModelSpec(
        name=name,
        family="vit",
        paper="Dosovitskiy et al. 2021, An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
        input_size=(3, image_size, image_size),
        features=features,
        head=(
            SelectToken(index=0, name="class_token_output"),
            Sequential(name="heads", children=(Linear(out=num_classes, name="head"),)),
        ),
        classifier="heads.head",
        num_classes=num_classes,
        init="vit",
        stages=(("conv_proj", "class_token", "encoder.pos_embedding"),)
        + tuple((f"encoder.layers.{layer.name}",) for layer in layers[:-1])
        + ((f"encoder.layers.{layers[-1].name}", "encoder.ln"),),
        fixed_input=True,
    )


@register("vit_b_16")
def vit_b_16(
    num_classes: int = 1000, image_size: int = 224, dropout: float = 0.0, attention_dropout: float = 0.0
) -> ModelSpec:
    """ViT-B/16 (Dosovitskiy et al. 2021), torchvision's layout: 16x16 patches, 12 layers of 12 heads, D = 768."""
    return vision_transformer("vit_b_16", image_size, 16, 12, 12, 768, 3072, num_classes, dropout, attention_dropout)


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
register_weights(
    PublishedWeights(
        model="vit_b_16",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vit_b_16-c867db91.pth",
        acc1=81.072,
        acc5=95.318,
        num_params=86567656,
        gflops=17.564,
        file_size_mb=330.285,
        min_size=(224, 224),
        recipe=TORCHVISION_RECIPES + "vit_b_16",
        docs=(
            "These weights were trained from scratch by using a modified version of `DeIT "
            "<https://arxiv.org/abs/2012.12877>`_'s training recipe."
        ),
    )
)
register_weights(
    PublishedWeights(
        model="vit_b_16",
        name="IMAGENET1K_SWAG_E2E_V1",
        url=TORCHVISION_BASE + "vit_b_16_swag-9ac1b537.pth",
        transforms=EvalTransform(resize_size=384, crop_size=384, interpolation="bicubic"),
        acc1=85.304,
        acc5=97.65,
        num_params=86859496,
        gflops=55.484,
        file_size_mb=331.398,
        min_size=(384, 384),
        recipe="https://github.com/facebookresearch/SWAG",
        docs=(
            "These weights are learnt via transfer learning by end-to-end fine-tuning the original `SWAG "
            "<https://arxiv.org/abs/2201.08371>`_ weights on ImageNet-1K data."
        ),
        options=(("image_size", 384),),
    )
)
register_weights(
    PublishedWeights(
        model="vit_b_16",
        name="IMAGENET1K_SWAG_LINEAR_V1",
        url=TORCHVISION_BASE + "vit_b_16_lc_swag-4e70ced5.pth",
        transforms=EvalTransform(resize_size=224, interpolation="bicubic"),
        acc1=81.886,
        acc5=96.18,
        num_params=86567656,
        gflops=17.564,
        file_size_mb=330.285,
        min_size=(224, 224),
        recipe="https://github.com/pytorch/vision/pull/5793",
        docs=(
            "These weights are composed of the original frozen `SWAG <https://arxiv.org/abs/2201.08371>`_ trunk "
            "weights and a linear classifier learnt on top of them trained on ImageNet-1K data."
        ),
    )
)
