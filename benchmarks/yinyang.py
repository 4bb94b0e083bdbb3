"""Yin-Yang (Kriener et al. 2021) trained in nirsim: with exact spike-time gradients
through the event-driven ideal solve, and with surrogate gradients in discrete time.

**Exact gradients** (``--gradients exact --synapses``, the headline result): the
network is ``yin_yang_network(synapses=True)``, 4 latency-coded inputs plus a bias
spike -> 120 CubaLIF (``tau_syn`` 5 ms, ``tau_mem`` 10 ms) -> 3 CubaLI readout
neurons, solved exactly for 40 ms; loss: the cross-entropy of 10 x the readout's
membrane averaged over 1 ms samples, plus ``--silence`` times the hidden layer's
silence penalty (:func:`nirsim.training.silence_penalty`: it pulls neurons that fire
on fewer than 20 % of a batch back to threshold, since an exact gradient cannot
revive a neuron with no spike); reverse mode through the solve, one checkpoint per
event; Adam ``--lr`` with ``--cosine`` decay, batch 50, weights only. Why a CubaLI
readout and not an LI: :func:`nirsim.training.yin_yang_network`.

**Surrogate gradients** (default): ``yin_yang_network()``, 120 LIF -> 3 LI,
``tau = 10 ms``, 40 ms in steps of 1 ms with the ``exponential`` rule in float32
(:func:`nirsim.training.yin_yang_solver`, surrogate ``FastSigmoid(2)``), the same
cross-entropy.

Both use the canonical split (train 5000, validation 1000, test 1000). Per seed it
reports the test accuracy after the last epoch, the validation accuracy, and the
time per epoch (the first epoch, which includes compiling, apart). The trained
graph of the first seed is then run on the test set by the ideal (exact) solver, by
each framework preset with ``dt`` = 1 ms, which read the same ``.nir`` file in their
own ways (README's preset table), and by each chip model. Where importers map no LI
or CubaLI, :func:`nirsim.training.yin_yang_chip_form` rewrites the trained graph
into one with the same behaviour (the readout a LIF or CubaLIF with an unreachable
threshold, ``r`` as the chips expect with the weights scaled to keep ``r W``), and
that is run too.

**Quantisation-aware fine-tuning** (``--qat-chip``; default ``loihi2`` for the
surrogate network, in its chip form, and ``brainscales2`` for the exact one, which
that chip holds as it is): the graph is trained ``--qat-epochs`` more epochs
*through the chip model* (forward pass the chip's, gradients straight through every
quantisation, and the surrogate's through every spike on a discrete chip or the
exact spike-time gradient on BrainScaleS-2: :mod:`nirsim.hardware_models.base`),
same loss, Adam ``--qat-lr``, and its test accuracy on the chip is reported before
and after, beside a control run of the same epochs on the back-end it was trained
with.

Run: ``python benchmarks/yinyang.py --gradients exact --synapses --lr 1e-3 --cosine
--silence 1 --epochs 30 --qat-epochs 3`` (exact) or ``python benchmarks/yinyang.py
--epochs 20`` (surrogate); ``--save DIR`` writes the trained graphs, ``--evaluate
FILE`` runs a saved one on every back-end, ``--probe-gradient`` checks how far the
exact gradient predicts the loss. Results go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine, table  # noqa: E402

import nirsim  # noqa: E402
from nirsim import hardware_models, training  # noqa: E402
from nirsim.solvers import registry  # noqa: E402
from nirsim.training._yinyang import DT, T_END  # noqa: E402

PRESETS = ("euler", "exponential", "nir-euler", "snntorch", "norse", "spyx", "sinabs",
           "rockpool", "lava-float")  # fmt: skip
CHIPS = ("loihi2", "spinnaker2", "xylo", "speck", "brainscales2")
CONTINUOUS = ("ideal", "brainscales2")  # back-ends without dt


def accuracy_on(network, features, labels, solver, **kw) -> float:
    spikes = training.yin_yang_spikes(jnp.asarray(features))
    trace = nirsim.simulate(network, spikes, t_end=T_END, save_dt=DT, solver=solver, **kw)
    scores = training.mean_membrane(trace, "readout")
    if "readout" in trace.spikes and int(jnp.sum(trace.spikes["readout"].count())):
        raise RuntimeError("the chip-form readout reached its threshold")
    return float(training.accuracy(scores, labels))


def backend_rows(network, features, labels, names) -> list[list]:
    """Test accuracy of ``network`` on each back-end (the ideal solver, a preset or a
    chip model at ``dt`` = 1 ms), or the first line of its refusal."""
    rows = []
    for name in names:
        solver = None if name == "ideal" else name
        kw = {} if name in CONTINUOUS else {"dt": DT}
        t0 = time.perf_counter()
        try:
            acc = f"{100 * accuracy_on(network, features, labels, solver, **kw):.1f}"
        except nirsim.NirsimError as e:
            acc = "refused: " + str(e).split("\n")[0][:80]
        rows.append([name, acc, time.perf_counter() - t0])
    return rows


def qat_chip(args) -> str:
    """The chip model to fine-tune on: ``--qat-chip``, by default Loihi 2 for the
    surrogate-trained LIF network (its chip form) and BrainScaleS-2 for the exact-
    trained CubaLIF network, which it holds as it is (Göltz et al. trained the same
    kind of network on the chip)."""
    if args.qat_chip is not None:
        return args.qat_chip
    return "brainscales2" if args.gradients == "exact" else "loihi2"


def fine_tune_on_chip(network, args, data) -> dict:
    """Quantisation-aware fine-tuning of ``network`` (its chip form for the
    surrogate-trained network) through the chip model :func:`qat_chip`; test
    accuracies before and after, and a control run of the same epochs on the
    back-end it was trained with."""
    (x, y), (xv, yv), (xt, yt) = data
    exact = args.gradients == "exact"
    name = qat_chip(args)
    solver = chip_solver(name)
    if exact:
        chip = network
        chip_loss = training.yin_yang_loss(
            solver, max_spikes=EXACT_MAX_SPIKES, max_events=EXACT_MAX_EVENTS
        )
        float_loss = exact_loss(args.silence)
    else:
        chip = training.yin_yang_chip_form(network)
        chip_loss, float_loss = training.yin_yang_loss(solver), training.yin_yang_loss()
    lr = args.qat_lr if args.qat_lr is not None else (args.lr if exact else 3e-2)
    before = accuracy_on(chip, xt, yt, solver)
    trainer = training.Trainer(chip, chip_loss, optax.adam(lr))
    result = training.fit(
        trainer,
        (x, y),
        epochs=args.qat_epochs,
        batch_size=args.batch_size,
        seed=args.seeds[0],
        eval_data=(xv, yv),
        progress=not args.quiet,
    )
    secs = [h["seconds"] for h in result.history]
    # control: the same extra epochs, rate and batches on the back-end it was
    # trained with, so that the gain on the chip is not mistaken for more training
    float_trainer = training.Trainer(chip, float_loss, optax.adam(lr))
    control = training.fit(
        float_trainer,
        (x, y),
        epochs=args.qat_epochs,
        batch_size=args.batch_size,
        seed=args.seeds[0],
        progress=not args.quiet,
    ).network
    return {
        "name": name,
        "lr": lr,
        "chip": chip,
        "control": control,
        "tuned": result.network,
        "before": before,
        "after": accuracy_on(result.network, xt, yt, solver),
        "val": result.history[-1]["eval_accuracy"],
        "first_epoch_s": secs[0],
        "epoch_s": statistics.median(secs[1:]) if len(secs) > 1 else secs[0],
    }


EXACT_MAX_SPIKES = 1024  # spikes per node and sample (hidden: 120 neurons, 40 ms)
EXACT_MAX_EVENTS = 2000


def exact_loss(silence: float = 0.0):
    """The Yin-Yang loss through the ideal solver: exact spike-time gradients
    (reverse mode), plus ``silence`` times the hidden layer's silence penalty
    (:func:`nirsim.training.silence_penalty`). One checkpoint per event: the
    backward pass then recomputes nothing (about 1.5 GB at batch 50; the default,
    ``sqrt(2 max_events)`` checkpoints, costs 2-3x the time)."""
    return training.yin_yang_loss(
        nirsim.solvers.Ideal(checkpoints=EXACT_MAX_EVENTS),
        silence=silence,
        max_spikes=EXACT_MAX_SPIKES,
        max_events=EXACT_MAX_EVENTS,
    )


def chip_solver(name: str):
    """The chip model ``name`` to fine-tune through and score on: BrainScaleS-2
    (continuous time) with one reverse-mode checkpoint per event, like
    :func:`exact_loss`; a discrete chip at ``dt`` = 1 ms."""
    if name == "brainscales2":
        return hardware_models.BrainScaleS2(checkpoints=EXACT_MAX_EVENTS)
    return registry.get_solver(name, dt=DT)


def optimizer(args, steps: int | None = None) -> optax.GradientTransformation:
    """Adam at ``--lr``; with ``--lr-hidden``, the hidden layer's input weights
    (``fc1``) at that rate instead; with ``--cosine``, each rate decays along a
    cosine to 1 % of itself over the run's ``steps``."""

    def adam(lr):
        if args.cosine and steps:
            return optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.01))
        return optax.adam(lr)

    if args.lr_hidden is None:
        return adam(args.lr)

    def labels(params):
        return {
            node: jax.tree_util.tree_map(lambda _, n=node: n == "fc1", fields)
            for node, fields in params.items()
        }

    return optax.multi_transform({True: adam(args.lr_hidden), False: adam(args.lr)}, labels)


def train_one(seed, args, data):
    (x, y), (xv, yv), (xt, yt) = data
    net = training.yin_yang_network(args.hidden, seed=seed, synapses=args.synapses)
    if args.gradients == "exact":
        loss = exact_loss(args.silence)
    else:
        loss = training.yin_yang_loss(silence=args.silence)
    steps = args.epochs * (len(x) // args.batch_size)
    trainer = training.Trainer(net, loss, optimizer(args, steps))
    result = training.fit(
        trainer,
        (x, y),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seed,
        eval_data=(xv, yv),
        progress=not args.quiet,
    )
    test = trainer.evaluate(result.state, (jnp.asarray(xt), jnp.asarray(yt)))
    secs = [h["seconds"] for h in result.history]
    return {
        "seed": seed,
        "test": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "val": result.history[-1]["eval_accuracy"],
        "train": result.history[-1]["accuracy"],
        "first_epoch_s": secs[0],
        "epoch_s": statistics.median(secs[1:]) if len(secs) > 1 else secs[0],
        "network": result.network,
    }


PROBE_STEPS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def probe_gradient(args) -> None:
    """How far the exact gradient predicts the loss: on the untrained network of
    ``--seeds[0]``, the exact gradient ``g`` of the loss on the first
    ``--probe-batch`` training samples with respect to ``fc1``, then the loss after
    steps ``W - eta d`` along ``d = sign(g)`` (Adam's first steps) and
    ``d = g / max|g|``: its change against the first-order prediction
    ``-eta g.d``, on the same samples and on the next ``--probe-batch``; the central
    difference ``(L(W + eta d) - L(W - eta d)) / (2 eta)`` over ``g.d`` (1 where the
    gradient describes the loss at that scale); and how
    many hidden neurons' spike counts the step changed (spikes that appear or
    vanish: the exact gradient, a derivative between such events, does not see
    them)."""
    x, y = training.yin_yang("train")
    n = args.probe_batch
    net = training.yin_yang_network(args.hidden, seed=args.seeds[0], synapses=args.synapses)
    trainer = training.Trainer(net, exact_loss(), optax.adam(args.lr))
    params = trainer.init().params
    batch = (jnp.asarray(x[:n]), jnp.asarray(y[:n]))
    other = (jnp.asarray(x[n : 2 * n]), jnp.asarray(y[n : 2 * n]))
    f = jax.jit(lambda p, b: trainer.loss(p, b)[0])

    @jax.jit
    def counts(p, b):
        trace = nirsim.simulate(
            training.apply_params(trainer.template, p),
            training.yin_yang_spikes(b[0]),
            t_end=T_END,
            solver=nirsim.solvers.Ideal(),
            max_spikes=EXACT_MAX_SPIKES,
            max_events=EXACT_MAX_EVENTS,
        )
        return trace.spikes["hidden"].count()

    g = jax.jit(jax.grad(lambda p: trainer.loss(p, batch)[0]))(params)["fc1"]["weight"]
    w = params["fc1"]["weight"]
    l0, o0, c0 = f(params, batch), f(params, other), counts(params, batch)
    rows = []
    for eta in PROBE_STEPS:
        for name, d in (
            ("sign(g)", jnp.sign(g)),
            ("g / max abs(g)", g / jnp.max(jnp.abs(g))),
        ):
            q = dict(params, fc1={"weight": w - eta * d})
            back = dict(params, fc1={"weight": w + eta * d})
            gd = float(jnp.sum(g * d))
            changed = int(jnp.sum(counts(q, batch) != c0))
            slope = float(f(back, batch) - f(q, batch)) / (2 * eta) / gd
            rows.append(
                [eta, name, -eta * gd, float(f(q, batch) - l0), float(f(q, other) - o0),
                 slope, changed]
            )  # fmt: skip
    print(f"machine: {machine()}")
    print(
        f"untrained network, seed {args.seeds[0]}, hidden {args.hidden} "
        f"({'CubaLIF' if args.synapses else 'LIF'}); loss {float(l0):.4f} on {n} "
        f"samples, {float(o0):.4f} on the next {n}; fraction of zero entries of g "
        f"{float(jnp.mean(g == 0)):.2f}"
    )
    print(
        table(
            "Loss change after a step of fc1 against the exact gradient's prediction",
            [
                "step eta",
                "direction d",
                "predicted -eta g.d",
                "change (same samples)",
                "change (next samples)",
                "central difference / g.d",
                "(sample, neuron) spike counts changed (same samples)",
            ],
            rows,
        )  # fmt: skip
    )


def print_chip_form_rows(net, xt, yt, seed) -> None:
    """The back-end table of the chip form of the exact-trained CubaLIF network
    (:func:`nirsim.training.yin_yang_chip_form`: the readout a CubaLIF that never
    fires, ``r = tau_mem / dt``), which the importers that map no CubaLI hold."""
    print(
        table(
            f"Chip form of the trained graph (seed {seed}) by back-end",
            ["back-end", "test accuracy (%)", "seconds"],
            backend_rows(
                training.yin_yang_chip_form(net), xt, yt, ("ideal",) + PRESETS + CHIPS
            ),
        )
    )


def evaluate(path) -> None:
    """``--evaluate FILE``: the test accuracy of a saved trained graph on every
    back-end, as it is and in its chip form."""
    net = nirsim.load(path)
    xt, yt = training.yin_yang("test")
    print(f"machine: {machine()}")
    print(
        table(
            f"{path} on the test set by back-end",
            ["back-end", "test accuracy (%)", "seconds"],
            backend_rows(net, xt, yt, ("ideal",) + PRESETS + CHIPS),
        )
    )
    print_chip_form_rows(net, xt, yt, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--hidden", type=int, default=120)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument(
        "--lr-hidden", type=float, default=None, help="Adam rate of fc1 (default: --lr)"
    )
    p.add_argument(
        "--qat-chip",
        default=None,
        help="chip model to fine-tune on (default: loihi2; brainscales2 in exact mode)",
    )
    p.add_argument("--qat-epochs", type=int, default=5)
    p.add_argument(
        "--qat-lr",
        type=float,
        default=None,
        help="Adam rate of the fine-tuning (default: 3e-2; --lr in exact mode)",
    )
    p.add_argument("--save", default=None, help="write the trained graphs (.nir) here")
    p.add_argument("--train-size", type=int, default=None, help="use the first N samples")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--synapses",
        action="store_true",
        help="CubaLIF hidden layer (exact gradients reach the input weights only so)",
    )
    p.add_argument(
        "--gradients",
        choices=("surrogate", "exact"),
        default="surrogate",
        help="surrogate gradients on the exponential rule, or exact spike-time "
        "gradients through the ideal solver",
    )
    p.add_argument(
        "--probe-gradient",
        action="store_true",
        help="only check the exact gradient's first-order prediction (see "
        "probe_gradient) and exit",
    )
    p.add_argument("--probe-batch", type=int, default=200)
    p.add_argument(
        "--silence",
        type=float,
        default=0.0,
        help="weight of the hidden layer's silence penalty (keeps neurons firing)",
    )
    p.add_argument(
        "--cosine", action="store_true", help="cosine decay of the rates to 1 %%"
    )
    p.add_argument(
        "--evaluate",
        default=None,
        metavar="FILE",
        help="only run a saved trained graph (.nir) on every back-end and exit",
    )
    args = p.parse_args(argv)
    if args.evaluate:
        return evaluate(args.evaluate)
    if args.probe_gradient:
        return probe_gradient(args)
    data = tuple(training.yin_yang(s) for s in ("train", "validation", "test"))
    if args.train_size is not None:
        data = ((data[0][0][: args.train_size], data[0][1][: args.train_size]),) + data[1:]
    runs = [train_one(s, args, data) for s in args.seeds]
    rows = [
        [r["seed"], 100 * r["train"], 100 * r["val"], 100 * r["test"], r["first_epoch_s"],
         r["epoch_s"]]
        for r in runs
    ]  # fmt: skip
    tests = [100 * r["test"] for r in runs]
    spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
    print(f"machine: {machine()}")
    print(
        f"{args.gradients} gradients, {args.epochs} epochs, hidden {args.hidden} "
        f"({'CubaLIF' if args.synapses else 'LIF'}), batch {args.batch_size}, Adam "
        f"{args.lr} (fc1: {args.lr if args.lr_hidden is None else args.lr_hidden})"
        f"{', cosine decay to 1 %' if args.cosine else ''}, silence penalty "
        f"{args.silence}"
    )
    print(
        table(
            "Per seed (accuracy in %, time in s)",
            [
                "seed",
                "train (last epoch)",
                "validation",
                "test",
                "first epoch",
                "epoch (median)",
            ],
            rows,
        )  # fmt: skip
    )
    print(f"test accuracy: {statistics.mean(tests):.2f} % +- {spread:.2f} (mean +- sd)")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for r in runs:
            path = os.path.join(args.save, f"seed{r['seed']}.nir")
            nir.write(path, r["network"].to_nir())
    net = runs[0]["network"]
    xt, yt = data[2]
    print(
        table(
            f"Trained graph (seed {args.seeds[0]}) on the test set by back-end",
            ["back-end", "test accuracy (%)", "seconds"],
            backend_rows(net, xt, yt, ("ideal",) + PRESETS + CHIPS),
        )
    )
    if args.gradients == "exact":
        print_chip_form_rows(net, xt, yt, args.seeds[0])
    if args.qat_epochs <= 0:
        jax.clear_caches()
        return runs
    qat = fine_tune_on_chip(net, args, data)
    exact = args.gradients == "exact"
    names = ("ideal", qat["name"]) if exact else ("ideal", "exponential", "loihi2",
                                                  "spinnaker2")  # fmt: skip
    if not exact:
        print(
            table(
                f"Chip form of the trained graph (seed {args.seeds[0]}) by back-end",
                ["back-end", "test accuracy (%)", "seconds"],
                backend_rows(qat["chip"], xt, yt, names),
            )
        )
    print(
        f"quantisation-aware fine-tuning on {qat['name']}: {args.qat_epochs} epochs, "
        f"Adam {qat['lr']}, batch {args.batch_size}; epoch {qat['epoch_s']:.2f} s "
        f"(first, with compiling, {qat['first_epoch_s']:.2f} s)"
    )
    print(
        f"{qat['name']} test accuracy: {100 * qat['before']:.1f} % before, "
        f"{100 * qat['after']:.1f} % after (validation {100 * qat['val']:.1f} %)"
    )
    trained_with = "ideal solver" if exact else "exponential rule"
    for title, network in (
        (f"Fine-tuned through {qat['name']}, by back-end", qat["tuned"]),
        (f"Control: the same extra epochs on the {trained_with}, by back-end",
         qat["control"]),
    ):  # fmt: skip
        print(
            table(
                title,
                ["back-end", "test accuracy (%)", "seconds"],
                backend_rows(network, xt, yt, names),
            )
        )
    if args.save:
        for label, network in (("qat", qat["tuned"]), ("control", qat["control"])):
            nir.write(os.path.join(args.save, f"{label}.nir"), network.to_nir())
    jax.clear_caches()
    return runs


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
