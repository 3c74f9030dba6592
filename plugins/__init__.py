"""rnnserve's built-in backends, each a plugin discovered through the ``rnnserve`` entry-point group."""
