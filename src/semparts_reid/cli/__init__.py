"""Layer 3: the ``semparts-reid`` command line. Nothing in the library imports it.

Each command parses its arguments, calls library functions and prints:

* :mod:`.main`: the parser, the sub-command registration, exit codes, :func:`main`;
* :mod:`.args`: dataclass fields (``TrainConfig``) as flags;
* :mod:`.train`: ``train`` / ``adapt`` (also callable from Python: :func:`.train.run`);
* :mod:`.demo`: ``demo``, the paper's ablation on the synthetic pair;
* :mod:`.evaluate`, :mod:`.extract`, :mod:`.weights` (``download`` / ``export``),
  :mod:`.datasets`: the other commands;
* :mod:`.common`: what they share (usage error, option groups, metric output).

The console script ``semparts-reid`` and ``python -m semparts_reid`` run :func:`main`.
"""

from .main import main

__all__ = ["main"]
