"""The commands of `pipe`, grouped by the work they do; cli.py puts them in one group."""
