"""1-D convolution (NIR ``Conv1d``)."""

from ._conv import AbstractConv


class Conv1d(AbstractConv):
    r"""1-D cross-correlation, as torch's ``Conv1d`` and NIR define it:
    ``y[o] = sum_c W[o, c] * x[c] (+ bias[o] on the continuous part)``.

    ``weight``: ``(C_out, C_in/groups, k)``; ``bias``: ``(C_out,)``; ``stride``,
    ``dilation``: ints; ``padding``: an int or ``"same"``/``"valid"``;
    ``input_shape``: spatial size ``(N,)``. Input ``(C_in, N)``, output
    ``(C_out, N')``."""

    nir_type = "Conv1d"
    n_spatial = 1
