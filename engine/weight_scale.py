"""Whether alpha and beta are on the scale the layer weighting expects, said before a run.

Only the ratio beta/alpha shapes the result. Auto layer weights make the style term a mean relative Gram error
(about 1 at the photo), so their recommended beta (the manifest's) is some six decades above what equal weights or
another tool's tutorial use; a beta copied from elsewhere then gives back the photo, or a run whose line search
fails at once. The bounds below come from a sweep of beta/alpha at 10^-8 .. 10^4 x the recommended ratio
(bench/README.md, "Weight scale"): below LOW the style's Gram error fell less than 2x at relu1_1..relu4_1 (the
output is the photo); above HIGH the content error grew more than 20x over the recommended run's (the photo's layout
dissolves)."""

from __future__ import annotations

LOW = 1e-3  # (beta/alpha) / recommended below this: the style is not transferred
HIGH = 1e3  # above this: the content is lost


def weight_scale_warnings(
    alpha: float, beta: float, recommended_alpha: float, recommended_beta: float, auto: bool
) -> tuple[str, ...]:
    """One sentence per problem (none when the weights are in range), naming the recommended beta."""
    if alpha <= 0 or beta <= 0 or recommended_alpha <= 0 or recommended_beta <= 0:
        return ()  # a term switched off on purpose (e.g. style_weight 0 to reconstruct the content) is not a mistake
    ratio = (beta / alpha) / (recommended_beta / recommended_alpha)
    if LOW <= ratio <= HIGH:
        return ()
    weighting = "auto layer weights" if auto else "these layer weights"
    recommended = recommended_beta * alpha / recommended_alpha
    effect = "the result will stay close to the photo" if ratio < LOW else "the photo's content will be lost"
    return (
        f"style weight / content weight is {ratio:.1e} x what {weighting} expect, so {effect}; "
        f"this model recommends --style-weight {recommended:.3g} at --content-weight {alpha:g}",
    )
