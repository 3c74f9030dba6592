"""GRU sequence-to-sequence translator backend (``gru-seq2seq``), a plugin of the ``rnnserve`` group.

Registers the ``gru-seq2seq`` backend factory, the shipped English→German model ``en-de-gru``
(when its checkpoint is present in ``models/``), and the commands ``data en-de``,
``train gru-seq2seq`` and ``eval gru-seq2seq``.

Modules: ``data`` and ``corpus`` (the parallel corpus), ``subwords`` (SentencePiece),
``document`` and ``protect`` (documents, protected spans), ``model`` (encoder, attention,
decoder), ``beam`` (greedy and batched beam search), ``train``, ``checkpoint``, ``backend``
(the :class:`rnnserve.plugin_api.Translator`), ``evaluate`` (sacreBLEU/chrF per domain,
decoding speed), ``card`` (the model card), ``commands``.

The hooks (the entry point in ``pyproject.toml``) and the shipped models' specs are in
``plugin.py``; importing either does not import torch.
"""
