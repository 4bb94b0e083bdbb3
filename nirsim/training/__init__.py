"""Training NIR graphs in nirsim: trainable-parameter filters, readouts and losses on
a :class:`~nirsim.Trace`, a jit-compiled optax step, a training loop with
checkpoints, and the Yin-Yang data set.

The pieces, in the order a user meets them::

    net = nirsim.load("graph.nir")
    def loss_fn(net, batch):                        # any back-end, any readout
        x, labels = batch
        trace = nirsim.simulate(net, encode(x), t_end=..., save_dt=dt,
                                solver="exponential", dt=dt)
        scores = training.mean_membrane(trace, "readout")
        return training.cross_entropy(scores, labels), {
            "accuracy": training.accuracy(scores, labels)}
    trainer = training.Trainer(net, loss_fn, optax.adam(1e-2),
                               training.ParameterFilter(time_constants=True))
    result = training.fit(trainer, (x, y), epochs=5, batch_size=50,
                          checkpoint_dir="ckpt")      # resumes if ckpt exists
    nir.write("trained.nir", result.network.to_nir())

Gradients: on a discrete back-end they are surrogate gradients of the spike decision
(``nirsim.solvers.surrogate``); through a chip model (``nirsim.hardware_models``) the
forward pass is the chip's and each quantisation passes the gradient straight through
(quantisation-aware training; :func:`yin_yang_chip_form` puts the Yin-Yang graph in a
form Loihi 2 holds); through the ideal solver (``nirsim.solvers.Ideal``) every
loss takes exact spike-time gradients (implicit differentiation at each crossing,
reverse mode through the event-driven solve). Two things make a loss trainable with
exact gradients: it must be continuous in the spike times (sample a CubaLI readout,
whose membrane is continuous, not an LI, whose membrane jumps at each spike), and
neurons that stop firing must be brought back (:func:`silence_penalty`), since a
neuron with no spike has no spike time to differentiate.
"""

from ._checkpoint import (
    latest_checkpoint as latest_checkpoint,
    load_checkpoint as load_checkpoint,
    save_checkpoint as save_checkpoint,
)
from ._loop import FitResult as FitResult, batch_indices as batch_indices, fit as fit
from ._losses import (
    accuracy as accuracy,
    cross_entropy as cross_entropy,
    first_spike_loss as first_spike_loss,
    first_spike_times as first_spike_times,
    max_membrane as max_membrane,
    max_membrane_loss as max_membrane_loss,
    mean_membrane as mean_membrane,
    mean_membrane_loss as mean_membrane_loss,
    silence_penalty as silence_penalty,
    spike_count_loss as spike_count_loss,
    spike_counts as spike_counts,
)
from ._params import (
    ParameterFilter as ParameterFilter,
    apply_params as apply_params,
    init_params as init_params,
)
from ._step import Trainer as Trainer, TrainState as TrainState
from ._yinyang import (
    yin_yang as yin_yang,
    yin_yang_chip_form as yin_yang_chip_form,
    yin_yang_loss as yin_yang_loss,
    yin_yang_network as yin_yang_network,
    yin_yang_solver as yin_yang_solver,
    yin_yang_spikes as yin_yang_spikes,
)
