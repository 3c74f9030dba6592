"""The model host: plugins in, models loaded and looked up.

``plugins.py`` finds and loads plugins through the hooks of ``hookspecs.py`` (models are
``model_spec.py``'s ``ModelSpec``, commands ``commands.py``'s ``Command``); ``registry.py``
loads each configured model on its own thread, verifies its files (``manifest.py``),
gives it a scheduler, reloads it when it fails and answers lookups by name (its entries:
``model_entry.py``). The precision a backend runs in is chosen with ``precision.py``,
``precision_choice.py`` (by measurement) and ``int8.py`` (int8 kernels), all re-exported
to plugins through ``rnnserve.plugin_api``; ``torch_runtime.py`` sets torch's threads.
"""
