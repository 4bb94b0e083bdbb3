"""2-D convolution (NIR ``Conv2d``)."""

from ._conv import AbstractConv


class Conv2d(AbstractConv):
    r"""2-D cross-correlation, as torch's ``Conv2d`` and NIR define it:
    ``y[o] = sum_c W[o, c] * x[c] (+ bias[o] on the continuous part)``.

    ``weight``: ``(C_out, C_in/groups, kH, kW)``; ``bias``: ``(C_out,)``; ``stride``,
    ``dilation``: pairs; ``padding``: pair of sizes or ``"same"``/``"valid"``;
    ``input_shape``: spatial size ``(H, W)``. Input ``(C_in, H, W)``, output
    ``(C_out, H', W')``."""

    nir_type = "Conv2d"
    n_spatial = 2
