"""A plugin that fails to import, for isolation tests."""

raise ImportError("this plugin is broken on purpose")
