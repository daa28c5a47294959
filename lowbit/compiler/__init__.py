"""The compile driver (DSL -> VM -> SIMT -> PTX -> cubin) and its on-disk cache.

So far: :mod:`lowbit.compiler.cache`.  ``lowbit.compile`` arrives with the compiler issue.
"""
