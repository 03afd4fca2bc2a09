"""Looking inside trained models: KL per level and levels following their prior (`vidbench analyze`), and
ground truth beside predictions as a video (`vidbench sample`).

    from vidbench.analyze import analyze_kl, analyze_levels
"""

from vidbench.analyze.latents import analyze_kl, analyze_levels, kl_lines, kl_per_level

__all__ = ["analyze_kl", "analyze_levels", "kl_lines", "kl_per_level"]
