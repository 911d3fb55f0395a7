"""``system``: the running product — the root process, its node processes and their wiring.

The root (:mod:`system.root`) supervises three node processes (``ops``, ``execution``,
``market``), each a :mod:`system.node` running its actors under an ``otp`` supervisor wired by
:mod:`system.wiring`; :mod:`system.commands` carries out the operator's control commands.
"""
