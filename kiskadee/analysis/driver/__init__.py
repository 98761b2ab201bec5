"""The compile driver: analyzing a C/C++ tree one translation unit at a time, inside the sandbox.

The clang, gcc and Frama-C analyzers need each file compiled with the right
flags. This package finds the translation units (per-file mode: every source
file with guessed include paths; build mode: the compile commands of a real
configure or CMake or Meson run), runs the analyzer on each under its own
timeout, and writes an index of what was analyzed next to the raw reports.

It runs as the analyzer's single sandbox command (``python3 DIR`` with this
package copied into the output directory, see ``kiskadee.analysis.analyzers.compiled``),
so the whole run is one sandbox execution with one timeout and one memory
limit, whatever the backend. Hence its rules: standard library only, relative
imports only, Python 3.9, nothing written outside the output directory.
"""
