"""The runtime: one thread per model, running its calls.

Each model's calls run on a :class:`~rnnserve.runtime.model_thread.ModelThread`: the
language model's continuous-batching scheduler (``language_model_scheduler.py``, reading
prompts and scoring in ``prompt_reading.py``; a request and its samples in
``generation_requests.py``, the batch's rows in ``decoding_batch.py``, sampling and stop
sequences in ``sampling.py`` and ``stopping.py``, the step programs lent to the model in
``step_batcher.py``), the translator's (``translation_scheduler.py``) and the assistant's
worker (``assistant_worker.py``). ``watchdog.py`` turns a model call that runs too long
into a FAILED model; ``state.py`` and ``step_programs.py`` are the batched-state and
step-program helpers plugins share (through ``rnnserve.plugin_api``).
"""
