"""Building blocks of the English→German corpus: Debian package access, catalogue and
document readers, sentence alignment, cleaning filters and the source registry.

``rnnserve_plugins.gru_translator.data`` puts them together into ``rnnserve data en-de``.
"""
