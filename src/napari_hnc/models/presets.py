"""The bundled model sizes: small enough for a laptop CPU, the same cards the trainer starts from.

Whole-study segmentation on a 2-core CPU must finish in about 15 s and one
click in about 250 ms, so the bundled networks are narrow (8 base channels,
3 down-samplings) and run at 2.5 mm (seed 004). Wider or deeper networks for
GPUs only need other ``arguments`` in the card.
"""

from __future__ import annotations

from .card import CLICK_INPUTS, IMAGE_INPUTS, ClickEncoding, ModelCard, Preprocessing

#: Preset name -> card of the bundled size (its weights list names the files to write).
BUNDLED_PRESETS: dict[str, ModelCard] = {
    "auto": ModelCard(
        name="hnc-auto",
        task="automatic",
        aliases=("default",),
        architecture="SENormResUNet",
        arguments={"base_channels": 8, "depth": 3},
        inputs=IMAGE_INPUTS,
        spacing_mm=(2.5, 2.5, 2.5),
        patch_size=(128, 128, 128),
        preprocessing=Preprocessing(ct_window=(-1024.0, 1024.0), ct_range=(-1.0, 1.0), pet="zscore"),
        weights=("hnc-auto.safetensors",),
        description="Automatic segmentation of primary tumour and lymph nodes (SE-Norm residual U-Net, seed 000)",
    ),
    "click": ModelCard(
        name="hnc-click",
        task="click",
        aliases=("click",),
        architecture="ResUNetMHSA",
        arguments={"base_channels": 8, "depth": 3, "heads": 4},
        inputs=IMAGE_INPUTS + CLICK_INPUTS,
        spacing_mm=(2.5, 2.5, 2.5),
        patch_size=(64, 64, 64),
        preprocessing=Preprocessing(ct_window=(-1024.0, 1024.0), ct_range=(-1.0, 1.0), pet="zscore"),
        click_encoding=ClickEncoding(kind="edt", radius_mm=10.0),
        weights=("hnc-click.safetensors",),
        description="Click-guided refinement of one lesion (residual U-Net with self-attention, seeds 002 and 004)",
    ),
}


def preset_card(kind: str = "auto", *, name: str | None = None, folds: int = 1) -> ModelCard:
    """A card of the bundled size, optionally renamed and with ``folds`` weight files (an ensemble).

    >>> card = preset_card("auto", name="mine", folds=5)
    >>> card.weights[:2], card.architecture
    (('mine_fold0.safetensors', 'mine_fold1.safetensors'), 'SENormResUNet')
    """
    if kind not in BUNDLED_PRESETS:
        raise KeyError(f"unknown preset {kind!r}; choose one of {sorted(BUNDLED_PRESETS)}")
    card = BUNDLED_PRESETS[kind]
    name = name or card.name
    weights = (f"{name}.safetensors",) if folds == 1 else tuple(f"{name}_fold{i}.safetensors" for i in range(folds))
    aliases = card.aliases if name == card.name else ()
    return card.with_changes(name=name, weights=weights, aliases=aliases)
