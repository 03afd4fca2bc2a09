"""What `vidbench ls` prints: every registry, described in one line per entry."""

from __future__ import annotations

from vidbench.registry import DATASETS, METRICS, MODELS, PROTOCOLS


def _load_registries() -> None:
    # Importing these packages fills the registries (lazily: no model or metric code is imported yet).
    import vidbench.data  # noqa: F401
    import vidbench.evaluate.protocols  # noqa: F401
    import vidbench.metrics  # noqa: F401
    import vidbench.models  # noqa: F401


def describe(what: str, with_params: bool = False, verbose: bool = False) -> list[str]:
    _load_registries()
    if what == "protocols" and verbose:
        return _protocol_cards()
    if what == "protocols":
        lines = []
        for name in PROTOCOLS.names():
            p = PROTOCOLS.get(name)
            lines.append(f"{name:16} {p.dataset:8} context {p.context}, horizon {p.horizon}, {p.num_videos} videos, "
                         f"{p.num_samples} sample(s) ({p.reduce})  {p.note}")
        return lines
    if what == "models" and with_params:
        return _model_parameters()
    registry = {"datasets": DATASETS, "models": MODELS, "metrics": METRICS}[what]
    return [f"{name:14} {registry.info(name).get('about', '')}" for name in registry.names()]


def _model_parameters() -> list[str]:
    from vidbench.models import create_model

    lines = []
    for name in MODELS.names():
        factory = MODELS.get(name)
        for preset in getattr(factory, "presets", (None,)):
            model = create_model(name, preset)
            label = name if preset is None else f"{name} --preset {preset}"
            lines.append(f"{label:32} {model.num_parameters():>12,} trainable parameters")
    return lines


def _protocol_cards() -> list[str]:
    """Every convention of every protocol, then where it comes from (protocol_cards.py)."""
    from vidbench.evaluate.protocol_cards import AUTHORS, CARDS, TECO_CARD, card_lines

    lines = []
    for name in PROTOCOLS.names():
        p = PROTOCOLS.get(name)
        lines.append(f"{name}")
        for key, value in p.to_dict().items():
            if key != "name" and value not in ({}, ""):
                lines.append(f"    {key}: {value}")
        lead = p.context if p.fvd_include_context else 0
        lines.append(f"    FVD clips: {', '.join(str(lead + n) for n in p.fvd_prefixes)} frames "
                     + (f"({p.context} ground-truth context frames in both sets, then the predicted ones)" if lead
                        else "(predicted frames only)"))
        card = CARDS.get(name) or (AUTHORS if name.split("@")[0] in ("mmnist", "minerl", "mazes") else None)
        lines += card_lines(card) if card else ["    source: vidbench (no published protocol)"]
    lines.append("teco (no preset)")
    return lines + card_lines(TECO_CARD)
