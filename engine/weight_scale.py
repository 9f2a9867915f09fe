"""Whether alpha and beta are on the scale the layer weighting expects, said before a run.

Only the ratio beta/alpha shapes the result. Auto layer weights make the style term a mean relative Gram error
(about 1 at the photo), so their recommended beta (the manifest's) is some six decades above what equal weights or
another tool's tutorial use; a beta copied from elsewhere then gives back the photo, or a run whose line search
fails at once. The bounds come from a sweep of r = (beta/alpha) / the recommended ratio at 10^-8 .. 10^4
(bench/weight_scale.py; bench/README.md, "Weight scale"; 128 px, 60 iterations from the photo): up to LOW the
style's Gram error fell less than 2x at one of relu1_1..relu4_1 (1.1x at r = 10^-2, 2.3x at 10^-1: the output is
the photo); from HIGH on, the content error and every layer's Gram reduction stayed within 5% of r = 10^4's (the
content weight no longer acts; the photo's layout survives only through the start image). The content error never
grew past 2.2x the recommended run's, and no run stopped early, so no r in the sweep was useless the other way."""

from __future__ import annotations

LOW = 1e-2  # (beta/alpha) / recommended at or below this: the style is not transferred
HIGH = 1e2  # at or above this: the content weight has no effect


def weight_scale_warnings(
    alpha: float, beta: float, recommended_alpha: float, recommended_beta: float, auto: bool
) -> tuple[str, ...]:
    """One sentence per problem (none when the weights are in range), naming the recommended beta."""
    if alpha <= 0 or beta <= 0 or recommended_alpha <= 0 or recommended_beta <= 0:
        return ()  # a term switched off on purpose (e.g. style_weight 0 to reconstruct the content) is not a mistake
    ratio = (beta / alpha) / (recommended_beta / recommended_alpha)
    if LOW < ratio < HIGH:
        return ()
    weighting = "auto layer weights" if auto else "these layer weights"
    recommended = recommended_beta * alpha / recommended_alpha
    effect = (
        "the result will stay close to the photo"
        if ratio <= LOW
        else "the content weight will have no effect (only the start image keeps the photo's layout)"
    )
    return (
        f"style weight / content weight is {ratio:.1e} x what {weighting} expect, so {effect}; "
        f"this model recommends --style-weight {recommended:.3g} at --content-weight {alpha:g}",
    )
