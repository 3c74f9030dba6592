"""Character-level recurrent language model backend (placeholder until the plugin lands)."""
