"""pipe: a declarative SQL pipeline compiler and runner.

Data flows Path -> RawProject (loader) -> CompiledProject (compiler) -> Plan (plan)
-> scheduler + executor + adapter -> RunResult, with the state store recording it all.
"""

__version__ = "0.1.0"
