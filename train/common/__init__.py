"""What the training and analysis commands share.

* :mod:`~train.common.config`: :class:`TrainConfig`, the settings of every command.
* :mod:`~train.common.cli`: flags generated from a config dataclass.
* :mod:`~train.common.recipes`: the authors' settings per experiment (Table 4 and their code), with sources.
* :mod:`~train.common.registry`: the experiments by name, ``name -> (config class, build_task)``.
* :mod:`~train.common.task`: :class:`Task`, what to train.
* :mod:`~train.common.devices`: the ``'data'`` mesh, batch sharding, multi-process start-up.
* :mod:`~train.common.steps`: keys, schedule, optimiser, the train and eval steps.
* :mod:`~train.common.rundir`: the run folder (``config.json``, ``metrics.jsonl``, ``checkpoints/``).
* :mod:`~train.common.loop`: :class:`Trainer`, the training loop.
* :mod:`~train.common.restore`: rebuilding and rescoring a run folder through the registry.
* :mod:`~train.common.command`: start-up, train or evaluate, the ``final ...`` line.
* :mod:`~train.common.progress`: the progress bar.
* :mod:`~train.common.vision`, :mod:`~train.common.dvs`: what the conv and event-frame commands share.
"""
